"""Run numerically fragile ops in fp32 whatever the autocast state.

Under bf16 autocast a linear layer returns bf16 and everything after it follows. Some ops
must not: mmcv's deformable attention CUDA kernel accepts fp32/fp64/fp16 only, mmcv's
sigmoid focal loss is fp16-only on CUDA, and box coordinates in bf16 (8 mantissa bits) are
off by pixels at 1824 px. The official DETA_pe code autocasts the backbone only
(facebookresearch/perception_models, apps/detection/DETA_pe/main.py); these helpers keep the
ops safe on their own, should a config autocast more.
"""
import functools
from contextlib import contextmanager
from typing import Any

import torch


def to_fp32(x: Any) -> Any:
    """Floating-point tensors (also inside lists / tuples / dicts) as float32; rest unchanged."""
    if isinstance(x, torch.Tensor):
        return x.float() if x.is_floating_point() else x
    if isinstance(x, (list, tuple)):
        return type(x)(to_fp32(v) for v in x)
    if isinstance(x, dict):
        return {k: to_fp32(v) for k, v in x.items()}
    return x


@contextmanager
def no_autocast(device_type: str):
    """Autocast off for ``device_type`` ('cuda', 'cpu', ...) inside the block."""
    with torch.autocast(device_type=device_type, enabled=False):
        yield


def _device_type(*xs: Any) -> str:
    for x in xs:
        if isinstance(x, torch.Tensor):
            return x.device.type
    return 'cpu'


def fp32_no_autocast(fn):
    """Decorator: ``fn`` runs with autocast off and its floating-point tensor arguments fp32."""
    @functools.wraps(fn)
    def run(*args, **kwargs):
        with no_autocast(_device_type(*args, *kwargs.values())):
            return fn(*to_fp32(args), **to_fp32(kwargs))
    return run
