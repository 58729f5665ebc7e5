"""Generators of small datasets in real on-disk formats (COCO, ADE20K, NYU, DAVIS, ...).

Each ``make_<kind>(out, ...)`` is deterministic given ``seed``, writes only under ``out`` and
returns a summary dict. ``make_toy(kind, out, **kw)`` dispatches by name (used by the CLI
``tools/make_toy_data.py``).
"""
import inspect

from .ade20k import ADE20K_TOY_CLASSES, make_ade20k
from .coco import make_coco
from .davis import davis_palette, make_davis
from .images import make_images, make_sa1b
from .imagetext import make_imagetext
from .nyu import make_nyu

GENERATORS = dict(coco=make_coco, ade20k=make_ade20k, nyu=make_nyu, davis=make_davis,
                  images=make_images, imagetext=make_imagetext, sa1b=make_sa1b)


def make_toy(kind: str, out: str, **kwargs) -> dict:
    """Run the generator named ``kind``; unknown kinds raise with the list of known ones."""
    if kind not in GENERATORS:
        raise ValueError(f'unknown toy dataset kind {kind!r}; choose from {sorted(GENERATORS)}')
    fn = GENERATORS[kind]
    params = inspect.signature(fn).parameters
    unknown = sorted(set(kwargs) - set(params))
    if unknown:
        raise ValueError(f'toy kind {kind!r} does not take {unknown}; its options: '
                         f'{[p for p in params if p != "out"]}')
    return fn(out, **kwargs)


__all__ = ['GENERATORS', 'make_toy', 'make_coco', 'make_ade20k', 'make_nyu', 'make_davis',
           'make_images', 'make_sa1b', 'make_imagetext', 'ADE20K_TOY_CLASSES', 'davis_palette']
