"""Optimizer wrapper constructors."""
from .layer_decay import LayerDecayOptimWrapperConstructor, layer_id  # noqa: F401
