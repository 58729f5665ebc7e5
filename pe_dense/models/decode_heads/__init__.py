"""Segmentation and depth heads registered in MMSegmentation."""
from .depth import DPTDepthHead, LinearDepthHead, bin_centres  # noqa: F401
from .linear_probe import LinearProbeHead, gather_features  # noqa: F401

__all__ = ['LinearProbeHead', 'LinearDepthHead', 'DPTDepthHead', 'bin_centres',
           'gather_features']
