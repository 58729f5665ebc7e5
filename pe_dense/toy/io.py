"""Small writers shared by the generators: deterministic bytes, progress, size parsing."""
import json
import os
import os.path as osp
from typing import Iterable, Sequence, Tuple, Union

import numpy as np
from PIL import Image

JPEG_QUALITY = 95


def parse_size(size: Union[int, str, Sequence[int]]) -> Tuple[int, int]:
    """``128`` / ``'240x136'`` / ``(240, 136)`` -> (w, h)."""
    if isinstance(size, str):
        parts = size.lower().split('x')
        if len(parts) not in (1, 2) or not all(p.strip().isdigit() for p in parts):
            raise ValueError(f'size {size!r} must be "S" or "WxH"')
        size = [int(p) for p in parts] * (3 - len(parts))
    if isinstance(size, (int, np.integer)):
        size = (int(size), int(size))
    if len(size) != 2:
        raise ValueError(f'size {size!r} must be S, "WxH" or (w, h)')
    w, h = (int(v) for v in size)
    if w < 16 or h < 16:
        raise ValueError(f'size {(w, h)} is too small; need at least 16x16')
    return w, h


def image_rng(seed: int, *keys: int) -> np.random.Generator:
    """One generator per (seed, split, index): item i does not depend on how many come before."""
    return np.random.default_rng([int(seed), *[int(k) for k in keys]])


def save_jpg(path: str, rgb: np.ndarray) -> None:
    os.makedirs(osp.dirname(path), exist_ok=True)
    Image.fromarray(rgb).save(path, quality=JPEG_QUALITY)


def save_png(path: str, arr: np.ndarray, palette: Sequence[int] = None) -> None:
    """uint8 / uint16 single-channel PNG; with ``palette`` a P-mode (indexed) PNG."""
    os.makedirs(osp.dirname(path), exist_ok=True)
    if arr.dtype not in (np.uint8, np.uint16) or arr.ndim != 2:
        raise ValueError(f'{path}: PNG maps must be 2-D uint8/uint16, got {arr.dtype} {arr.shape}')
    img = Image.fromarray(arr)  # uint8 -> 'L', uint16 -> 'I;16'
    if palette is not None:
        img.putpalette(list(palette))  # 'L' -> indexed 'P'
    img.save(path)


def dump_json(path: str, obj) -> None:
    os.makedirs(osp.dirname(path) or '.', exist_ok=True)
    with open(path, 'w') as f:
        json.dump(obj, f, separators=(',', ':'))


def dump_jsonl(path: str, rows: Iterable[dict]) -> None:
    os.makedirs(osp.dirname(path) or '.', exist_ok=True)
    with open(path, 'w') as f:
        for r in rows:
            f.write(json.dumps(r) + '\n')


def progress(iterable, total: int, desc: str, enabled: bool):
    """tqdm bar on stderr when ``enabled`` (long runs), else the bare iterable."""
    if not enabled:
        return iterable
    from tqdm import tqdm
    return tqdm(iterable, total=total, desc=desc, leave=False)


def check_counts(**counts: int) -> None:
    for k, v in counts.items():
        if not isinstance(v, (int, np.integer)) or v < 0:
            raise ValueError(f'{k} must be a non-negative integer, got {v!r}')
