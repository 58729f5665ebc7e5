"""Optimizer wrapper constructors."""
from .layer_decay import LayerDecayOptimWrapperConstructor, layer_id  # noqa: F401
from .lamb import Lamb  # noqa: F401,E402
