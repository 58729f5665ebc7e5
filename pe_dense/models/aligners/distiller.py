"""Distilling smaller PE-Spatial models (T/S/B/L) from a larger aligned one (G).

Two signals (arXiv 2504.13181, section 5): the student's pairwise token cosine similarities match the teacher's
(width-free), and its tokens, linearly projected to the teacher's width, match the teacher's
tokens directly. Both models see the same picture; the teacher's input is resized so that its
token grid equals the student's even when the patch sizes differ (14 vs 16).
"""
from typing import Dict

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.registry import MODELS

from ..losses.pairwise_similarity import pairwise_similarity_loss
from ..losses.token_cosine import token_cosine_loss
from .spatial_aligner import TokenDistillBase


@MODELS.register_module()
class SpatialDistiller(TokenDistillBase):
    """Student PE <- frozen teacher PE layer (default: its last block).

    Args:
        student: PE config of the small model (e.g. ``arch='PE-Spatial-T16-512'``).
        teacher: ``FrozenPETeacher`` settings, e.g. aligned PE-Spatial-G14-448, ``layer=-1``.
        pair_weight: weight of the pairwise-similarity loss.
        feat_weight: weight of the direct feature loss (cosine after a linear projection,
            identity when the widths agree).
        mask_ratio: MaskFeat masking of the student (0 disables).
    """

    def __init__(self, student: dict, teacher: dict, pair_weight: float = 1.0,
                 feat_weight: float = 1.0, mask_ratio: float = 0.0, **kwargs):
        super().__init__(student, mask_ratio=mask_ratio, **kwargs)
        tcfg = dict(teacher)
        tcfg.setdefault('type', 'FrozenPETeacher')
        tcfg.setdefault('layer', -1)
        self.teacher = MODELS.build(tcfg)
        s_dim, t_dim = self.student.embed_dim, self.teacher.embed_dim
        self.feat_proj = nn.Identity() if s_dim == t_dim else nn.Linear(s_dim, t_dim)
        self.pair_weight, self.feat_weight = pair_weight, feat_weight

    def teacher_tokens(self, images: torch.Tensor, hw) -> torch.Tensor:
        p = self.teacher.pe.patch_size
        size = (hw[0] * p, hw[1] * p)
        x = self.normalize(images)
        if tuple(x.shape[-2:]) != size:
            x = F.interpolate(x, size=size, mode='bicubic', align_corners=False)
        tokens, t_hw = self.teacher(x)
        if tuple(t_hw) != tuple(hw):
            raise ValueError(f'teacher grid {t_hw} != student grid {hw}')
        return tokens

    def loss(self, images: torch.Tensor, data_samples=None) -> Dict[str, torch.Tensor]:
        student, hw = self.student_tokens(images, masked=True)
        target = self.teacher_tokens(images, hw)
        losses = {}
        if self.pair_weight:
            losses['loss_pair'] = self.pair_weight * pairwise_similarity_loss(student, target)
        if self.feat_weight:
            losses['loss_feat'] = self.feat_weight * token_cosine_loss(self.feat_proj(student),
                                                                        target)
        return losses
