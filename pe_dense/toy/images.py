"""Unlabelled pictures for self-supervised / alignment training, in two layouts:

* ``folder``: DIR/{train,val}/*.jpg plus nested sub-folders (DIR/train/group_k/*.jpg);
* ``sa1b``:  SA-1B shards, DIR/sa_000000/ (train) and DIR/sa_000001/ (val), each image
  ``sa_<id>.jpg`` next to ``sa_<id>.json`` = {'image': {image_id, width, height, file_name},
  'annotations': [{id, segmentation (COCO RLE), bbox xywh, area, point_coords [[x, y]],
  predicted_iou, stability_score, crop_box}]}.

Pictures are real-photo crops with a few drawn shapes and pasted real cut-outs. SA-1B masks are
the objects plus SLIC regions of the photo (real image structure); their predicted_iou /
stability_score are synthetic (drawn objects 1.0, regions in [0.8, 0.97]).
"""
import os.path as osp

import cv2
import numpy as np
from skimage.segmentation import slic

from .coco import mask_bbox, mask_to_rle
from .io import check_counts, dump_json, image_rng, parse_size, progress, save_jpg
from .pictures import PictureBank
from .scene import Obj, pick_color, place_shapes, render
from .shapes import SHAPES

LAYOUTS = ('folder', 'sa1b')


def toy_picture(rng, bank, size, max_objects=3):
    """(RGB, objects): a real crop with 0..max_objects shapes, some of them real cut-outs."""
    w, h = size
    n = int(rng.integers(0, max_objects + 1))
    kinds = [SHAPES[int(rng.integers(len(SHAPES)))] for _ in range(n)]
    objs = []
    for s in place_shapes(rng, (h, w), kinds, (0.1, 0.25)):
        name, rgb = pick_color(rng) if rng.random() < 0.6 else (None, None)
        objs.append(Obj(s, name, rgb))
    img = render(rng, bank.crop(rng, (w, h)), objs, bank)
    return img, [o for o in objs if o.mask.sum() >= 16]


def _point(mask):
    """The mask pixel farthest from its border (a stable 'clicked' point), as [x, y]."""
    dist = cv2.distanceTransform(np.pad(mask, 1).astype(np.uint8), cv2.DIST_L2, 3)[1:-1, 1:-1]
    y, x = np.unravel_index(int(dist.argmax()), dist.shape)
    return [float(x) + 0.5, float(y) + 0.5]


def sa1b_annotations(rng, img, objs, first_id, n_regions=8):
    """SA-1B style records for the objects and the largest SLIC regions of the background."""
    h, w = img.shape[:2]
    taken = np.zeros((h, w), bool)
    masks, scores = [], []
    for o in objs:
        masks.append(o.mask)
        scores.append((1.0, 1.0))
        taken |= o.mask
    seg = slic(img, n_segments=n_regions, compactness=10, start_label=1)
    for lab in np.unique(seg):
        m = (seg == lab) & ~taken
        if m.sum() >= 0.02 * h * w:
            masks.append(m)
            scores.append(tuple(float(v) for v in rng.uniform(0.8, 0.97, 2)))
    return [dict(id=first_id + k, segmentation=mask_to_rle(m), bbox=mask_bbox(m),
                 area=int(m.sum()), point_coords=[_point(m)], predicted_iou=s[0],
                 stability_score=s[1], crop_box=[0.0, 0.0, float(w), float(h)])
            for k, (m, s) in enumerate(zip(masks, scores))]


def make_images(out: str, num_train: int = 32, num_val: int = 8, size=128, seed: int = 0,
                layout: str = 'folder', nested_every: int = 3,
                progress_bar: bool = True) -> dict:
    """Write toy pictures in ``layout`` (see module doc)."""
    check_counts(num_train=num_train, num_val=num_val, nested_every=nested_every)
    if layout not in LAYOUTS:
        raise ValueError(f'layout {layout!r} not in {LAYOUTS}')
    size = parse_size(size)
    bank = PictureBank()
    summary = dict(kind='images', layout=layout, out=osp.abspath(out), splits={})
    image_id, ann_id = 0, 0
    for split_idx, (split, num) in enumerate((('train', num_train), ('val', num_val))):
        shard = f'sa_{split_idx:06d}'
        n_masks = 0
        for i in progress(range(num), num, f'images {split}', progress_bar):
            rng = image_rng(seed, split_idx, i)
            img, objs = toy_picture(rng, bank, size)
            image_id += 1
            if layout == 'folder':
                sub = f'group_{i % 2}' if nested_every and i % nested_every == 0 else ''
                save_jpg(osp.join(out, split, sub, f'img_{image_id:06d}.jpg'), img)
                continue
            fname = f'sa_{image_id}.jpg'
            anns = sa1b_annotations(rng, img, objs, ann_id + 1)
            ann_id += len(anns)
            n_masks += len(anns)
            save_jpg(osp.join(out, shard, fname), img)
            dump_json(osp.join(out, shard, f'sa_{image_id}.json'), dict(
                image=dict(image_id=image_id, width=size[0], height=size[1], file_name=fname),
                annotations=anns))
        summary['splits'][split] = dict(images=num, dir=osp.join(
            out, split if layout == 'folder' else shard))
        if layout == 'sa1b':
            summary['splits'][split]['masks'] = n_masks
    return summary


def make_sa1b(out: str, num_train: int = 32, num_val: int = 8, size='160x112', seed: int = 0,
              progress_bar: bool = True) -> dict:
    """The ``sa1b`` layout of ``make_images`` under its own kind, non-square by default (SA-1B
    pictures are not square); the masks feed the opt-in ``LoadSA1BMaskTargets`` teacher."""
    summary = make_images(out, num_train=num_train, num_val=num_val, size=size, seed=seed,
                          layout='sa1b', progress_bar=progress_bar)
    summary['kind'] = 'sa1b'
    summary.pop('layout')
    return summary
