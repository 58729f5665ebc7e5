"""Detectors (DETA) registered in MMDetection."""
from .deta import DETA, select_queries  # noqa: F401
from .deta_tta import DETATTAModel  # noqa: F401

__all__ = ['DETA', 'select_queries', 'DETATTAModel']
