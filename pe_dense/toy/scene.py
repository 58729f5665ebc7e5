"""Compose a picture: real-photo background + a few non-overlapping drawn objects."""
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np

from .pictures import PictureBank
from .shapes import COLORS, Shape, jitter_color, paint, random_shape


@dataclass
class Obj:
    """A drawn object: geometry, colour name and RGB, and its visible mask after compositing.
    ``rgb=None`` makes it a cut-out of a real picture (pasted crop under the shape mask)."""
    shape: Shape
    color_name: Optional[str]
    rgb: Optional[Tuple[int, int, int]]
    mask: Optional[np.ndarray] = None


def place_shapes(rng: np.random.Generator, hw: Tuple[int, int], kinds: Sequence[str],
                 radius_range: Tuple[float, float], margin: int = 2,
                 tries: int = 40) -> List[Shape]:
    """Shapes of ``kinds`` at random spots, not touching each other; those that never fit are
    dropped (so crowded small images get fewer objects rather than heavy occlusion)."""
    placed, taken = [], np.zeros(hw, bool)
    for kind in kinds:
        for _ in range(tries):
            s = random_shape(rng, kind, hw, radius_range)
            m = s.mask(hw)
            if m.sum() < 16:
                continue
            grown = _dilate(m, margin)
            if not (grown & taken).any():
                placed.append(s)
                taken |= grown
                break
    return placed


def _dilate(mask: np.ndarray, r: int) -> np.ndarray:
    if r <= 0:
        return mask
    import cv2
    k = np.ones((2 * r + 1, 2 * r + 1), np.uint8)
    return cv2.dilate(mask.astype(np.uint8), k) > 0


def pick_color(rng: np.random.Generator, name: Optional[str] = None) -> Tuple[str, tuple]:
    """(name, jittered RGB) — a random palette colour unless ``name`` is given."""
    names = list(COLORS)
    if name is None:
        name = names[int(rng.integers(len(names)))]
    return name, jitter_color(rng, COLORS[name])


def render(rng: np.random.Generator, background: np.ndarray, objs: Sequence[Obj],
           bank: Optional[PictureBank] = None, texture_prob: float = 0.3) -> np.ndarray:
    """Paint ``objs`` in order onto a copy of ``background``; fills each ``obj.mask`` with the
    visible part (later objects occlude earlier ones)."""
    img = background.copy()
    hw = img.shape[:2]
    full = [o.shape.mask(hw) for o in objs]
    for o, m in zip(objs, full):
        if o.rgb is None:
            if bank is None:
                raise ValueError('pasted cut-outs (rgb=None) need a PictureBank')
            img[m] = bank.crop(rng, (hw[1], hw[0]))[m]
            continue
        tex = None
        if bank is not None and rng.random() < texture_prob:
            tex = bank.crop(rng, (hw[1], hw[0]))
        paint(img, m, o.rgb, rng, texture=tex)
    cover = np.zeros(hw, bool)
    for o, m in reversed(list(zip(objs, full))):
        o.mask = m & ~cover
        cover |= m
    return img
