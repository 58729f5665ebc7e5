"""Mask teacher from stored SA-1B instance masks: an opt-in stand-in for running SAM 2.1.

SA-1B's masks are SAM's own automatic outputs, so for every point of the SAM teacher's prompt
grid the mask that contains it is what SAM would have answered to a click there. Turning those
binary masks into logits gives targets with the SAM teacher's contract -- (grid^2, gh, gw)
float32 on the student's token grid, prompts row-major (y outer, x inner) at the cell centres of
the image, logits within +-32 -- without a SAM forward pass. Not the paper's teacher
(arXiv 2504.13181, section 5 runs SAM 2.1 on a point grid); a variant.

Choices, and why:

* which mask per point: among the masks containing the point, the highest ``predicted_iou``
  (ties: the smaller mask). SAM's multimask output is ranked by the same IoU head; SA-1B keeps
  that score per mask. ``select='smallest'`` takes the most specific mask instead (SAM's
  subpart answer to an ambiguous click).
* logits: ``'margin'`` writes +c inside, -c outside. The pairwise loss compares cosines of the
  stacked maps, and resampling is linear, so c cancels: the targets carry exactly what SA-1B
  stores (binary masks), boundary cells mixing by area. ``'distance'`` gives a clamped signed
  distance (pixels * ``scale``), closer to the profile of SAM's low-resolution logits, whose
  magnitude grows away from the boundary; it invents a confidence SA-1B does not record, hence
  not the default.
* a point inside no mask gets -c everywhere (SAM's "nothing here" answer is a negative map).
"""
import os.path as osp
from typing import Optional, Sequence, Tuple

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmengine.registry import TRANSFORMS
from scipy.ndimage import distance_transform_edt

from ...datasets.sa1b import load_sa1b_json
from .sam_targets import LOGIT_CLAMP, resample_logits

SELECT = ('best_iou', 'smallest')
LOGITS = ('margin', 'distance')


def prompt_pixels(grid: int, hw: Tuple[int, int]) -> Tuple[np.ndarray, np.ndarray]:
    """Row/column index of each of the grid^2 prompts in an (h, w) mask, row-major.

    The SAM teacher puts point k at ``(k + 0.5) / grid`` of its square-resized frame, i.e. at
    that fraction of the image's width and height; this is the pixel holding that point.
    """
    h, w = hw
    frac = (np.arange(grid) + 0.5) / grid
    rows = np.minimum((frac * h).astype(int), h - 1)
    cols = np.minimum((frac * w).astype(int), w - 1)
    yy, xx = np.meshgrid(rows, cols, indexing='ij')
    return yy.reshape(-1), xx.reshape(-1)


def pick_masks(masks: Sequence[np.ndarray], predicted_iou: Sequence[float], grid: int,
               select: str = 'best_iou') -> np.ndarray:
    """(grid^2,) index of the mask each prompt picks among ``masks`` (each (h, w)); -1 = in none.

    ``masks`` may be a lazy sequence (``RLEMasks``): each is decoded once here, one at a time.
    """
    if select not in SELECT:
        raise ValueError(f'select must be one of {SELECT}, got {select!r}')
    hits, area = [], []
    for m in (masks[i] for i in range(len(masks))):
        m = np.asarray(m, bool)
        rows, cols = prompt_pixels(grid, m.shape)
        hits.append(m[rows, cols])
        area.append(float(m.sum()))
    if not hits:
        return np.full(grid * grid, -1, np.int64)
    hit, area = np.stack(hits), np.asarray(area)  # (M, K), (M,)
    iou = np.asarray(predicted_iou, float)
    # lexicographic rank: primary key first; argmax over a masked score picks one per prompt
    if select == 'best_iou':
        order = np.lexsort((area, -iou))  # highest IoU, then smallest area
    else:
        order = np.lexsort((-iou, area))  # smallest area, then highest IoU
    rank = np.empty(len(order), np.int64)
    rank[order] = np.arange(len(order))
    score = np.where(hit, -rank[:, None], np.iinfo(np.int64).min)
    return np.where(hit.any(0), score.argmax(0), -1)


def mask_to_logits(mask: np.ndarray, logit: str = 'margin', margin: float = LOGIT_CLAMP,
                   scale: float = 1.0) -> np.ndarray:
    """Binary (h, w) mask -> float32 logits: +-``margin``, or clamped signed pixel distance."""
    if logit not in LOGITS:
        raise ValueError(f'logit must be one of {LOGITS}, got {logit!r}')
    mask = np.asarray(mask, bool)
    if logit == 'margin' or not mask.any() or mask.all():
        return np.where(mask, margin, -margin).astype(np.float32)
    # distance from each pixel centre to the nearest pixel of the other side, minus half a pixel
    inside = distance_transform_edt(mask) - 0.5
    outside = distance_transform_edt(~mask) - 0.5
    sd = np.where(mask, inside, -outside) * scale
    return np.clip(sd, -margin, margin).astype(np.float32)


def sa1b_mask_logits(masks: Sequence[np.ndarray], predicted_iou: Sequence[float], grid: int,
                     grid_hw: Sequence[int], select: str = 'best_iou', logit: str = 'margin',
                     margin: float = LOGIT_CLAMP, scale: float = 1.0) -> torch.Tensor:
    """M instance masks (each (h, w)) -> (grid^2, gh, gw) float32 logit maps (see module doc).

    Masks are handled one at a time and only the picked ones are resampled, so a full-size
    SA-1B picture (~100 masks of ~1500x2250) never holds more than one full-size map.
    """
    if len(predicted_iou) != len(masks):
        raise ValueError(f'{len(masks)} masks but {len(predicted_iou)} predicted_iou')
    if not 0 < margin <= LOGIT_CLAMP:
        raise ValueError(f'margin must be in (0, {LOGIT_CLAMP}] like SAM logits, got {margin}')
    pick = pick_masks(masks, predicted_iou, grid, select)
    grid_hw = tuple(int(v) for v in grid_hw)
    maps = {-1: torch.full(grid_hw, -float(margin))}
    for i in sorted(set(int(p) for p in pick if p >= 0)):
        m = np.asarray(masks[i], bool)
        if m.ndim != 2:
            raise ValueError(f'mask {i} must be (h, w), got shape {m.shape}')
        full = torch.from_numpy(mask_to_logits(m, logit, margin, scale))
        maps[i] = resample_logits(full[None], grid_hw)[0]
    return torch.stack([maps[int(p)] for p in pick]).float().contiguous()


class RLEMasks:
    """COCO RLE masks decoded on access (a list would hold every full-size mask at once)."""

    def __init__(self, rles: Sequence[dict]):
        self.rles = list(rles)

    def __len__(self) -> int:
        return len(self.rles)

    def __getitem__(self, i: int) -> np.ndarray:
        from pycocotools import mask as mask_util
        return mask_util.decode(self.rles[i]).astype(bool)


def read_sa1b_masks(json_path: str) -> Tuple[RLEMasks, np.ndarray]:
    """Lazy masks and (M,) predicted_iou of one SA-1B json; errors name the file and field."""
    meta = load_sa1b_json(json_path)
    anns = meta.get('annotations')
    if not isinstance(anns, list):
        raise ValueError(f'SA-1B: {json_path} has no "annotations" list')
    hw = (int(meta['image']['height']), int(meta['image']['width']))
    rles, ious = [], []
    for k, a in enumerate(anns):
        for field in ('segmentation', 'predicted_iou'):
            if field not in a:
                raise ValueError(f'SA-1B: {json_path}: annotation {k} lacks "{field}"')
        seg = a['segmentation']
        if not isinstance(seg, dict) or tuple(seg.get('size', ())) != hw:
            raise ValueError(f'SA-1B: {json_path}: annotation {k} segmentation size '
                             f'{seg.get("size") if isinstance(seg, dict) else seg!r} != '
                             f'image (height, width) {list(hw)}')
        rles.append(seg)
        ious.append(float(a['predicted_iou']))
    return RLEMasks(rles), np.asarray(ious, float)


@TRANSFORMS.register_module()
class LoadSA1BMaskTargets(BaseTransform):
    """``sam_targets`` (grid^2, gh, gw) float32 from the SA-1B json of the sample.

    Drop-in for ``LoadSAMTargets`` in an alignment pipeline on ``SA1BDataset``; the aligner then
    takes the cached-target path and needs no ``sam_teacher``. The json is ``ann_path`` (set by
    ``SA1BDataset``), else the image path with ``.json``. Masks are read at the json's size, so
    the transform may come before or after ``AlignResize``; ``AlignRandomFlip`` flips the maps.
    """

    def __init__(self, grid: int = 32, grid_hw: Sequence[int] = (32, 32),
                 select: str = 'best_iou', logit: str = 'margin',
                 margin: float = LOGIT_CLAMP, scale: float = 1.0):
        if grid < 1:
            raise ValueError(f'grid must be positive, got {grid}')
        if select not in SELECT or logit not in LOGITS:
            raise ValueError(f'select must be in {SELECT} and logit in {LOGITS}, '
                             f'got {select!r}, {logit!r}')
        self.grid, self.grid_hw = grid, tuple(int(s) for s in grid_hw)
        self.select, self.logit, self.margin, self.scale = select, logit, margin, scale

    def transform(self, results: dict) -> dict:
        path: Optional[str] = results.get('ann_path')
        if path is None:
            path = osp.splitext(results['img_path'])[0] + '.json'
        masks, ious = read_sa1b_masks(path)
        results['sam_targets'] = sa1b_mask_logits(masks, ious, self.grid, self.grid_hw,
                                                  self.select, self.logit, self.margin,
                                                  self.scale)
        return results
