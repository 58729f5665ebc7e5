"""Small building blocks shared by several models (``deform_attn`` needs mmcv's ops: import it
from its module)."""
from .fp32 import fp32_no_autocast, no_autocast, to_fp32

__all__ = ['fp32_no_autocast', 'no_autocast', 'to_fp32']
