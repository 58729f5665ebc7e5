"""Optimizer constructors, hooks and safe checkpoint I/O."""
from . import hooks  # noqa: F401
from . import optimizers  # noqa: F401
from . import atomic_io, cpu_distributed, loops, safe_checkpoint  # noqa: F401

safe_checkpoint.install()  # resume on torch >= 2.6 with weights_only=True and an allowlist
atomic_io.install()  # checkpoints are written to a temp file, then renamed
