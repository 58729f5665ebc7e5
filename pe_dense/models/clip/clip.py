"""PE-Core CLIP as an MMEngine model: contrastive training, mask regularisation, distillation,
video (frame-averaged) embeddings and zero-shot / retrieval predictions.

The vision tower is the PE backbone (``visual``, attention pool + projection), the text tower
``text``; ``export_official`` / ``load_official`` speak the official whole-CLIP layout.
"""
import logging
import math
from typing import List, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from mmengine.fileio import load as load_file
from mmengine.logging import print_log
from mmengine.model import BaseModel
from mmengine.registry import MODELS
from torch import nn

from ..backbones.checkpoint import CheckpointError, _unwrap, load_checkpoint_file
from ..losses.contrastive import masked_token_cosine_loss
from .checkpoint import clip_to_official, official_to_clip
from .tokenizer import PETokenizer, fit_context

DEFAULT_TEMPLATES = ('a photo of a {}.',)


@MODELS.register_module()
class PECLIP(BaseModel):
    """Two-tower CLIP on PE.

    Args:
        vision: PE backbone kwargs (``arch`` must have attention pooling).
        text: PETextTower kwargs.
        init_logit_scale: log of the initial inverse temperature (CLIP: log(1/0.07)).
        max_logit_scale: clamp of ``exp(logit_scale)`` (CLIP: 100).
        loss: contrastive loss config.
        mask_reg: ``dict(batch_fraction=1/16, mask_ratio=0.5, loss_weight=1.)``: a fraction of
            each image batch is re-encoded with masked patch tokens, whose last-layer tokens must
            match the unmasked ones by cosine similarity (MaskFeat-like). None disables it.
        distill: ``dict(teacher=<PECLIP cfg>, teacher_checkpoint=path, loss=<ClipDistillLoss>,
            contrastive_weight=0.)``: soft CLIP targets from a frozen teacher.
        zero_shot: ``dict(classnames=list | json path, templates=list)`` for predictions.
        pretrained: official whole-CLIP or pe_dense checkpoint loaded by ``init_weights``.
    """

    def __init__(self, vision: dict, text: dict, init_logit_scale: float = math.log(1 / 0.07),
                 max_logit_scale: float = 100., loss: dict = dict(type='ClipContrastiveLoss'),
                 mask_reg: Optional[dict] = None, distill: Optional[dict] = None,
                 zero_shot: Optional[dict] = None, pretrained: Optional[str] = None,
                 data_preprocessor: Optional[dict] = None, init_cfg: Optional[dict] = None):
        super().__init__(data_preprocessor=data_preprocessor or dict(type='ClipDataPreprocessor'),
                         init_cfg=init_cfg)
        self.visual = MODELS.build(dict(type='PE', **vision))
        if not hasattr(self.visual, 'attn_pool') or not hasattr(self.visual, 'proj'):
            raise ValueError(f"PECLIP: vision arch {vision.get('arch')} lacks attention pooling "
                             'and projection (use a PE-Core arch)')
        self.text = MODELS.build(dict(type='PETextTower', **text))
        if self.visual.out_dim != self.text.output_dim:
            raise ValueError(f'PECLIP: image embedding {self.visual.out_dim} != text embedding '
                             f'{self.text.output_dim}')
        self.logit_scale = nn.Parameter(torch.tensor(float(init_logit_scale)))
        self.max_logit_scale = max_logit_scale
        self.loss_fn = MODELS.build(loss)
        self.tokenizer = PETokenizer(self.text.context_length)
        self._build_mask_reg(mask_reg)
        self._build_distill(distill)
        self.zero_shot = zero_shot
        self._classifier = None
        self.pretrained = pretrained
        self._official_extras = {}

    # ------------------------------------------------------------------ construction
    def _build_mask_reg(self, cfg: Optional[dict]):
        self.mask_reg = None
        if cfg is None:
            return
        self.mask_reg = dict(dict(batch_fraction=1 / 16, mask_ratio=0.5, loss_weight=1.), **cfg)
        if not 0 < self.mask_reg['mask_ratio'] < 1 or not 0 < self.mask_reg['batch_fraction'] <= 1:
            raise ValueError(f'mask_reg: mask_ratio in (0, 1) and batch_fraction in (0, 1], '
                             f'got {cfg}')
        self.mask_token = nn.Parameter(torch.zeros(self.visual.embed_dim))
        nn.init.normal_(self.mask_token, std=0.02)

    def _build_distill(self, cfg: Optional[dict]):
        self.teacher = None
        if cfg is None:
            return
        cfg = dict(cfg)
        t_cfg = dict(cfg.pop('teacher'))
        t_cfg.setdefault('type', 'PECLIP')
        for key in ('distill', 'mask_reg'):
            t_cfg.pop(key, None)
        teacher = MODELS.build(t_cfg)
        ckpt = cfg.pop('teacher_checkpoint', None)
        if ckpt:
            teacher.load_checkpoint(ckpt)
        teacher.requires_grad_(False).eval()
        self.__dict__['teacher'] = teacher  # kept out of state_dict / optimizer / DDP
        self.distill_loss = MODELS.build(cfg.pop('loss', dict(type='ClipDistillLoss')))
        self.contrastive_weight = cfg.pop('contrastive_weight', 0.)
        if cfg:
            raise KeyError(f'distill: unknown keys {sorted(cfg)}')

    def _apply(self, fn, *args, **kwargs):
        super()._apply(fn, *args, **kwargs)
        if self.teacher is not None:  # the teacher follows .to()/.cuda() though it is hidden
            self.teacher._apply(fn, *args, **kwargs)
        return self

    def train(self, mode: bool = True):
        super().train(mode)
        self._classifier = None  # text weights change while training: rebuild on next predict
        return self

    # ------------------------------------------------------------------ weights
    def init_weights(self):
        if self.pretrained:
            self.load_checkpoint(self.pretrained)
            return
        super().init_weights()

    def load_checkpoint(self, path: str):
        """Official whole-CLIP (``visual.`` + top-level text) or pe_dense/MMEngine checkpoint."""
        obj = load_checkpoint_file(path)
        sd = _unwrap(obj)
        if any(k.startswith('text.') for k in sd):
            derived = {}
        else:
            try:
                sd, derived = official_to_clip(obj)
            except CheckpointError as err:
                raise CheckpointError(f'{path}: {err}') from err
        missing, unexpected = self.load_state_dict(sd, strict=False)
        missing = [k for k in missing if not k.startswith('mask_token')]
        if missing or unexpected:
            raise CheckpointError(f'{path} does not fit this PECLIP: missing {missing[:8]}, '
                                  f'unexpected {unexpected[:8]}')
        self._official_extras = derived
        print_log(f'PECLIP: loaded {path}', logger='current', level=logging.INFO)

    def official_state_dict(self) -> dict:
        """Weights in the official whole-CLIP layout."""
        return clip_to_official(self.state_dict(), self._official_extras)

    def export_official(self, path: str):
        from ...engine.atomic_io import atomic_torch_save
        atomic_torch_save(self.official_state_dict(), path)

    # ------------------------------------------------------------------ encoders
    def scale(self) -> torch.Tensor:
        return self.logit_scale.exp().clamp(max=self.max_logit_scale)

    def image_tokens(self, images: torch.Tensor, token_mask: Optional[torch.Tensor] = None):
        mask_token = self.mask_token if token_mask is not None else None
        (tokens,), _ = self.visual.forward_tokens(images, (-1,), token_mask, mask_token)
        return tokens

    def encode_image(self, images: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        x = self.visual.pool(self.image_tokens(images))
        return F.normalize(x, dim=-1) if normalize else x

    def encode_video(self, video: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        """(B, T, 3, H, W): frames through the image tower, embeddings averaged over T."""
        b, t = video.shape[:2]
        x = self.encode_image(video.flatten(0, 1), normalize=False).view(b, t, -1).mean(1)
        return F.normalize(x, dim=-1) if normalize else x

    def encode_text(self, tokens: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        tokens = fit_context(tokens, self.text.context_length, self.tokenizer.eot_token_id)
        x = self.text(tokens)
        return F.normalize(x, dim=-1) if normalize else x

    def encode_visual(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.encode_video(inputs) if inputs.ndim == 5 else self.encode_image(inputs)

    # ------------------------------------------------------------------ MMEngine API
    def forward(self, inputs: torch.Tensor, data_samples: Optional[dict] = None,
                mode: str = 'tensor'):
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self.encode_visual(inputs)
        raise ValueError(f"mode must be 'loss', 'predict' or 'tensor', got {mode!r}")

    def _texts(self, data_samples) -> torch.Tensor:
        """Tokens of the batch: given ``text`` ids, else ``caption`` strings tokenized here (the
        model owns its context length, so a teacher tokenizes with its own)."""
        if data_samples and 'text' in data_samples:
            return data_samples['text']
        if not data_samples or 'caption' not in data_samples:
            raise KeyError('PECLIP: data_samples has neither "caption" strings nor "text" tokens')
        return self.tokenizer(list(data_samples['caption'])).to(self.logit_scale.device)

    def loss(self, inputs: torch.Tensor, data_samples: dict) -> dict:
        text = self.encode_text(self._texts(data_samples))
        if inputs.ndim == 5 or self.mask_reg is None:
            image, tokens = self.encode_visual(inputs), None
        else:
            tokens = self.image_tokens(inputs)
            image = F.normalize(self.visual.pool(tokens), dim=-1)
        scale = self.scale()
        losses = dict(logit_scale=scale.detach())
        w = self.contrastive_weight if self.teacher is not None else 1.
        if w:
            losses['loss_clip'] = w * self.loss_fn(image, text, scale)
        if tokens is not None:
            losses['loss_mask'] = self._mask_loss(inputs, tokens)
        if self.teacher is not None:
            losses['loss_distill'] = self._distill_loss(inputs, data_samples, image, text, scale)
        return losses

    def _mask_loss(self, images: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        cfg = self.mask_reg
        n = max(1, round(images.shape[0] * cfg['batch_fraction']))
        p = self.visual.num_prefix_tokens
        num_patches = tokens.shape[1] - p
        mask = torch.rand(n, num_patches, device=images.device) < cfg['mask_ratio']
        masked = self.image_tokens(images[:n], mask)
        return cfg['loss_weight'] * masked_token_cosine_loss(masked[:, p:], tokens[:n, p:], mask)

    def _distill_loss(self, inputs, data_samples, image, text, scale) -> torch.Tensor:
        teacher = self.teacher.eval()
        with torch.no_grad():
            t_image = teacher.encode_visual(inputs)
            t_text = teacher.encode_text(teacher._texts(data_samples))
            t_scale = teacher.scale()
        return self.distill_loss(image, text, scale, t_image, t_text, t_scale)

    # ------------------------------------------------------------------ predictions
    def build_classifier(self, classnames: Sequence[str],
                         templates: Sequence[str] = DEFAULT_TEMPLATES) -> torch.Tensor:
        """(num_classes, dim) zero-shot weights: mean of normalised prompt embeddings."""
        if not classnames or not templates:
            raise ValueError('zero-shot needs at least one class name and one template')
        device = self.logit_scale.device
        weights = []
        for name in classnames:
            tokens = self.tokenizer([t.format(name) for t in templates]).to(device)
            weights.append(F.normalize(self.encode_text(tokens).mean(0), dim=-1))
        return torch.stack(weights)

    def _zero_shot_classifier(self) -> Optional[torch.Tensor]:
        if self.zero_shot is None:
            return None
        if self._classifier is None:
            names = self.zero_shot['classnames']
            if isinstance(names, str):
                names = load_file(names)
            self._classifier = self.build_classifier(
                names, self.zero_shot.get('templates', DEFAULT_TEMPLATES))
        return self._classifier

    @torch.no_grad()
    def predict(self, inputs: torch.Tensor, data_samples: Optional[dict] = None) -> List[dict]:
        """Per sample: image_emb, text_emb (if captions), class_scores (if zero_shot), gt_label."""
        image = self.encode_visual(inputs)
        out = [dict(image_emb=e) for e in image]
        data_samples = data_samples or {}
        if 'text' in data_samples or 'caption' in data_samples:
            for o, t in zip(out, self.encode_text(self._texts(data_samples))):
                o['text_emb'] = t
        classifier = self._zero_shot_classifier()
        if classifier is not None:
            for o, s in zip(out, image @ classifier.t()):
                o['class_scores'] = s
        for key in ('label', 'sample_idx'):
            if key in data_samples:
                for o, v in zip(out, data_samples[key]):
                    o['gt_label' if key == 'label' else key] = int(v)
        return out


def tokenize(texts: Union[str, Sequence[str]], context_length: int = 32) -> torch.Tensor:
    """Convenience: PE/CLIP tokens for ``texts``."""
    return PETokenizer(context_length)(texts)
