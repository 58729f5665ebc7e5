"""NYU Depth v2 layout read by mmseg's NYUDataset: images/{train,test}/<scene>_<n>.jpg and
annotations/{train,test}/<scene>_<n>.png (uint16 depth in millimetres, 0 = invalid; mmseg
configs load them with ``LoadDepthAnnotation(depth_rescale_factor=1e-3)`` to get metres).

Depth comes from ray-casting a small indoor scene (tilted floor, back wall, spheres and boxes
standing on the floor); surfaces are textured with real pictures in world coordinates and
shaded by normal and distance, so appearance carries the geometry a probe must recover.
Optionally crops of the Middlebury motorcycle pair add real depth from its disparity.
"""
import os.path as osp
from typing import Tuple

import cv2
import numpy as np

from .io import check_counts, image_rng, parse_size, progress, save_jpg, save_png
from .pictures import apply_window, crop_window, load_pictures, motorcycle_stereo
from .shapes import COLORS

MAX_DEPTH_M = 10.0
# scene type (an NYUDataset class name) -> (wall picture, floor picture)
SCENES = {'bedroom': ('astronaut', 'coffee'), 'kitchen': ('brick', 'gravel'),
          'living_room': ('chelsea', 'grass'), 'office': ('camera', 'brick'),
          'bathroom': ('immunohistochemistry', 'coins')}
# Middlebury 2014 Motorcycle, quarter resolution (from skimage.data.stereo_motorcycle's doc)
MOTORCYCLE_F, MOTORCYCLE_BASELINE_MM, MOTORCYCLE_DOFFS = 994.978, 193.001, 31.086


def _rays(w, h, f):
    u, v = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    return np.stack([(u - w / 2) / f, (v - h / 2) / f, np.ones_like(u)], -1)  # z = 1: t == depth


def _plane_hit(d, normal, offset):
    """t where the ray meets {P : n.P = offset}; inf when parallel or behind."""
    nd = d @ normal
    with np.errstate(divide='ignore', invalid='ignore'):
        t = offset / nd
    return np.where((nd > 1e-6) & (t > 0), t, np.inf)


def _sphere_hit(d, c, r):
    a = (d * d).sum(-1)
    b = d @ c
    disc = b * b - a * (c @ c - r * r)
    t = (b - np.sqrt(np.maximum(disc, 0))) / a
    return np.where((disc > 0) & (t > 0), t, np.inf)


def _box_hit(d, lo, hi):
    """Slab test of an axis-aligned box; returns (t, index of the axis of the entry face)."""
    with np.errstate(divide='ignore', invalid='ignore'):
        t1, t2 = lo / d, hi / d
    tnear, tfar = np.minimum(t1, t2), np.maximum(t1, t2)
    t_in, axis = tnear.max(-1), tnear.argmax(-1)
    hit = (t_in <= tfar.min(-1)) & (t_in > 0)
    return np.where(hit, t_in, np.inf), axis


def _texture(pic, a, b, scale):
    """Sample ``pic`` at world coordinates (a, b) metres -> colours, tiled (wraps around)."""
    mx = np.mod(a * scale, pic.shape[1] - 1).astype(np.float32)
    my = np.mod(b * scale, pic.shape[0] - 1).astype(np.float32)
    return cv2.remap(pic, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP).astype(np.float32)


def render_room(rng: np.random.Generator, size: Tuple[int, int], scene: str):
    """(RGB uint8, depth float32 metres) of one random room of type ``scene``."""
    w, h = size
    d = _rays(w, h, f=rng.uniform(0.75, 0.95) * w)
    pitch, roll = rng.uniform(0.12, 0.4), rng.uniform(-0.08, 0.08)
    floor_n = np.array([np.sin(roll), np.cos(roll) * np.cos(pitch), np.cos(roll) * np.sin(pitch)])
    cam_h = rng.uniform(1.1, 1.6)
    yaw = rng.uniform(-0.3, 0.3)
    wall_n, wall_d = np.array([np.sin(yaw), 0.0, np.cos(yaw)]), rng.uniform(4.0, 8.0)
    wall_pic, floor_pic = (load_pictures((n,))[0] for n in SCENES[scene])
    t_floor, t_wall = _plane_hit(d, floor_n, cam_h), _plane_hit(d, wall_n, wall_d)
    depth = np.minimum(t_floor, t_wall)
    p = d * depth[..., None]
    img = np.where((t_floor <= t_wall)[..., None], _texture(floor_pic, p[..., 0], p[..., 2], 90),
                   _texture(wall_pic, p[..., 0], p[..., 1], 70))
    light = np.array([0.3, -0.8, -0.5]) / np.linalg.norm([0.3, -0.8, -0.5])
    for _ in range(int(rng.integers(2, 5))):
        depth, img = _add_object(rng, d, depth, img, floor_n, cam_h, light)
    img = img * np.clip(1.15 - 0.07 * depth, 0.35, 1.1)[..., None]  # light falls off with distance
    img = np.clip(img + rng.normal(0, 3, img.shape), 0, 255).astype(np.uint8)
    return img, np.minimum(depth, MAX_DEPTH_M).astype(np.float32)


def _add_object(rng, d, depth, img, floor_n, cam_h, light):
    """Ray-cast one sphere or box standing on the floor in front of the camera; z-buffered."""
    x, z, r = rng.uniform(-1.5, 1.5), rng.uniform(1.5, 5.0), rng.uniform(0.25, 0.6)
    y_floor = (cam_h - floor_n[0] * x - floor_n[2] * z) / floor_n[1]
    rgb = np.array(list(COLORS.values())[int(rng.integers(len(COLORS)))], np.float32)
    if rng.random() < 0.5:
        c = np.array([x, y_floor, z]) - r * floor_n  # "up" is -floor normal (y points down)
        t = _sphere_hit(d, c, r)
        normal = d * np.where(np.isfinite(t), t, 0)[..., None] - c
        normal /= np.linalg.norm(normal, axis=-1, keepdims=True) + 1e-9
    else:
        lo = np.array([x - r, y_floor - 2 * r * rng.uniform(0.7, 1.5), z - r])
        hi = np.array([x + r, y_floor, z + r])
        t, axis = _box_hit(d, lo, hi)
        normal = -np.eye(3)[axis] * np.sign(np.take_along_axis(d, axis[..., None], -1))
    shade = 0.35 + 0.65 * np.clip(-(normal @ light), 0, 1)
    front = t < depth
    depth = np.where(front, t, depth)
    img = np.where(front[..., None], rgb * shade[..., None], img)
    return depth, img


def _stereo_crop(rng, size):
    """A crop of the motorcycle left view with metric depth from the ground-truth disparity."""
    left, _, disp = motorcycle_stereo()
    with np.errstate(invalid='ignore', divide='ignore'):
        depth = MOTORCYCLE_F * MOTORCYCLE_BASELINE_MM / 1000 / (disp + MOTORCYCLE_DOFFS)
    depth = np.where(np.isfinite(depth), depth, 0).astype(np.float32)
    win = crop_window(rng, left.shape[:2], size)
    # nearest keeps invalid (0) pixels from being averaged into fake depths
    return apply_window(left, win, size), apply_window(depth, win, size, cv2.INTER_NEAREST)


def make_nyu(out: str, num_train: int = 24, num_val: int = 8, size='160x120', seed: int = 0,
             stereo: int = 0, progress_bar: bool = True) -> dict:
    """Write a toy NYU depth set (``num_val`` images go to the ``test`` split, as in mmseg).

    ``stereo`` extra training images are crops of the Middlebury motorcycle scene.
    """
    check_counts(num_train=num_train, num_val=num_val, stereo=stereo)
    size = parse_size(size)
    scenes = sorted(SCENES)
    summary = dict(kind='nyu', out=osp.abspath(out), depth_scale=1000,
                   max_depth_m=MAX_DEPTH_M, splits={})
    for split_idx, (split, num) in enumerate((('train', num_train), ('test', num_val))):
        extra = stereo if split == 'train' else 0
        lo, hi, invalid = np.inf, 0.0, 0
        for i in progress(range(num + extra), num + extra, f'nyu {split}', progress_bar):
            rng = image_rng(seed, split_idx, i)
            if i < num:
                scene = scenes[int(rng.integers(len(scenes)))]
                img, depth = render_room(rng, size, scene)
            else:
                scene = 'study'
                img, depth = _stereo_crop(rng, size)
            mm = np.round(depth * 1000).astype(np.uint16)
            name = f'{scene}_{i:05d}'
            save_jpg(osp.join(out, 'images', split, name + '.jpg'), img)
            save_png(osp.join(out, 'annotations', split, name + '.png'), mm)
            valid = mm > 0
            invalid += int((~valid).sum())
            if valid.any():
                lo, hi = min(lo, float(mm[valid].min())), max(hi, float(mm[valid].max()))
        summary['splits'][split] = dict(images=num + extra, depth_mm_range=[lo, hi],
                                        invalid_pixels=invalid)
    return summary
