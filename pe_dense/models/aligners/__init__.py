"""Spatial alignment and distillation models."""
from .spatial_aligner import SpatialAligner, random_token_mask  # noqa: F401
from .distiller import SpatialDistiller  # noqa: F401
from .export import export_student, student_from_checkpoint  # noqa: F401
