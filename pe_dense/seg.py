"""Registers the segmentation / depth parts (extra ``[seg]``): linear-probe, depth and DPT
heads, label / depth checks, robust image loading, and the training hooks and optimizers."""
from . import backbone, engine  # noqa: F401
from .datasets import robust_loading, seg_checks  # noqa: F401
from .models import decode_heads, necks  # noqa: F401
