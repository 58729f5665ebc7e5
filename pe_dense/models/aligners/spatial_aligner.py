"""Spatial alignment of PE-Core into PE-Spatial (arXiv 2504.13181, section 5).

The student starts from PE-Core and learns two things at once: keep the semantics of the frozen
teacher's intermediate layer (token-wise cosine), and take SAM 2.1's notion of "which pixels
belong together" (pairwise similarity of the stacked mask logits of a 32x32 point grid). 75% of
the student's input tokens are replaced by a learned mask token (MaskFeat), but it is asked
for every token, so it must infer the masked ones from context.
"""
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModel
from mmengine.registry import MODELS

from ..losses.pairwise_similarity import pairwise_similarity_loss
from ..losses.token_cosine import token_cosine_loss
from ..teachers.sam_targets import maps_to_tokens

PE_MEAN = (127.5, 127.5, 127.5)  # PE normalises [0, 255] RGB with mean = std = 0.5
PE_STD = (127.5, 127.5, 127.5)


def random_token_mask(batch: int, num_tokens: int, ratio: float,
                      device: Optional[torch.device] = None,
                      generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """(B, N) bool with exactly round(ratio * N) True per row, uniformly placed."""
    if not 0 <= ratio < 1:
        raise ValueError(f'mask_ratio must be in [0, 1), got {ratio}')
    k = int(round(ratio * num_tokens))
    noise = torch.rand(batch, num_tokens, generator=generator, device=device)
    ranks = noise.argsort(dim=1).argsort(dim=1)
    return ranks < k


def build_student(cfg: dict) -> nn.Module:
    cfg = dict(cfg)
    cfg.setdefault('type', 'PE')
    student = MODELS.build(cfg)
    if getattr(student, 'frozen', False):
        raise ValueError('student PE must not be frozen')
    return student


class TokenDistillBase(BaseModel):
    """Shared plumbing: pixel normalisation, masked student forward, exported student weights."""

    def __init__(self, student: dict, mask_ratio: float = 0.75,
                 mean: Sequence[float] = PE_MEAN, std: Sequence[float] = PE_STD,
                 data_preprocessor: Optional[dict] = None, init_cfg=None):
        if data_preprocessor is None:  # stacks raw RGB [0, 255]: SAM and PE normalise differently
            data_preprocessor = dict(type='ImgDataPreprocessor')
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.student = build_student(student)
        self.mask_ratio = mask_ratio
        random_token_mask(1, 4, mask_ratio)  # validates the ratio early
        self.mask_token = nn.Parameter(torch.zeros(self.student.embed_dim))
        nn.init.trunc_normal_(self.mask_token, std=0.02)
        f32 = dict(dtype=torch.float32)
        self.register_buffer('pix_mean', torch.tensor(mean, **f32).view(1, 3, 1, 1), False)
        self.register_buffer('pix_std', torch.tensor(std, **f32).view(1, 3, 1, 1), False)

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        return (images.float() - self.pix_mean) / self.pix_std

    def student_tokens(self, images: torch.Tensor, masked: bool):
        """Last-block patch tokens (B, H*W, C) of the student and the grid; masked if asked."""
        x = self.normalize(images)
        token_mask = None
        if masked and self.mask_ratio > 0:
            p = self.student.patch_size
            gh, gw = -(-x.shape[-2] // p), -(-x.shape[-1] // p)
            token_mask = random_token_mask(x.shape[0], gh * gw, self.mask_ratio, x.device)
        tokens, hw = self.student.forward_tokens(x, [-1], token_mask=token_mask,
                                                 mask_token=self.mask_token)
        return tokens[0][:, self.student.num_prefix_tokens:], hw

    def student_state_dict(self) -> Dict[str, torch.Tensor]:
        """The student alone, official PE-Spatial layout (no pooling head, no aligner params)."""
        return strip_pooling(self.student.state_dict())

    @staticmethod
    def _inputs(inputs) -> torch.Tensor:
        if isinstance(inputs, (list, tuple)):
            inputs = torch.stack(list(inputs))
        return inputs

    def forward(self, inputs, data_samples=None, mode: str = 'tensor'):
        inputs = self._inputs(inputs)
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode in ('tensor', 'predict'):
            tokens, hw = self.student_tokens(inputs, masked=False)
            maps = tokens.transpose(1, 2).reshape(tokens.shape[0], -1, *hw)
            return maps if mode == 'tensor' else [dict(features=m) for m in maps]
        raise ValueError(f"mode must be 'loss', 'tensor' or 'predict', got {mode!r}")


POOLING_KEYS = ('attn_pool.', 'proj', 'ln_post.')


def strip_pooling(sd: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    return {k: v for k, v in sd.items() if not k.startswith(POOLING_KEYS)}


def samples_field(data_samples, key: str) -> Optional[List[torch.Tensor]]:
    """``key`` of every sample (pseudo-collated dict of lists or list of dicts); None if absent."""
    if data_samples is None:
        return None
    if isinstance(data_samples, dict):
        return data_samples.get(key)
    values = [s.get(key) if isinstance(s, dict) else getattr(s, key, None) for s in data_samples]
    if all(v is None for v in values):
        return None
    if any(v is None for v in values):
        raise ValueError(f'some samples of the batch have no {key!r} (partial SAM target cache?)')
    return values


@MODELS.register_module()
class SpatialAligner(TokenDistillBase):
    """PE-Core -> PE-Spatial alignment: layer self-distillation + SAM mask-logit relations.

    Args:
        student: PE config of the student, e.g. ``arch='PE-Spatial-G14-448'`` with
            ``init_cfg=dict(type='Pretrained', checkpoint=<PE-Core-G14-448.pt>)``: the Spatial
            arch has no pooling head and LayerScale 0.1, initialised where Core has none.
        teacher: ``FrozenPETeacher`` settings: ``dict(backbone=<PE cfg>, layer=40)`` (the
            paper's layer 41, counted from 1).
        sam_teacher: ``SAM2Teacher`` settings; optional when every sample has cached targets.
        cos_weight, sam_weight: loss weights.
        mask_ratio: share of the student's patch tokens replaced by the mask token.
    """

    def __init__(self, student: dict, teacher: dict, sam_teacher: Optional[dict] = None,
                 cos_weight: float = 1.0, sam_weight: float = 1.0, mask_ratio: float = 0.75,
                 **kwargs):
        super().__init__(student, mask_ratio=mask_ratio, **kwargs)
        tcfg = dict(teacher)
        tcfg.setdefault('type', 'FrozenPETeacher')
        self.teacher = MODELS.build(tcfg)
        if self.teacher.embed_dim != self.student.embed_dim:
            raise ValueError(f'teacher width {self.teacher.embed_dim} != student width '
                             f'{self.student.embed_dim}: self-distillation needs the same PE')
        self.sam_teacher = None
        if sam_teacher is not None:
            scfg = dict(sam_teacher)
            scfg.setdefault('type', 'SAM2Teacher')
            self.sam_teacher = MODELS.build(scfg)
        self.cos_weight, self.sam_weight = cos_weight, sam_weight

    def sam_tokens(self, images: torch.Tensor, data_samples, hw) -> torch.Tensor:
        """(B, H*W, K) SAM targets on the student grid: cached if present, else computed."""
        cached = samples_field(data_samples, 'sam_targets')
        if cached is not None:
            maps = torch.stack([torch.as_tensor(t) for t in cached]).to(images.device).float()
        elif self.sam_teacher is not None:
            maps = self._online_sam_maps(images, data_samples, hw)
        else:
            raise ValueError('SpatialAligner: no cached sam_targets in the batch and no '
                             'sam_teacher configured')
        if tuple(maps.shape[-2:]) != tuple(hw):
            maps = F.interpolate(maps, size=tuple(hw), mode='bilinear', align_corners=False,
                                 antialias=True)
        return maps_to_tokens(maps)

    def _online_sam_maps(self, images: torch.Tensor, data_samples, hw) -> torch.Tensor:
        """SAM on the aligned picture, as the cache tool computes it: flipped samples are
        unflipped for SAM and their maps flipped back (SAM is not flip-equivariant, so SAM of
        the flipped picture would not equal the flipped cached map)."""
        flips = samples_field(data_samples, 'flip')
        flip = torch.tensor([bool(f) for f in flips], device=images.device) if flips else None
        if flip is not None and flip.any():
            images = torch.where(flip[:, None, None, None], images.flip(-1), images)
        maps = self.sam_teacher(images, hw)
        if flip is not None and flip.any():
            maps = torch.where(flip[:, None, None, None], maps.flip(-1), maps)
        return maps

    def loss(self, images: torch.Tensor, data_samples=None) -> Dict[str, torch.Tensor]:
        student, hw = self.student_tokens(images, masked=True)
        losses = {}
        if self.cos_weight:
            target, t_hw = self.teacher(self.normalize(images))
            if tuple(t_hw) != tuple(hw):
                raise ValueError(f'teacher grid {t_hw} != student grid {hw}: use one patch size')
            losses['loss_cos'] = self.cos_weight * token_cosine_loss(student, target)
        if self.sam_weight:
            sam = self.sam_tokens(images, data_samples, hw)
            losses['loss_sam'] = self.sam_weight * pairwise_similarity_loss(student, sam)
        return losses
