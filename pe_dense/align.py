"""Registers the spatial alignment / distillation parts (extra ``[align]``): aligners,
frozen PE and SAM 2.1 teachers (sam2 is imported when a SAM teacher is built), losses,
SA-1B / image-folder datasets and their transforms, hooks and optimizers."""
from . import backbone, datasets, engine  # noqa: F401
from .models import aligners, losses, teachers  # noqa: F401
