"""COCO 2017 instance layout (train2017/, val2017/, annotations/instances_*2017.json)."""
import os.path as osp
from typing import List, Sequence, Tuple

import cv2
import numpy as np
from pycocotools import mask as mask_util

from .io import check_counts, dump_json, image_rng, parse_size, progress, save_jpg
from .pictures import PictureBank
from .scene import Obj, pick_color, place_shapes, render
from .shapes import COLORS, check_shapes

DEFAULT_CLASSES = ('circle', 'square', 'triangle')
MASK_FORMATS = ('polygon', 'rle')


def mask_to_polygons(mask: np.ndarray) -> List[List[float]]:
    """Outer contours as COCO polygons [x1, y1, x2, y2, ...] (>= 3 points each)."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_SIMPLE)
    polys = []
    for c in contours:
        c = c.reshape(-1, 2).astype(float) + 0.5  # pixel centres in COCO's continuous coords
        if len(c) >= 3:
            polys.append([round(float(v), 2) for v in c.reshape(-1)])
    return polys


def mask_to_rle(mask: np.ndarray) -> dict:
    rle = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {'size': [int(v) for v in rle['size']], 'counts': rle['counts'].decode('ascii')}


def mask_bbox(mask: np.ndarray) -> List[float]:
    """Tight xywh box of a mask, in COCO pixel-edge convention."""
    ys, xs = np.nonzero(mask)
    x0, y0 = int(xs.min()), int(ys.min())
    return [float(x0), float(y0), float(xs.max() + 1 - x0), float(ys.max() + 1 - y0)]


def _annotation(obj: Obj, ann_id: int, image_id: int, cat_id: int, mask_format: str):
    seg = mask_to_polygons(obj.mask) if mask_format == 'polygon' else mask_to_rle(obj.mask)
    if mask_format == 'polygon' and not seg:
        return None
    return dict(id=ann_id, image_id=image_id, category_id=cat_id, segmentation=seg,
                area=float(obj.mask.sum()), bbox=mask_bbox(obj.mask), iscrowd=0)


def _scene(rng, bank, size, classes, objects, radius, color_by_class):
    w, h = size
    n = int(rng.integers(objects[0], objects[1] + 1))
    kinds = [classes[int(rng.integers(len(classes)))] for _ in range(n)]
    shapes = place_shapes(rng, (h, w), kinds, radius)
    colors = list(COLORS)
    objs = []
    for s in shapes:
        cname = colors[classes.index(s.kind) % len(colors)] if color_by_class else None
        name, rgb = pick_color(rng, cname)
        objs.append(Obj(s, name, rgb))
    img = render(rng, bank.crop(rng, (w, h)), objs, bank, texture_prob=0.25)
    return img, [o for o in objs if o.mask.sum() >= 16]


def make_coco(out: str, num_train: int = 64, num_val: int = 16,
              size=(144, 96), seed: int = 0, classes: Sequence[str] = DEFAULT_CLASSES,
              objects: Tuple[int, int] = (1, 4), radius: Tuple[float, float] = (0.12, 0.24),
              mask_format: str = 'polygon', color_by_class: bool = True,
              progress_bar: bool = True) -> dict:
    """Write a COCO-format toy detection / instance-segmentation set under ``out``.

    Images are ``size`` = (w, h), landscape 3:2 by default (COCO's typical 640 x 427), so a
    swapped width and height anywhere downstream moves boxes instead of going unnoticed.
    Category ids are 1..K in ``classes`` order (like COCO, never 0). With ``color_by_class``
    each class has its own (jittered) colour, which makes the set learnable in minutes.
    """
    check_counts(num_train=num_train, num_val=num_val)
    classes = check_shapes(classes)
    if mask_format not in MASK_FORMATS:
        raise ValueError(f'mask_format {mask_format!r} not in {MASK_FORMATS}')
    if not (1 <= objects[0] <= objects[1]):
        raise ValueError(f'objects range {objects} must satisfy 1 <= min <= max')
    size = parse_size(size)
    bank = PictureBank()
    categories = [dict(id=i + 1, name=c, supercategory='shape') for i, c in enumerate(classes)]
    summary = dict(kind='coco', out=osp.abspath(out), classes=list(classes), splits={})
    image_id, ann_id = 0, 0
    for split_idx, (split, num) in enumerate((('train2017', num_train), ('val2017', num_val))):
        images, anns = [], []
        for i in progress(range(num), num, f'coco {split}', progress_bar):
            rng = image_rng(seed, split_idx, i)
            img, objs = _scene(rng, bank, size, classes, objects, radius, color_by_class)
            image_id += 1
            fname = f'{image_id:012d}.jpg'
            save_jpg(osp.join(out, split, fname), img)
            images.append(dict(id=image_id, file_name=fname, width=size[0], height=size[1]))
            for o in objs:
                a = _annotation(o, ann_id + 1, image_id, classes.index(o.shape.kind) + 1,
                                mask_format)
                if a is not None:
                    ann_id += 1
                    anns.append(a)
        ann_file = osp.join(out, 'annotations', f'instances_{split}.json')
        dump_json(ann_file, dict(
            info=dict(description='pe_dense toy COCO', version='1.0', year=2017),
            licenses=[], images=images, annotations=anns, categories=categories))
        summary['splits'][split] = dict(images=len(images), annotations=len(anns),
                                        ann_file=ann_file)
    return summary
