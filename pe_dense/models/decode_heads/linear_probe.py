"""Frozen-feature linear probes: BatchNorm + 1x1 conv on (several) PE layers.

The probe follows the DINOv2 / mmseg ``BNHead`` recipe used for ADE20k linear evaluation:
features of the chosen layers are resized to the first one's grid and concatenated, an
optional global vector (the cls token or the pooled embedding, shape ``(B, C)``) is
broadcast over the grid and concatenated too, then BatchNorm and a 1x1 conv give per-patch
logits that the mmseg losses / ``predict_by_feat`` upsample to the label size.
"""
from typing import List, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.registry import MODELS


def gather_features(inputs: Sequence[torch.Tensor], in_index: Sequence[int],
                    align_corners: bool = False) -> torch.Tensor:
    """Concatenate the selected maps on the first map's grid; ``(B, C)`` vectors are broadcast.

    A probe on a ViT sees features of one stride, so resizing only matters when maps of
    different strides (e.g. a pyramid) are mixed.
    """
    picked = [inputs[i] for i in in_index]
    maps = [x for x in picked if x.dim() == 4]
    if not maps:
        raise ValueError('linear probe: at least one selected input must be a (B, C, H, W) map; '
                         f'got shapes {[tuple(x.shape) for x in picked]}')
    size = maps[0].shape[-2:]
    out = []
    for x in picked:
        if x.dim() == 2:
            x = x[:, :, None, None].expand(-1, -1, *size)
        elif x.dim() != 4:
            raise ValueError(f'linear probe: input of shape {tuple(x.shape)} is neither '
                             '(B, C, H, W) nor (B, C)')
        elif x.shape[-2:] != size:
            x = F.interpolate(x, size=size, mode='bilinear', align_corners=align_corners)
        out.append(x)
    return torch.cat(out, dim=1)


class ProbeMixin:
    """Shared feature path of the probes: gather -> (upsample) -> BatchNorm (optional)."""

    def _init_probe(self, upsample: int, batch_norm: bool = True):
        if upsample < 1:
            raise ValueError(f'linear probe: upsample must be >= 1, got {upsample}')
        self.upsample = upsample
        if not batch_norm:  # DINOv2's depth probe: the 1x1 conv reads the features as they are
            self.bn = nn.Identity()
        else:
            self.bn = nn.SyncBatchNorm(self.in_channels) if self._sync_bn() else \
                nn.BatchNorm2d(self.in_channels)

    def _sync_bn(self) -> bool:
        return bool(self.norm_cfg) and self.norm_cfg.get('type') == 'SyncBN'

    def probe_features(self, inputs) -> torch.Tensor:
        x = gather_features(inputs, self.in_index, self.align_corners)
        if self.upsample > 1:
            x = F.interpolate(x, scale_factor=self.upsample, mode='bilinear',
                              align_corners=self.align_corners)
        return self.bn(x)


def _as_list(in_channels: Union[int, Sequence[int]], in_index: Union[int, Sequence[int]]):
    in_channels = [in_channels] if isinstance(in_channels, int) else list(in_channels)
    in_index = [in_index] if isinstance(in_index, int) else list(in_index)
    if len(in_channels) != len(in_index):
        raise ValueError(f'linear probe: in_channels {in_channels} and in_index {in_index} '
                         'must have the same length')
    return in_channels, in_index


@MODELS.register_module()
class LinearProbeHead(ProbeMixin, BaseDecodeHead):
    """Semantic-segmentation linear probe (BN + 1x1 conv), logits upsampled by mmseg.

    Args:
        in_channels: channels of each selected input (a ``(B, C)`` input counts its C).
        in_index: which backbone outputs to use.
        upsample: bilinear feature upsampling before BN (DINOv2 uses 4 for its 'ms' probes).
        Everything else goes to :class:`BaseDecodeHead` (``num_classes``, ``loss_decode``,
        ``dropout_ratio``, ``ignore_index``...). ``channels`` is the concatenated width.
    """

    def __init__(self, in_channels: Union[int, List[int]], in_index: Union[int, List[int]] = -1,
                 upsample: int = 1, **kwargs):
        in_channels, in_index = _as_list(in_channels, in_index)
        kwargs.setdefault('dropout_ratio', 0.)
        super().__init__(in_channels=in_channels, in_index=in_index,
                         channels=sum(in_channels), input_transform='resize_concat', **kwargs)
        self._init_probe(upsample)

    def forward(self, inputs):
        return self.cls_seg(self.probe_features(inputs))
