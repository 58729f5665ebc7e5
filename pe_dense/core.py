"""Registers PE-Core CLIP training (extra ``[core]``): the text tower and two-tower model
(open_clip's tokenizer), contrastive losses, image-text / video-text datasets and transforms,
zero-shot and retrieval metrics, hooks and optimizers."""
from . import backbone, datasets, engine, evaluation  # noqa: F401
from .models import clip, losses  # noqa: F401
