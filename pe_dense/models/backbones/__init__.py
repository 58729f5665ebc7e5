"""PE backbone (the tower), RoPE, position embeddings and checkpoint conversion."""
from .arch import ARCH_SETTINGS, TIMM_NAMES, resolve_arch  # noqa: F401
from .checkpoint import CheckpointError  # noqa: F401
from .pe import PE  # noqa: F401

__all__ = ['PE', 'ARCH_SETTINGS', 'TIMM_NAMES', 'resolve_arch', 'CheckpointError']
