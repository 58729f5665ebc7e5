"""PCA of a layer's tokens rendered as colour (the paper's LCh feature pictures).

Mapping (each component min-max scaled to [0, 1] over all rendered tokens after clipping to
its 1st-99th percentile; the sign of each component is fixed so its largest loading is
positive, making pictures reproducible):

    PC1 -> L* (lightness)  = L_RANGE[0] + n1 * (L_RANGE[1] - L_RANGE[0])
    PC2 -> C* (chroma)     = C_RANGE[0] + n2 * (C_RANGE[1] - C_RANGE[0])
    PC3 -> h  (hue, deg)   = n3 * HUE_SPAN   (HUE_SPAN < 360 so the two ends stay distinct)

then LCh -> CIE Lab -> sRGB with ``skimage.color`` (out-of-gamut values are clipped).
Foreground masking: PC1 of all tokens, oriented so tokens on the image border score low
(backgrounds touch the border), splits foreground (n1 > threshold) from background; the
colour PCA is then refit on foreground tokens only and the background is painted black.
A joint PCA over several images gives corresponding parts the same colour.
"""
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch

L_RANGE = (25., 90.)
C_RANGE = (5., 60.)
HUE_SPAN = 300.


def pca(x: np.ndarray, n: int = 3) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, components (n, C), projections (N, n)) with deterministic signs."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f'pca needs (N >= 2, C) tokens, got shape {x.shape}')
    mean = x.mean(0)
    _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
    comps = vt[:n]
    if len(comps) < n:  # fewer dims than components: pad with zero directions
        comps = np.concatenate([comps, np.zeros((n - len(comps), x.shape[1]))])
    pick = np.abs(comps).argmax(1)
    comps = comps * np.sign(comps[np.arange(n), pick] + 1e-30)[:, None]
    return mean, comps, (x - mean) @ comps.T


def robust_unit(v: np.ndarray, lo_q: float = 1., hi_q: float = 99.) -> np.ndarray:
    """Clip to the [lo_q, hi_q] percentiles and scale to [0, 1] (constant -> 0.5)."""
    lo, hi = np.percentile(v, [lo_q, hi_q])
    if hi - lo < 1e-12:
        return np.full_like(v, 0.5, dtype=np.float64)
    return (np.clip(v, lo, hi) - lo) / (hi - lo)


def lch_colours(proj: np.ndarray) -> np.ndarray:
    """(N, 3) projections -> (N, 3) sRGB floats in [0, 1] via LCh -> Lab -> RGB."""
    from skimage.color import lab2rgb, lch2lab
    n = np.stack([robust_unit(proj[:, i]) for i in range(3)], axis=1)
    lch = np.stack([L_RANGE[0] + n[:, 0] * (L_RANGE[1] - L_RANGE[0]),
                    C_RANGE[0] + n[:, 1] * (C_RANGE[1] - C_RANGE[0]),
                    np.deg2rad(n[:, 2] * HUE_SPAN)], axis=1)
    return np.clip(lab2rgb(lch2lab(lch[None]))[0], 0, 1)


def border_mask(h: int, w: int) -> np.ndarray:
    m = np.zeros((h, w), bool)
    m[0], m[-1], m[:, 0], m[:, -1] = True, True, True, True
    return m.ravel()


def foreground(maps: Sequence[np.ndarray], threshold: float = 0.5) -> List[np.ndarray]:
    """Per image (h, w) bool: PC1 (border-low orientation) above ``threshold`` after scaling."""
    tokens = np.concatenate([m.reshape(m.shape[0], -1).T for m in maps])
    _, _, proj = pca(tokens, 1)
    pc1 = proj[:, 0]
    border = np.concatenate([border_mask(*m.shape[1:]) for m in maps])
    if (~border).any() and pc1[border].mean() > pc1[~border].mean():
        pc1 = -pc1
    unit = robust_unit(pc1)
    out, start = [], 0
    for m in maps:
        n = m.shape[1] * m.shape[2]
        out.append(unit[start:start + n].reshape(m.shape[1:]) > threshold)
        start += n
    return out


def pca_images(maps: Sequence[np.ndarray], masks: Optional[Sequence[np.ndarray]] = None
               ) -> Tuple[List[np.ndarray], np.ndarray]:
    """Joint PCA of (C, h, w) maps -> per image (h, w, 3) colours and the (3, C) components.

    With ``masks``, the PCA is fit on the masked-in tokens only and the others are black.
    """
    flat = [np.asarray(m, dtype=np.float64).reshape(m.shape[0], -1).T for m in maps]
    keep = [np.ones(len(f), bool) if masks is None else np.asarray(k).ravel()
            for f, k in zip(flat, masks or [None] * len(flat))]
    sel = np.concatenate([f[k] for f, k in zip(flat, keep)])
    if len(sel) < 2:
        raise ValueError('feature PCA: fewer than 2 tokens to fit (foreground mask empty?)')
    _, comps, proj = pca(sel, 3)
    rgb = lch_colours(proj)
    out, start = [], 0
    for f, k, m in zip(flat, keep, maps):
        img = np.zeros((len(f), 3))
        img[k] = rgb[start:start + k.sum()]
        start += k.sum()
        out.append(img.reshape(*m.shape[1:], 3))
    return out, comps


def side_by_side(pictures: Sequence[np.ndarray], colours: Sequence[np.ndarray],
                 height: int = 256) -> np.ndarray:
    """Rows of [input | PCA colours], each resized to ``height`` (colours: nearest)."""
    from PIL import Image
    rows = []
    for pic, col in zip(pictures, colours):
        w = max(int(round(pic.shape[1] * height / pic.shape[0])), 1)
        left = np.asarray(Image.fromarray(pic).resize((w, height), Image.BILINEAR))
        col8 = (np.clip(col, 0, 1) * 255).round().astype(np.uint8)
        right = np.asarray(Image.fromarray(col8).resize((w, height), Image.NEAREST))
        rows.append(np.concatenate([left, right], axis=1))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in rows]
    return np.concatenate(rows, axis=0)


def visualize(source, pictures: Sequence[np.ndarray], layer: int, size: int,
              mask_threshold: Optional[float] = None, height: int = 256
              ) -> Tuple[np.ndarray, List[np.ndarray]]:
    """Features of ``layer`` for RGB uint8 pictures -> (side-by-side RGB, per-image colours)."""
    from .feature_cache import to_tensor
    p = source.patch_size
    s = max(size // p, 1) * p
    x = torch.stack([to_tensor(pic, (s, s), source.mean, source.std) for pic in pictures])
    maps = [m for m in source.extract(x, [layer])[0].cpu().numpy()]
    masks = foreground(maps, mask_threshold) if mask_threshold is not None else None
    colours, _ = pca_images(maps, masks)
    return side_by_side(pictures, colours, height), colours
