"""DAVIS 2017 semi-supervised layout: JPEGImages/480p/<seq>/00000.jpg, Annotations/480p/<seq>/
00000.png (indexed PNG, DAVIS/VOC palette, 0 = background, 1..K = objects) and
ImageSets/2017/{train,val}.txt. Every frame is annotated, as in DAVIS train/val.

Objects are drawn shapes gliding over a slowly panning real picture; they may cross and occlude
each other (higher ids are drawn in front), and scale slightly over time.
"""
import os
import os.path as osp

import cv2
import numpy as np

from pe_dense.datasets.davis import davis_palette  # one palette for writer and reader

from .io import check_counts, image_rng, parse_size, progress, save_jpg, save_png
from .pictures import PictureBank
from .scene import Obj, pick_color, render
from .shapes import SHAPES, Shape

DEFAULT_SIZE = (240, 136)


def _trajectories(rng, n, w, h, frames):
    """Per object: start/end centre, start/end radius; kept inside the frame."""
    out = []
    short = min(w, h)
    for _ in range(n):
        r0 = rng.uniform(0.12, 0.22) * short
        r1 = r0 * rng.uniform(0.8, 1.25)
        rm = max(r0, r1)
        p0 = rng.uniform([rm, rm], [w - rm, h - rm])
        step = rng.uniform(0.6, 2.5) * short / 100.0  # px per frame
        ang = rng.uniform(0, 2 * np.pi)
        p1 = np.clip(p0 + step * frames * np.array([np.cos(ang), np.sin(ang)]),
                     [rm, rm], [w - rm, h - rm])
        out.append((p0, p1, r0, r1))
    return out


def _background_frames(bank, rng, size, frames):
    """A real picture panned a little each frame (camera motion)."""
    w, h = size
    big = bank.crop(rng, (int(w * 1.3), int(h * 1.3)))
    dx, dy = rng.uniform(-1, 1, 2) * np.array([0.3 * w, 0.3 * h]) / max(frames - 1, 1)
    x0, y0 = 0.15 * w, 0.15 * h
    for f in range(frames):
        m = np.float32([[1, 0, -(x0 + dx * f)], [0, 1, -(y0 + dy * f)]])
        yield cv2.warpAffine(big, m, (w, h), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_REFLECT)


def make_sequence(rng, bank, size, frames, num_objects, kinds=None, colors=None):
    """Lists of RGB frames and uint8 id maps for one video, and the trajectories
    [(start xy, end xy, start radius, end radius)] per object."""
    w, h = size
    if kinds is None:
        kinds = [SHAPES[int(rng.integers(5))] for _ in range(num_objects)]  # 5 most distinct
    if colors is None:
        colors = [pick_color(rng) for _ in range(num_objects)]
    trajs = _trajectories(rng, num_objects, w, h, frames)
    angles = rng.uniform(-0.3, 0.3, num_objects)
    spins = rng.uniform(-0.03, 0.03, num_objects)
    imgs, labels = [], []
    for f, bg in enumerate(_background_frames(bank, rng, size, frames)):
        a = f / max(frames - 1, 1)
        objs = []
        for k, (p0, p1, r0, r1) in enumerate(trajs):
            c = (1 - a) * p0 + a * p1
            s = Shape(kinds[k], float(c[0]), float(c[1]), float((1 - a) * r0 + a * r1),
                      float(angles[k] + spins[k] * f), 1.6 if kinds[k] == 'ellipse' else 1.0)
            objs.append(Obj(s, *colors[k]))
        img = render(rng, bg, objs)
        lab = np.zeros((h, w), np.uint8)
        for k, o in enumerate(objs):
            lab[o.mask] = k + 1
        imgs.append(img)
        labels.append(lab)
    return imgs, labels, trajs


def make_davis(out: str, num_train: int = 2, num_val: int = 3, size=DEFAULT_SIZE, seed: int = 0,
               frames: int = 10, max_objects: int = 3, progress_bar: bool = True) -> dict:
    """Write a toy DAVIS 2017 set of short sequences (``num_*`` = sequences per split)."""
    check_counts(num_train=num_train, num_val=num_val, frames=frames, max_objects=max_objects)
    if frames < 3:
        raise ValueError(f'frames={frames}: the DAVIS metric needs >= 3 frames per sequence')
    if not 1 <= max_objects <= 255:
        raise ValueError(f'max_objects={max_objects} must be in 1..255')
    size = parse_size(size)
    bank, palette = PictureBank(), davis_palette()
    summary = dict(kind='davis', out=osp.abspath(out), frames=frames, splits={})
    for split_idx, (split, num) in enumerate((('train', num_train), ('val', num_val))):
        names = []
        for i in progress(range(num), num, f'davis {split}', progress_bar):
            rng = image_rng(seed, split_idx, i)
            n_obj = int(rng.integers(1, max_objects + 1))
            name = f'toy-{split}-{i:02d}'
            for _ in range(50):  # every object must be visible in frame 0 (it defines K)
                imgs, labels, _ = make_sequence(rng, bank, size, frames, n_obj)
                if len(np.unique(labels[0])) == n_obj + 1:
                    break
            else:
                raise RuntimeError(f'{name}: could not place {n_obj} visible objects; '
                                   f'use a larger size than {size}')
            for f, (img, lab) in enumerate(zip(imgs, labels)):
                save_jpg(osp.join(out, 'JPEGImages', '480p', name, f'{f:05d}.jpg'), img)
                save_png(osp.join(out, 'Annotations', '480p', name, f'{f:05d}.png'), lab,
                         palette)
            names.append(name)
        os.makedirs(osp.join(out, 'ImageSets', '2017'), exist_ok=True)
        with open(osp.join(out, 'ImageSets', '2017', f'{split}.txt'), 'w') as fh:
            fh.write(''.join(n + '\n' for n in names))
        summary['splits'][split] = dict(sequences=names)
    return summary
