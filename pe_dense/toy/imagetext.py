"""Captioned pictures and videos for CLIP-style training and zero-shot evaluation.

DIR/images/*.jpg with DIR/{train,val}.jsonl lines {"image", "caption", "label"} and the same
pairs as open_clip CSVs (DIR/{train,val}.csv, tab-separated, columns filepath/title);
DIR/classnames.json lists the "<colour> <shape>" classes (``label`` indexes it: the first group
named in the caption; val pictures hold a single group so their label is unambiguous);
DIR/videos/*.mp4 (OpenCV mp4v) with DIR/videos.jsonl lines {"video", "caption", "label"}.
Captions count and colour the shapes ("two red circles and a blue star").

How hard the pictures are is set by ``radius`` (object size), ``background`` (the real photo, a
blurred one or its flat mean colour), ``max_groups`` and ``max_count``: a from-scratch toy CLIP
learns shape within CPU minutes only when one big shape of nearly one size sits on a background
without shape-like edges (docs/core.md, "Toy convergence").
"""
import csv
import os
import os.path as osp
from itertools import product
from typing import Sequence

import cv2
import numpy as np

from .davis import make_sequence
from .io import (check_counts, dump_json, dump_jsonl, image_rng, parse_size, progress,
                 save_jpg)
from .pictures import PictureBank
from .scene import Obj, pick_color, place_shapes, render
from .shapes import COLORS, check_shapes

DEFAULT_COLORS = ('red', 'green', 'blue', 'yellow')
DEFAULT_SHAPES = ('circle', 'square', 'triangle', 'star')
NUMBER_WORDS = ('zero', 'one', 'two', 'three', 'four')
BACKGROUNDS = ('picture', 'blurred', 'flat')


def plural(shape: str, n: int) -> str:
    return shape if n == 1 else shape + 's'


def caption_for(groups) -> str:
    """[(count, colour, shape), ...] -> 'two red circles and a blue star'."""
    parts = [f"{'a' if n == 1 else NUMBER_WORDS[n]} {c} {plural(s, n)}" for n, c, s in groups]
    return ' and '.join(parts)


def _background(rng, bank, size, background):
    """A (h, w, 3) crop of a real picture, Gaussian-blurred (sigma 1/8 of the short side, so
    only colour and light gradients remain) or replaced by its mean colour."""
    img = bank.crop(rng, size)
    if background == 'blurred':
        return cv2.GaussianBlur(img, (0, 0), sigmaX=min(size) / 8)
    if background == 'flat':
        return np.broadcast_to(img.reshape(-1, 3).mean(0).astype(np.uint8), img.shape).copy()
    return img


def _picture(rng, bank, size, classes, max_groups, max_count, radius=(0.09, 0.16),
             background='picture'):
    w, h = size
    n_groups = int(rng.integers(1, max_groups + 1))
    picks = rng.choice(len(classes), size=n_groups, replace=False)
    groups = [(int(rng.integers(1, max_count + 1)), *classes[k].split(' ')) for k in picks]
    for _ in range(20):  # re-draw until every shape fits, so the caption's counts are true
        kinds = [s for n, _, s in groups for _ in range(n)]
        shapes = place_shapes(rng, (h, w), kinds, tuple(radius))
        if len(shapes) == len(kinds):
            break
        groups = [(max(1, n - 1), c, s) for n, c, s in groups]
    else:
        raise RuntimeError(f'cannot fit {groups} into a {size} picture')
    colors = [c for n, c, _ in groups for _ in range(n)]
    objs = [Obj(s, *pick_color(rng, c)) for s, c in zip(shapes, colors)]
    img = render(rng, _background(rng, bank, (w, h), background), objs, bank, texture_prob=0.0)
    return img, groups, int(picks[0])


def _direction(traj) -> str:
    (x0, y0), (x1, y1) = traj[0], traj[1]
    dx, dy = x1 - x0, y1 - y0
    if max(abs(dx), abs(dy)) < 3:
        return 'staying still'
    if abs(dx) >= abs(dy):
        return 'moving right' if dx > 0 else 'moving left'
    return 'moving down' if dy > 0 else 'moving up'


def _write_video(path, frames, fps=8):
    os.makedirs(osp.dirname(path), exist_ok=True)
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'mp4v'), fps, (w, h))
    if not writer.isOpened():
        raise RuntimeError(f'OpenCV cannot write mp4v video {path}')
    for f in frames:
        writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    writer.release()


def make_imagetext(out: str, num_train: int = 48, num_val: int = 16, size=96, seed: int = 0,
                   colors: Sequence[str] = DEFAULT_COLORS,
                   classes: Sequence[str] = DEFAULT_SHAPES, num_videos: int = 3,
                   frames: int = 8, max_count: int = 3, max_groups: int = 2,
                   radius: Sequence[float] = (0.09, 0.16), background: str = 'picture',
                   progress_bar: bool = True) -> dict:
    """Write the captioned toy set; classes are every ``colors`` x ``classes`` (shapes) pair.

    ``max_groups`` (colour-shape groups per train picture; val pictures hold one),
    ``max_count`` (shapes per group), ``radius`` ((min, max) object radius as a fraction of
    the short side) and ``background`` (``'picture'``, ``'blurred'`` or ``'flat'``) set how
    hard the pictures are; videos keep the default look.
    """
    check_counts(num_train=num_train, num_val=num_val, num_videos=num_videos, frames=frames)
    shapes = check_shapes(classes)
    bad = [c for c in colors if c not in COLORS]
    if bad:
        raise ValueError(f'colors {bad} unknown; choose from {sorted(COLORS)}')
    if not 1 <= max_count < len(NUMBER_WORDS):
        raise ValueError(f'max_count={max_count} must be in 1..{len(NUMBER_WORDS) - 1}')
    if not 1 <= max_groups <= len(colors) * len(shapes):
        raise ValueError(f'max_groups={max_groups} must be in 1..{len(colors) * len(shapes)} '
                         '(the number of classes)')
    radius = tuple(float(r) for r in radius)
    if len(radius) != 2 or not 0 < radius[0] <= radius[1] < 0.5:
        raise ValueError(f'radius={radius} must be (min, max) with 0 < min <= max < 0.5')
    if background not in BACKGROUNDS:
        raise ValueError(f'background={background!r}; choose from {BACKGROUNDS}')
    size = parse_size(size)
    classnames = [f'{c} {s}' for c, s in product(colors, shapes)]
    bank = PictureBank()
    dump_json(osp.join(out, 'classnames.json'), classnames)
    summary = dict(kind='imagetext', out=osp.abspath(out), classes=len(classnames), splits={})
    for split_idx, (split, num) in enumerate((('train', num_train), ('val', num_val))):
        rows = []
        for i in progress(range(num), num, f'imagetext {split}', progress_bar):
            rng = image_rng(seed, split_idx, i)
            img, groups, label = _picture(rng, bank, size, classnames,
                                          max_groups if split == 'train' else 1, max_count,
                                          radius, background)
            rel = f'images/{split}_{i:06d}.jpg'
            save_jpg(osp.join(out, rel), img)
            rows.append(dict(image=rel, caption=caption_for(groups), label=label))
        dump_jsonl(osp.join(out, f'{split}.jsonl'), rows)
        with open(osp.join(out, f'{split}.csv'), 'w', newline='') as f:
            wr = csv.writer(f, delimiter='\t')
            wr.writerow(['filepath', 'title'])
            wr.writerows([r['image'], r['caption']] for r in rows)
        summary['splits'][split] = dict(images=num, example=rows[0]['caption'] if rows else None)
    summary['videos'] = _videos(out, seed, bank, size, classnames, num_videos, frames)
    return summary


def _videos(out, seed, bank, size, classnames, num, frames):
    rows = []
    for i in range(num):
        rng = image_rng(seed, 2, i)
        label = int(rng.integers(len(classnames)))
        color, shape = classnames[label].split(' ')
        imgs, _, trajs = make_sequence(rng, bank, size, frames, 1, kinds=[shape],
                                       colors=[pick_color(rng, color)])
        rel = f'videos/video_{i:04d}.mp4'
        _write_video(osp.join(out, rel), imgs)
        rows.append(dict(video=rel, caption=f'a {color} {shape} {_direction(trajs[0])}',
                         label=label, frames=frames))
    dump_jsonl(osp.join(out, 'videos.jsonl'), rows)
    return len(rows)
