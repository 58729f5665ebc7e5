"""Simple feature pyramid (ViTDet) from the single stride-p map of a plain ViT such as PE.

Each scale factor gets its own sampler of the last map: 4x = two 2x2 stride-2 transposed
convs (LayerNorm + GELU between), 2x = one transposed conv (width -> width / 2), 1x =
identity, 0.5x = 2x2 max-pool. The official DETA_pe neck is exactly (2, 1, 0.5) with no
norm and no output convs (its projections live in the detector: mmdet's ChannelMapper);
ViTDet / Mask R-CNN adds per-level 1x1 + 3x3 output convs with a norm and an extra
stride-2 max-pool level.
"""
from typing import List, Optional, Sequence, Tuple

import torch.nn.functional as F
from mmcv.cnn import ConvModule, build_norm_layer
from mmengine.model import BaseModule
from mmengine.registry import MODELS
from torch import Tensor, nn


@MODELS.register_module(name='LN2d')
class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of an NCHW map (ViTDet's LN2d)."""
    _abbr_ = 'ln'

    def forward(self, x: Tensor) -> Tensor:
        # contiguous: mmcv's CPU RoIAlign reads its input's memory as NCHW, whatever the strides
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2).contiguous()


def _sampler(scale: float, dim: int, norm_cfg: Optional[dict]) -> Tuple[nn.Module, int]:
    """The module resampling a ``dim``-channel map by ``scale`` and its output channels."""
    if scale == 4.0:
        norm = build_norm_layer(norm_cfg or dict(type='LN2d'), dim // 2)[1]
        return nn.Sequential(
            nn.ConvTranspose2d(dim, dim // 2, 2, stride=2), norm, nn.GELU(),
            nn.ConvTranspose2d(dim // 2, dim // 4, 2, stride=2)), dim // 4
    if scale == 2.0:
        return nn.Sequential(nn.ConvTranspose2d(dim, dim // 2, 2, stride=2)), dim // 2
    if scale == 1.0:
        return nn.Identity(), dim
    if scale == 0.5:
        return nn.MaxPool2d(kernel_size=2, stride=2), dim
    raise ValueError(f'SimpleFPN: scale factor {scale} not in (4.0, 2.0, 1.0, 0.5)')


@MODELS.register_module()
class SimpleFPN(BaseModule):
    """Pyramid from one backbone map (the last of the backbone's outputs).

    Args:
        in_channels: channels of the backbone map (the ViT width).
        scale_factors: output scales relative to the input map, largest first.
            Samplers are named ``fpn1, fpn2, ...`` in this order (official DETA names).
        out_channels: if set, each level gets ViTDet's 1x1 (``lateral_convs``) and 3x3
            (``fpn_convs``) bias-free convs with ``norm_cfg``; if None the resampled maps
            are returned as they are (DETA).
        num_outs: total levels; levels beyond ``scale_factors`` are stride-2 max-pools
            (kernel 1) of the last one (ViTDet's p6).
        norm_cfg: norm of the output convs and of the 4x sampler, e.g. ``dict(type='LN2d')``
            (ViTDet / detectron2: ``dict(type='LN2d', eps=1e-6)``) or GN.
    """

    def __init__(self, in_channels: int, scale_factors: Sequence[float] = (2.0, 1.0, 0.5),
                 out_channels: Optional[int] = None, num_outs: Optional[int] = None,
                 norm_cfg: Optional[dict] = dict(type='LN2d'), init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        if not isinstance(in_channels, int):
            raise TypeError(f'SimpleFPN: in_channels must be one int (the ViT width), got '
                            f'{in_channels!r}')
        self.scale_factors = tuple(float(s) for s in scale_factors)
        self.num_outs = num_outs or len(self.scale_factors)
        if self.num_outs < len(self.scale_factors):
            raise ValueError(f'SimpleFPN: num_outs {self.num_outs} < {len(self.scale_factors)} '
                             'scale factors')
        self.out_channels = out_channels
        self.level_channels: List[int] = []
        for i, scale in enumerate(self.scale_factors):
            module, ch = _sampler(scale, in_channels, norm_cfg)
            self.add_module(f'fpn{i + 1}', module)
            self.level_channels.append(ch)
        if out_channels is not None:
            self.lateral_convs = nn.ModuleList(
                ConvModule(ch, out_channels, 1, bias=False, norm_cfg=norm_cfg, act_cfg=None)
                for ch in self.level_channels)
            self.fpn_convs = nn.ModuleList(
                ConvModule(out_channels, out_channels, 3, padding=1, bias=False,
                           norm_cfg=norm_cfg, act_cfg=None)
                for _ in self.level_channels)

    def forward(self, inputs: Sequence[Tensor]) -> Tuple[Tensor, ...]:
        x = inputs[-1] if isinstance(inputs, (list, tuple)) else inputs
        outs = [getattr(self, f'fpn{i + 1}')(x) for i in range(len(self.scale_factors))]
        if self.out_channels is not None:
            outs = [f(lat(o)) for o, lat, f in zip(outs, self.lateral_convs, self.fpn_convs)]
        while len(outs) < self.num_outs:
            outs.append(F.max_pool2d(outs[-1], kernel_size=1, stride=2))
        return tuple(outs)
