"""COCO loading that fails loudly on broken files and repairs what is safe to repair.

Large crawled or user-made COCO files carry boxes spilling out of the image, zero-area
boxes, NaNs, and the odd undecodable JPEG. mmdet's ``CocoDataset`` drops some of these
silently and crashes with a ``KeyError`` on others. ``CheckedCocoDataset`` validates the
file first (every error names the file, the record and the field), clips or skips bad boxes
and logs how many, and ``LoadImageOrSkip`` turns an undecodable image into a logged skip.
"""
import copy
import json
import math
from collections import Counter
from typing import List, Optional

from mmcv.transforms import LoadImageFromFile
from mmdet.datasets import CocoDataset
from mmdet.registry import DATASETS, TRANSFORMS
from mmengine import fileio
from mmengine.fileio import get_local_path
from mmengine.logging import print_log

from .robust_loading import ImageLoadError, check_record_size, read_image

REQUIRED_FIELDS = {
    'images': ('id', 'file_name', 'width', 'height'),
    'annotations': ('id', 'image_id', 'category_id', 'bbox'),
    'categories': ('id', 'name'),
}


class CocoFormatError(ValueError):
    """A COCO annotation file that cannot be used as it is."""


def _check_fields(coco: dict, ann_file: str) -> None:
    """Raise on a missing top-level section or a record missing a required field."""
    for section, fields in REQUIRED_FIELDS.items():
        if section not in coco:
            raise CocoFormatError(f"'{ann_file}': missing top-level field '{section}'")
        if not isinstance(coco[section], list):
            raise CocoFormatError(f"'{ann_file}': field '{section}' must be a list")
        for i, rec in enumerate(coco[section]):
            missing = [f for f in fields if f not in rec]
            if missing:
                rid = rec.get('id', f'#{i}')
                raise CocoFormatError(
                    f"'{ann_file}': {section}[{i}] (id {rid}) misses field "
                    f"'{missing[0]}'")


def _check_references(coco: dict, ann_file: str) -> None:
    """Raise on an annotation pointing at an unknown category or image."""
    cat_ids = {c['id'] for c in coco['categories']}
    img_ids = {im['id'] for im in coco['images']}
    for ann in coco['annotations']:
        if ann['category_id'] not in cat_ids:
            raise CocoFormatError(
                f"'{ann_file}': annotation id {ann['id']} has category_id "
                f"{ann['category_id']} which is not in 'categories' "
                f"(known ids: {sorted(cat_ids)})")
        if ann['image_id'] not in img_ids:
            raise CocoFormatError(
                f"'{ann_file}': annotation id {ann['id']} has image_id "
                f"{ann['image_id']} which is not in 'images'")
        if len(ann['bbox']) != 4:
            raise CocoFormatError(
                f"'{ann_file}': annotation id {ann['id']} field 'bbox' must have 4 "
                f"numbers (x, y, w, h), got {ann['bbox']}")


def repair_boxes(coco: dict, min_size: float = 1.0) -> Counter:
    """Clip boxes to their image, drop NaN/inf and empty ones, in place.

    Returns counts of 'clipped', 'nan' and 'empty' annotations so callers can log them.
    """
    sizes = {im['id']: (im['width'], im['height']) for im in coco['images']}
    counts: Counter = Counter()
    kept = []
    for ann in coco['annotations']:
        x, y, w, h = (float(v) for v in ann['bbox'])
        if not all(math.isfinite(v) for v in (x, y, w, h)):
            counts['nan'] += 1
            continue
        img_w, img_h = sizes[ann['image_id']]
        x1, y1 = min(max(x, 0.), img_w), min(max(y, 0.), img_h)
        x2, y2 = min(max(x + w, 0.), img_w), min(max(y + h, 0.), img_h)
        if (x1, y1, x2, y2) != (x, y, x + w, y + h):
            counts['clipped'] += 1
        if x2 - x1 < min_size or y2 - y1 < min_size:
            counts['empty'] += 1
            continue
        ann['bbox'] = [x1, y1, x2 - x1, y2 - y1]
        area = ann.get('area')
        if area is None or not math.isfinite(float(area)) or area <= 0:
            ann['area'] = (x2 - x1) * (y2 - y1)
        kept.append(ann)
    coco['annotations'] = kept
    return counts


@DATASETS.register_module()
class CheckedCocoDataset(CocoDataset):
    """``CocoDataset`` that validates and repairs the annotation file before use.

    Errors (missing fields, unknown category/image ids) raise ``CocoFormatError`` naming
    the file and record; boxes outside the image are clipped, NaN and empty boxes are
    skipped, and both counts are logged once per file.
    """

    def __init__(self, *args, min_box_size: float = 1.0, **kwargs):
        self.min_box_size = min_box_size
        self.repair_counts: Counter = Counter()
        super().__init__(*args, **kwargs)

    def load_data_list(self) -> List[dict]:
        with get_local_path(self.ann_file, backend_args=self.backend_args) as path:
            with open(path) as f:
                try:
                    coco = json.load(f)
                except json.JSONDecodeError as e:
                    raise CocoFormatError(f"'{self.ann_file}': not valid JSON ({e})")
        _check_fields(coco, self.ann_file)
        _check_references(coco, self.ann_file)
        self.repair_counts = repair_boxes(coco, self.min_box_size)
        if sum(self.repair_counts.values()):
            c = self.repair_counts
            print_log(
                f"'{self.ann_file}': clipped {c['clipped']} boxes to the image, "
                f"skipped {c['empty']} zero-area and {c['nan']} NaN/inf boxes",
                logger='current')
        self.coco = self.COCOAPI()
        self.coco.dataset = coco
        self.coco.createIndex()
        # mmdet's wrapper aliases these in __init__, before the index existed
        self.coco.img_ann_map, self.coco.cat_img_map = self.coco.imgToAnns, self.coco.catToImgs
        return self._data_list_from_api()

    def _data_list_from_api(self) -> List[dict]:
        """Same walk as mmdet's ``CocoDataset.load_data_list`` over an in-memory API."""
        self.cat_ids = self.coco.get_cat_ids(cat_names=self.metainfo['classes'])
        self.cat2label = {cat_id: i for i, cat_id in enumerate(self.cat_ids)}
        self.cat_img_map = copy.deepcopy(self.coco.cat_img_map)  # defaultdict: empty classes
        data_list = []
        for img_id in self.coco.get_img_ids():
            raw_img_info = self.coco.load_imgs([img_id])[0]
            raw_img_info['img_id'] = img_id
            ann_ids = self.coco.get_ann_ids(img_ids=[img_id])
            data_list.append(self.parse_data_info({
                'raw_ann_info': self.coco.load_anns(ann_ids),
                'raw_img_info': raw_img_info}))
        del self.coco
        return data_list


@TRANSFORMS.register_module()
class LoadImageOrSkip(LoadImageFromFile):
    """``LoadImageFromFile`` that logs and skips (returns None) an image it cannot trust.

    Colour images are decoded with :func:`read_image` (PIL: truncation is an error, where
    OpenCV returns a grey-filled picture; EXIF orientation, 16-bit and alpha are converted;
    decompression bombs refused) and checked against the record's ``height``/``width``, so
    a picture whose orientation disagrees with its boxes is skipped, not trained on.
    MMEngine's dataset then draws another sample during training; at test time it raises,
    as a test set with a broken image should not be scored silently.
    """

    skipped = 0

    def _load(self, results: dict) -> Optional[dict]:
        if self.color_type != 'color' or self.file_client_args is not None:
            return super().transform(results)
        path = results['img_path']
        try:
            data = fileio.get(path, backend_args=self.backend_args)
        except Exception as e:  # noqa: BLE001 - storage backends raise their own types
            raise ImageLoadError(f"'{path}': cannot read ({type(e).__name__}: {e})") from e
        img = read_image(path, data=data)
        check_record_size(img, results)
        img = img[..., ::-1].copy()  # BGR, as LoadImageFromFile
        if self.to_float32:
            img = img.astype('float32')
        results.update(img=img, img_shape=img.shape[:2], ori_shape=img.shape[:2])
        return results

    def transform(self, results: dict) -> Optional[dict]:
        try:
            out = self._load(results)
        except Exception as e:  # decode errors come from cv2/PIL/turbojpeg alike
            out, reason = None, f'{type(e).__name__}: {e}'
        else:
            reason = 'decoder returned nothing'
        if out is None:
            self.skipped += 1
            print_log(f"skipping image '{results.get('img_path')}' that failed to "
                      f'decode ({reason}); {self.skipped} skipped by this loader',
                      logger='current', level=30)
        return out
