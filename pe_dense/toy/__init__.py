"""Generators of small datasets in real on-disk formats (COCO, ADE20K, NYU, DAVIS, ...).

Each ``make_<kind>(out, ...)`` is deterministic given ``seed``, writes only under ``out`` and
returns a summary dict. ``make_toy(kind, out, **kw)`` dispatches by name (used by the CLI
``tools/make_toy_data.py``).
"""
from .coco import make_coco

GENERATORS = dict(coco=make_coco)


def make_toy(kind: str, out: str, **kwargs) -> dict:
    """Run the generator named ``kind``; unknown kinds raise with the list of known ones."""
    if kind not in GENERATORS:
        raise ValueError(f'unknown toy dataset kind {kind!r}; choose from {sorted(GENERATORS)}')
    return GENERATORS[kind](out, **kwargs)


__all__ = ['GENERATORS', 'make_toy', 'make_coco']
