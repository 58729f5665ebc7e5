"""Registers every pe_dense component (extra ``[all]``)."""
from . import align, backbone, core, det, seg  # noqa: F401
