"""The PE backbone alone, for any OpenMMLab config (mmdet, mmseg, mmpretrain, mmpose ...).

``custom_imports = dict(imports=['pe_dense.backbone'], allow_failed_imports=False)`` registers
``PE`` in MMEngine's root ``MODELS`` registry with only torch, mmengine and timm installed.
"""
from .models.backbones import ARCH_SETTINGS, PE, TIMM_NAMES, CheckpointError, resolve_arch

__all__ = ['PE', 'ARCH_SETTINGS', 'TIMM_NAMES', 'resolve_arch', 'CheckpointError']
