"""ADEChallengeData2016 layout: images/{training,validation}/*.jpg + annotations/*.png.

Label maps use real ADE20K ids (0 = "other", ignored under ``reduce_zero_label=True``) so
mmseg's ADE20KDataset reads them unchanged; pass ``metainfo=dict(classes=ADE20K_TOY_CLASSES)``
to train a small head on just the toy classes (mmseg remaps the subset to 0..K-1).
Stuff regions are textured with fixed real pictures, so texture predicts the class.
"""
import os.path as osp
from typing import Dict, Sequence

import numpy as np

from .io import check_counts, dump_json, image_rng, parse_size, progress, save_jpg, save_png
from .pictures import PictureBank, load_pictures, random_crop
from .scene import Obj, pick_color, place_shapes, render
from .shapes import check_shapes

# stuff class (ADE id, name) -> the real picture its texture comes from; top or bottom band
STUFF = {'wall': (1, 'brick', 'top'), 'sky': (3, 'hubble_deep_field', 'top'),
         'floor': (4, 'gravel', 'bottom'), 'grass': (10, 'grass', 'bottom')}
# drawn shape -> (ADE id, name, colour)
THINGS = {'square': (42, 'box', 'green'), 'triangle': (44, 'signboard', 'blue'),
          'circle': (120, 'ball', 'red'), 'star': (150, 'flag', 'yellow')}
DEFAULT_SHAPES = ('circle', 'square', 'triangle', 'star')
ADE20K_TOY_IDS: Dict[str, int] = {n: v[0] for n, v in STUFF.items()}
ADE20K_TOY_IDS.update({v[1]: v[0] for v in THINGS.values()})
ADE20K_TOY_CLASSES = tuple(sorted(ADE20K_TOY_IDS, key=ADE20K_TOY_IDS.get))


def _band_boundary(rng, w, h):
    """Row of the top/bottom boundary per column: a gentle wave around a random height."""
    xs = np.arange(w)
    base = rng.uniform(0.3, 0.6) * h
    amp = rng.uniform(0.02, 0.08) * h
    return base + amp * np.sin(2 * np.pi * (xs / w * rng.uniform(0.5, 2.0)) + rng.uniform(0, 6))


def _stuff_layer(rng, size, textures):
    """(image, label) of two stuff bands, optionally with an unlabelled (0) clutter patch."""
    w, h = size
    top = [k for k, v in STUFF.items() if v[2] == 'top']
    bottom = [k for k, v in STUFF.items() if v[2] == 'bottom']
    t, b = top[int(rng.integers(len(top)))], bottom[int(rng.integers(len(bottom)))]
    rows = np.arange(h)[:, None]
    is_top = rows < _band_boundary(rng, w, h)[None]
    img = np.where(is_top[..., None], random_crop(textures[t], rng, size),
                   random_crop(textures[b], rng, size))
    label = np.where(is_top, STUFF[t][0], STUFF[b][0]).astype(np.uint8)
    if rng.random() < 0.5:  # unlabelled clutter, as in real ADE20K annotations
        pw, ph = (int(rng.uniform(0.1, 0.25) * s) for s in size)
        x0, y0 = int(rng.integers(0, w - pw)), int(rng.integers(0, h - ph))
        img[y0:y0 + ph, x0:x0 + pw] = random_crop(textures['other'], rng, (pw, ph))
        label[y0:y0 + ph, x0:x0 + pw] = 0
    return np.ascontiguousarray(img), label


def _textures():
    tex = {k: load_pictures((v[1],))[0] for k, v in STUFF.items()}
    # the grass sample is grey; tint it green so it looks like grass, not like the gravel floor
    tex['grass'] = (tex['grass'] * np.array([0.55, 0.95, 0.4])).astype(np.uint8)
    tex['other'] = load_pictures(('coffee',))[0]
    return tex


def make_ade20k(out: str, num_train: int = 32, num_val: int = 8, size=128, seed: int = 0,
                classes: Sequence[str] = DEFAULT_SHAPES, objects=(1, 3),
                radius=(0.1, 0.22), progress_bar: bool = True) -> dict:
    """Write a toy ADE20K set; ``classes`` picks which drawn shapes (thing classes) appear."""
    check_counts(num_train=num_train, num_val=num_val)
    shapes = check_shapes(classes)
    bad = [s for s in shapes if s not in THINGS]
    if bad:
        raise ValueError(f'ade20k classes {bad} have no ADE20K id; choose from {sorted(THINGS)}')
    size = parse_size(size)
    textures, bank = _textures(), PictureBank()
    summary = dict(kind='ade20k', out=osp.abspath(out), classes=list(ADE20K_TOY_CLASSES),
                   splits={})
    for split_idx, (split, tag, num) in enumerate(
            (('training', 'train', num_train), ('validation', 'val', num_val))):
        hist = np.zeros(256, np.int64)
        for i in progress(range(num), num, f'ade20k {split}', progress_bar):
            rng = image_rng(seed, split_idx, i)
            bg, label = _stuff_layer(rng, size, textures)
            n = int(rng.integers(objects[0], objects[1] + 1))
            kinds = [shapes[int(rng.integers(len(shapes)))] for _ in range(n)]
            objs = [Obj(s, *pick_color(rng, THINGS[s.kind][2]))
                    for s in place_shapes(rng, bg.shape[:2], kinds, radius)]
            img = render(rng, bg, objs, bank, texture_prob=0.25)
            for o in objs:
                label[o.mask] = THINGS[o.shape.kind][0]
            name = f'ADE_{tag}_{i + 1:08d}'
            save_jpg(osp.join(out, 'images', split, name + '.jpg'), img)
            save_png(osp.join(out, 'annotations', split, name + '.png'), label)
            hist += np.bincount(label.ravel(), minlength=256)
        summary['splits'][split] = dict(
            images=num, pixels_per_id={int(k): int(hist[k]) for k in np.nonzero(hist)[0]})
    dump_json(osp.join(out, 'toy_classes.json'),
              dict(classes=list(ADE20K_TOY_CLASSES), ade_ids=ADE20K_TOY_IDS))
    return summary
