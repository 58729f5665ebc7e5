"""Drawn objects: shape masks, colours and a light texture so they are not flat stickers."""
from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
from skimage import draw

SHAPES = ('circle', 'square', 'triangle', 'star', 'ellipse', 'rectangle', 'diamond', 'hexagon')

COLORS: Dict[str, Tuple[int, int, int]] = {
    'red': (220, 30, 30), 'green': (30, 170, 50), 'blue': (30, 70, 225),
    'yellow': (240, 220, 30), 'purple': (140, 40, 190), 'orange': (250, 135, 20),
    'cyan': (30, 210, 220), 'white': (245, 245, 245), 'black': (15, 15, 15),
    'pink': (245, 120, 190)}


@dataclass
class Shape:
    """Geometry of one object: centre (x, y), radius, rotation (rad) and aspect (w/h)."""
    kind: str
    cx: float
    cy: float
    radius: float
    angle: float = 0.0
    aspect: float = 1.0

    def mask(self, hw: Tuple[int, int]) -> np.ndarray:
        """Boolean (h, w) mask, clipped to the image."""
        out = np.zeros(hw, dtype=bool)
        if self.kind in ('circle', 'ellipse'):
            ry = self.radius if self.kind == 'circle' else self.radius / np.sqrt(self.aspect)
            rx = self.radius if self.kind == 'circle' else self.radius * np.sqrt(self.aspect)
            rr, cc = draw.ellipse(self.cy, self.cx, ry, rx, shape=hw, rotation=self.angle)
        else:
            pts = self.polygon()
            rr, cc = draw.polygon(pts[:, 1], pts[:, 0], shape=hw)
        out[rr, cc] = True
        return out

    def polygon(self) -> np.ndarray:
        """(N, 2) xy vertices of polygonal shapes."""
        k, r = self.kind, self.radius
        if k == 'square':
            t = np.deg2rad([45, 135, 225, 315])
            xy = np.stack([np.cos(t), np.sin(t)], 1) * r
        elif k in ('rectangle', 'diamond'):
            base = [[1, 1], [-1, 1], [-1, -1], [1, -1]] if k == 'rectangle' else \
                [[1, 0], [0, 1], [-1, 0], [0, -1]]
            scale = (0.75 if k == 'rectangle' else 1.0) * r
            xy = np.array(base, float) * scale * [np.sqrt(self.aspect), 1 / np.sqrt(self.aspect)]
        elif k == 'triangle':
            t = np.deg2rad([-90, 30, 150])
            xy = np.stack([np.cos(t), np.sin(t)], 1) * r
        elif k == 'hexagon':
            t = np.deg2rad(np.arange(6) * 60)
            xy = np.stack([np.cos(t), np.sin(t)], 1) * r
        elif k == 'star':
            t = np.deg2rad(-90 + np.arange(10) * 36)
            rad = np.where(np.arange(10) % 2 == 0, r, 0.45 * r)
            xy = np.stack([np.cos(t) * rad, np.sin(t) * rad], 1)
        else:
            raise ValueError(f'unknown shape {k!r}; known: {SHAPES}')
        c, s = np.cos(self.angle), np.sin(self.angle)
        rot = np.array([[c, -s], [s, c]])
        return xy @ rot.T + [self.cx, self.cy]


def check_shapes(names: Sequence[str]) -> Tuple[str, ...]:
    """Validate class names that must be drawable shapes."""
    names = tuple(names)
    bad = [n for n in names if n not in SHAPES]
    if bad or not names:
        raise ValueError(f'classes {bad or names} are not drawable shapes; choose from {SHAPES}')
    if len(set(names)) != len(names):
        raise ValueError(f'classes contain duplicates: {names}')
    return names


def random_shape(rng: np.random.Generator, kind: str, hw: Tuple[int, int],
                 radius_range: Tuple[float, float]) -> Shape:
    """A shape fully inside the image, radius as a fraction of the short side."""
    h, w = hw
    r = rng.uniform(*radius_range) * min(h, w)
    cx = rng.uniform(r, max(w - r, r + 1e-3))
    cy = rng.uniform(r, max(h - r, r + 1e-3))
    angle = rng.uniform(-0.35, 0.35) if kind != 'ellipse' else rng.uniform(-np.pi / 2, np.pi / 2)
    aspect = rng.uniform(1.4, 2.0) if kind in ('ellipse', 'rectangle', 'diamond') else 1.0
    return Shape(kind, float(cx), float(cy), float(r), float(angle), float(aspect))


def paint(canvas: np.ndarray, mask: np.ndarray, color: Sequence[int],
          rng: np.random.Generator, noise: float = 10.0,
          texture: Optional[np.ndarray] = None) -> None:
    """Fill ``mask`` in place with ``color`` under soft shading, noise and an optional texture."""
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return
    h, w = mask.shape
    g = rng.uniform(-1, 1, size=2)
    shade = 1.0 + 0.15 * (g[0] * (xs / w - 0.5) + g[1] * (ys / h - 0.5)) * 2
    px = np.asarray(color, np.float32)[None] * shade[:, None]
    if texture is not None:  # modulate by a grey real-picture texture so objects look "made of" it
        tex = texture[ys, xs].astype(np.float32).mean(1, keepdims=True) / 255.0
        px = px * (0.75 + 0.5 * tex)
    px = px + rng.normal(0, noise, size=px.shape)
    canvas[ys, xs] = np.clip(px, 0, 255).astype(np.uint8)


def jitter_color(rng: np.random.Generator, color: Sequence[int], amount: float = 18) -> tuple:
    """A colour near ``color`` so instances of a class are similar but not identical."""
    c = np.asarray(color, np.float32) + rng.uniform(-amount, amount, 3)
    return tuple(int(v) for v in np.clip(c, 0, 255))
