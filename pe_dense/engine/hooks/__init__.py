"""Training hooks."""
from .rng_state import RNGStateHook  # noqa: F401,E402
