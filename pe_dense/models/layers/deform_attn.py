"""mmcv's multi-scale deformable attention in fp32 (its CUDA kernel takes no bf16)."""
import torch
from mmcv.ops import MultiScaleDeformableAttention

from .fp32 import fp32_no_autocast


class FP32MultiScaleDeformableAttention(MultiScaleDeformableAttention):
    """mmcv's deformable attention with its inputs, projections and kernel in fp32."""

    forward = fp32_no_autocast(MultiScaleDeformableAttention.forward)


def fp32_deformable_attention(model: torch.nn.Module) -> torch.nn.Module:
    """Make every mmcv ``MultiScaleDeformableAttention`` in ``model`` run in fp32, in place.

    mmdet's Deformable DETR layers build the mmcv class directly (not through a registry), so
    the instances are switched to the fp32 subclass; it adds no state, so checkpoints match.
    """
    for m in model.modules():
        if type(m) is MultiScaleDeformableAttention:
            m.__class__ = FP32MultiScaleDeformableAttention
    return model
