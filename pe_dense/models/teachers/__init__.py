"""Frozen teachers producing alignment targets."""
from .frozen_pe import FrozenPETeacher  # noqa: F401
from .sam_targets import SAM2Teacher, build_sam21, grid_points, maps_to_tokens, resample_logits  # noqa: F401,E501
