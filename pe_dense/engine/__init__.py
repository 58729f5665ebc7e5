"""Optimizer constructors, hooks and safe checkpoint I/O.

Importing registers; it patches nothing. ``enable_checkpoint_io()`` switches on, for the
process, what pe_dense's tools run with (tools/train.py, tools/test.py, tools/infer.py ...).
"""
from . import hooks  # noqa: F401
from . import optimizers  # noqa: F401
from . import atomic_io, cpu_distributed, fsdp2, loops, safe_checkpoint  # noqa: F401


def enable_checkpoint_io() -> None:
    """Resume on torch >= 2.6 with weights_only=True and an allowlist of MMEngine's classes
    (``safe_checkpoint``), and write local checkpoints to a temp file, then rename
    (``atomic_io``), and let ``load_from`` / ``--checkpoint`` name weights (``hf://``, ``hf-hub:``,
    ``timm/``, URLs). All replace MMEngine's handlers for the whole process."""
    from pe_dense.models.backbones.hub import register_checkpoint_schemes
    safe_checkpoint.install()
    atomic_io.install()
    register_checkpoint_schemes()
