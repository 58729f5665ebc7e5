"""Optimizer constructors, hooks and safe checkpoint I/O."""
from . import hooks  # noqa: F401
from . import optimizers  # noqa: F401
