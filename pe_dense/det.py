"""Registers the detection parts (extra ``[det]``): DETA, its head and assigners, SimpleFPN,
the checked COCO dataset, robust image loading, the LVIS federated loss and repeat-factor
sampler, and the training hooks and optimizers."""
from . import backbone, engine  # noqa: F401
from .datasets import coco_checked, robust_loading  # noqa: F401
from .models import dense_heads, detectors, losses, necks, task_modules  # noqa: F401
