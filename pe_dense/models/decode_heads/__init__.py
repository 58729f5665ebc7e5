"""Segmentation and depth heads registered in MMSegmentation."""
from .depth import DPTDepthHead, LinearDepthHead, SigLoss, bin_centres, spaced_layers  # noqa: F401
from .linear_probe import LinearProbeHead, gather_features  # noqa: F401

__all__ = ['LinearProbeHead', 'LinearDepthHead', 'DPTDepthHead', 'SigLoss', 'bin_centres',
           'spaced_layers', 'gather_features']
