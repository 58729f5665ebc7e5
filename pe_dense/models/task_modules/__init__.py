"""Assigners and other task modules registered in MMDetection."""
from . import assigners  # noqa: F401
