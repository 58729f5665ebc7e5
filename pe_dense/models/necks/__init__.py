"""Necks turning plain-ViT tokens into pyramids."""
from .simple_fpn import LayerNorm2d, SimpleFPN  # noqa: F401

__all__ = ['SimpleFPN', 'LayerNorm2d']
