"""Frozen teachers producing alignment targets."""
from .frozen_pe import FrozenPETeacher  # noqa: F401
from .sam_targets import SAM2Teacher, build_sam21, grid_points, maps_to_tokens, resample_logits  # noqa: F401,E501
from .sa1b_masks import LoadSA1BMaskTargets, sa1b_mask_logits  # noqa: F401
