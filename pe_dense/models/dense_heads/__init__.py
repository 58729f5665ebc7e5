"""Detection heads registered in MMDetection."""
from .deta_head import DETAHead  # noqa: F401

__all__ = ['DETAHead']
