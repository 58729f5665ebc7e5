"""Real photographs for toy data: scikit-image's bundled samples (no download needed).

Synthetic shapes on flat colours teach a network nothing about natural statistics; pasting
them over crops of real pictures keeps the toy sets close to what a PE backbone expects.
"""
from functools import lru_cache
from typing import Optional, Sequence, Tuple

import cv2
import numpy as np

# Samples that ship inside the scikit-image wheel (others need pooch + internet).
DEFAULT_PICTURES = (
    'astronaut', 'coffee', 'chelsea', 'rocket', 'coins', 'camera', 'hubble_deep_field',
    'immunohistochemistry', 'motorcycle_left', 'motorcycle_right', 'brick', 'grass',
    'gravel', 'retina', 'moon', 'clock', 'cell', 'colorwheel')


def _to_rgb(img: np.ndarray) -> np.ndarray:
    if img.dtype != np.uint8:
        img = (255 * (img.astype(np.float64) / max(float(img.max()), 1e-8))).astype(np.uint8)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    return np.ascontiguousarray(img[..., :3])


def _load_one(name: str) -> Optional[np.ndarray]:
    import skimage.data as skdata
    try:
        if name.startswith('motorcycle_'):
            left, right, _ = skdata.stereo_motorcycle()
            return _to_rgb(left if name.endswith('left') else right)
        return _to_rgb(getattr(skdata, name)())
    except (ModuleNotFoundError, OSError, ValueError, AttributeError):
        return None  # sample needs a download (pooch) or does not exist in this version


@lru_cache(maxsize=8)
def load_pictures(names: Tuple[str, ...] = DEFAULT_PICTURES) -> Tuple[np.ndarray, ...]:
    """RGB uint8 pictures for ``names``; those not available offline are skipped."""
    pics = tuple(p for p in (_load_one(n) for n in names) if p is not None)
    if not pics:
        raise RuntimeError(f'none of the scikit-image samples {names} could be loaded offline')
    return pics


def motorcycle_stereo() -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(left RGB, right RGB, disparity float32 in px; non-finite = unknown)."""
    import skimage.data as skdata
    left, right, disp = skdata.stereo_motorcycle()
    return _to_rgb(left), _to_rgb(right), disp.astype(np.float32)


def crop_window(rng: np.random.Generator, hw: Tuple[int, int], size: Tuple[int, int],
                min_scale: float = 0.35) -> Tuple[int, int, int, int, bool]:
    """(x0, y0, w, h, flip): a random window of an ``hw`` picture with the aspect of ``size``."""
    w, h = size
    ih, iw = hw
    aspect = w / h
    cw = min(iw, ih * aspect) * rng.uniform(min_scale, 1.0)
    cw, ch = max(int(round(cw)), 1), max(int(round(cw / aspect)), 1)
    cw, ch = min(cw, iw), min(ch, ih)
    x0 = int(rng.integers(0, iw - cw + 1))
    y0 = int(rng.integers(0, ih - ch + 1))
    return x0, y0, cw, ch, bool(rng.random() < 0.5)


def apply_window(img: np.ndarray, window, size: Tuple[int, int],
                 interp: Optional[int] = None) -> np.ndarray:
    """Cut ``window`` from ``img`` and resize to ``size`` (w, h); area filter when shrinking."""
    x0, y0, cw, ch, flip = window
    if interp is None:
        interp = cv2.INTER_AREA if cw >= size[0] else cv2.INTER_LINEAR
    out = cv2.resize(img[y0:y0 + ch, x0:x0 + cw], tuple(size), interpolation=interp)
    return np.ascontiguousarray(out[:, ::-1] if flip else out)


def random_crop(img: np.ndarray, rng: np.random.Generator, size: Tuple[int, int],
                min_scale: float = 0.35) -> np.ndarray:
    """A random crop of ``img`` with the aspect of ``size`` (w, h), resized to it, maybe flipped."""
    return apply_window(img, crop_window(rng, img.shape[:2], size, min_scale), size)


class PictureBank:
    """Seeded access to real pictures: backgrounds and textures of any size."""

    def __init__(self, names: Sequence[str] = DEFAULT_PICTURES):
        self.pictures = load_pictures(tuple(names))

    def __len__(self) -> int:
        return len(self.pictures)

    def pick(self, rng: np.random.Generator) -> np.ndarray:
        return self.pictures[int(rng.integers(len(self.pictures)))]

    def crop(self, rng: np.random.Generator, size: Tuple[int, int],
             min_scale: float = 0.35) -> np.ndarray:
        """A (h, w, 3) uint8 crop of a random picture; ``size`` is (w, h)."""
        return random_crop(self.pick(rng), rng, size, min_scale)
