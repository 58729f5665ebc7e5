"""Depth heads for mmseg's ``DepthEstimator``: a frozen-feature linear probe and DPT.

Both share :class:`DepthOutputMixin`: the last 1x1 conv predicts either one channel
(regression, ``sigmoid * max_depth``) or ``num_bins`` logits (classification over depth
bins, softmax then the expectation of the bin centres, as DINOv2's / AdaBins' probes).
Training uses mmseg's depth losses (SiLog by default) on pixels with ``0 < gt <= max_depth``.
"""
import math
from typing import List, Sequence, Union

import torch
import torch.nn.functional as F
from mmseg.models.decode_heads.dpt_head import DPTHead
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.models.utils import resize
from mmseg.registry import MODELS

from .linear_probe import ProbeMixin, _as_list


def spaced_layers(depth: int, num: int = 4) -> List[int]:
    """The last block of each of ``num`` equal parts of a ``depth``-block ViT: DINOv2's depth
    "linear4" taps ([2, 5, 8, 11] for 12 blocks, [9, 19, 29, 39] for 40; [11, 24, 36, 49] for
    PE-G's 50)."""
    return [(k + 1) * depth // num - 1 for k in range(num)]


def bin_centres(min_depth: float, max_depth: float, num_bins: int, spacing: str) -> torch.Tensor:
    """Depth values of ``num_bins`` bins: centres of uniform ('linear') or log-uniform ('log')
    intervals, or DINOv2's 'ud': ``linspace(min_depth, max_depth, num_bins)`` itself."""
    if spacing == 'ud':
        return torch.linspace(min_depth, max_depth, num_bins)
    if spacing == 'linear':
        edges = torch.linspace(min_depth, max_depth, num_bins + 1)
    elif spacing == 'log':
        edges = torch.logspace(math.log10(min_depth), math.log10(max_depth), num_bins + 1)
    else:
        raise ValueError("depth head: bin_spacing must be 'linear', 'log' or 'ud', got "
                         f"{spacing!r}")
    return (edges[:-1] + edges[1:]) / 2


class DepthOutputMixin:
    """Turns the conv output into metric depth, and computes depth losses / predictions."""

    def _init_depth(self, mode: str, num_bins: int, min_depth: float, max_depth: float,
                    bin_spacing: str, bin_norm: str = 'softmax'):
        if mode not in ('regression', 'bins'):
            raise ValueError(f"depth head: mode must be 'regression' or 'bins', got {mode!r}")
        if bin_norm not in ('softmax', 'linear'):
            raise ValueError("depth head: bin_norm must be 'softmax' or 'linear', got "
                             f"{bin_norm!r}")
        self.bin_norm = bin_norm
        if not 0 < min_depth < max_depth:
            raise ValueError(f'depth head: need 0 < min_depth < max_depth, got {min_depth}, '
                             f'{max_depth}')
        self.depth_mode = mode
        self.min_depth = min_depth
        self.max_depth = max_depth
        if mode == 'bins':
            self.register_buffer('centres', bin_centres(min_depth, max_depth, num_bins,
                                                        bin_spacing), persistent=False)

    @staticmethod
    def _num_outputs(mode: str, num_bins: int) -> int:
        if mode == 'bins' and num_bins < 2:
            raise ValueError(f'depth head: bins mode needs num_bins >= 2, got {num_bins}')
        return num_bins if mode == 'bins' else 1

    def to_depth(self, out: torch.Tensor) -> torch.Tensor:
        """(B, K, h, w) head output -> (B, 1, h, w) depth in metres."""
        if self.depth_mode == 'regression':
            return torch.sigmoid(out) * self.max_depth
        if self.bin_norm == 'linear':  # DINOv2 / AdaBins: ReLU + 0.1, divided by the sum
            prob = out.relu() + 0.1
            prob = prob / prob.sum(dim=1, keepdim=True)
        else:
            prob = out.softmax(dim=1)
        return torch.einsum('bkhw,k->bhw', prob, self.centres.to(prob.dtype))[:, None]

    def loss_by_feat(self, depth: torch.Tensor, batch_data_samples) -> dict:
        gt = torch.stack([s.gt_depth_map.data for s in batch_data_samples]).to(depth)
        depth = resize(depth, size=gt.shape[2:], mode='bilinear',
                       align_corners=self.align_corners)
        # mmseg's depth losses skip targets <= eps; zeroing depths past max_depth makes
        # them skip those too (sensor saturation / far invalid pixels).
        gt = torch.where(gt > self.max_depth, torch.zeros_like(gt), gt)
        losses = self.loss_decode if isinstance(self.loss_decode, torch.nn.ModuleList) \
            else [self.loss_decode]
        out = {}
        for loss in losses:
            out[loss.loss_name] = out.get(loss.loss_name, 0) + loss(depth, gt)
        return out

    def loss(self, inputs, batch_data_samples, train_cfg) -> dict:
        return self.loss_by_feat(self.forward(inputs), batch_data_samples)

    def predict(self, inputs, batch_img_metas: List[dict], test_cfg) -> torch.Tensor:
        return self.predict_by_feat(self.forward(inputs), batch_img_metas)


@MODELS.register_module()
class LinearDepthHead(DepthOutputMixin, ProbeMixin, BaseDecodeHead):
    """Frozen-feature depth probe: (BN +) 1x1 conv over concatenated layers.

    DINOv2's depth 'linear4' probe is ``batch_norm=False, bin_spacing='ud', bin_norm='linear',
    upsample=4`` on the layers of :func:`spaced_layers` (with their cls tokens when the ViT has
    one), trained with :class:`SigLoss` (``configs/nyu/pe_spatial_g14_linear4_nyu.py``).

    Args:
        in_channels, in_index: the selected backbone outputs; ``(B, C)`` inputs (cls token or
            pooled embedding) are broadcast over the grid and concatenated.
        mode: 'bins' (softmax over ``num_bins`` bins, expected centre) or 'regression'.
        min_depth, max_depth: bin range in metres; ``max_depth`` also bounds regression and
            the pixels used in the loss.
        bin_spacing: 'linear' (interval centres), 'log', or 'ud' (DINOv2's ``linspace``).
        bin_norm: 'softmax', or 'linear' (DINOv2: ReLU + 0.1, normalised to sum 1).
        batch_norm: BatchNorm on the features before the conv (DINOv2's depth probe: none).
        upsample: bilinear feature upsampling before the conv (DINOv2 uses 4).
        loss_decode: an mmseg depth loss (``SiLogLoss`` by default).
    """

    def __init__(self, in_channels: Union[int, Sequence[int]],
                 in_index: Union[int, Sequence[int]] = -1, mode: str = 'bins',
                 num_bins: int = 256, min_depth: float = 1e-3, max_depth: float = 10.,
                 bin_spacing: str = 'linear', bin_norm: str = 'softmax',
                 batch_norm: bool = True, upsample: int = 1,
                 loss_decode=dict(type='SiLogLoss'), **kwargs):
        in_channels, in_index = _as_list(in_channels, in_index)
        k = self._num_outputs(mode, num_bins)
        kwargs.setdefault('dropout_ratio', 0.)
        super().__init__(in_channels=in_channels, in_index=in_index, channels=sum(in_channels),
                         input_transform='resize_concat', num_classes=k, out_channels=k,
                         threshold=0., loss_decode=loss_decode, **kwargs)
        self._init_probe(upsample, batch_norm)
        self._init_depth(mode, num_bins, min_depth, max_depth, bin_spacing, bin_norm)

    def forward(self, inputs) -> torch.Tensor:
        return self.to_depth(self.cls_seg(self.probe_features(inputs)))


@MODELS.register_module()
class SigLoss(torch.nn.Module):
    """DINOv2's depth loss (from AdaBins): ``loss_weight * sqrt(Var(g) + 0.15 * mean(g)^2)``
    with ``g = log(pred + 1e-3) - log(gt + 1e-3)`` over the valid (``gt > 0``) pixels of the
    whole batch, ``Var`` unbiased. mmseg's ``SiLogLoss`` differs (per image, 0.5 weight)."""

    def __init__(self, loss_weight: float = 10.0, loss_name: str = 'loss_sig'):
        super().__init__()
        self.loss_weight, self._loss_name = loss_weight, loss_name

    @property
    def loss_name(self) -> str:
        return self._loss_name

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        valid = target > 0
        if valid.sum() < 2:
            return pred.sum() * 0
        g = torch.log(pred[valid] + 1e-3) - torch.log(target[valid] + 1e-3)
        return self.loss_weight * torch.sqrt(g.var() + 0.15 * g.mean() ** 2)


@MODELS.register_module()
class DPTDepthHead(DepthOutputMixin, DPTHead):
    """DPT decoder (mmseg ``DPTHead``) with a depth output, for fine-tuning on plain PE maps.

    PE returns ``(B, C, H, W)`` maps without a readout token, so the reassemble stage runs
    with ``readout_type='ignore'``. Four inputs (e.g. ``out_indices=(2, 5, 8, 11)``) become
    strides 4, 8, 16, 32 of the patch grid as in the DPT paper; the fused map (stride ~2 of
    the patch grid) is upsampled 2x before the depth conv.
    """

    def __init__(self, mode: str = 'regression', num_bins: int = 256, min_depth: float = 1e-3,
                 max_depth: float = 10., bin_spacing: str = 'linear',
                 loss_decode=dict(type='SiLogLoss'), **kwargs):
        k = self._num_outputs(mode, num_bins)
        if kwargs.get('readout_type', 'ignore') != 'ignore':
            raise ValueError("DPTDepthHead: PE maps carry no readout token; use "
                             "readout_type='ignore'")
        kwargs.setdefault('input_transform', 'multiple_select')
        kwargs.setdefault('in_index', (0, 1, 2, 3))
        super().__init__(num_classes=k, out_channels=k, threshold=0., loss_decode=loss_decode,
                         **kwargs)
        self._init_depth(mode, num_bins, min_depth, max_depth, bin_spacing)

    def forward(self, inputs) -> torch.Tensor:
        if len(inputs) <= max(self.in_index):
            raise ValueError(f'DPTDepthHead: in_index {list(self.in_index)} expects '
                             f'{self.num_reassemble_blocks} maps, the backbone gave {len(inputs)}')
        x = self._transform_inputs(inputs)
        x = self.reassemble_blocks([[f, None] for f in x])
        x = [conv(f) for conv, f in zip(self.convs, x)]
        out = self.fusion_blocks[0](x[-1])
        for i in range(1, len(self.fusion_blocks)):
            out = self.fusion_blocks[i](out, x[-(i + 1)])
        out = self.project(out)
        out = F.interpolate(out, scale_factor=2, mode='bilinear', align_corners=True)
        return self.to_depth(self.cls_seg(out))
