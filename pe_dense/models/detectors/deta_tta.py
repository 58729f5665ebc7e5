"""Test-time augmentation for DETA as the official DETA_pe evaluation does it.

Each view (scale x flip) is predicted, boxes are mapped back to the original image, views
at the smaller scales keep only boxes above a minimum size (small objects are better seen
at full resolution), and all views are merged with class-aware soft-NMS. The official merge
uses a "quad" decay, ``score *= (1 - IoU) ** quad_scale`` for IoU above the threshold, which
mmcv's soft-NMS (linear / gaussian / naive) lacks, hence this module.
"""
from typing import List, Optional, Sequence, Tuple

import torch
from mmdet.models.test_time_augs import DetTTAModel
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import bbox_overlaps
from mmengine.structures import InstanceData
from torch import Tensor


def soft_nms(boxes: Tensor, scores: Tensor, labels: Tensor, iou_threshold: float = 0.7,
             method: str = 'quad', quad_scale: float = 0.5, sigma: float = 0.5,
             min_score: float = 1e-3) -> Tuple[Tensor, Tensor]:
    """Class-aware soft-NMS; returns kept indices (by decreasing rescored score) and scores.

    ``method``: 'quad' ((1-IoU)^quad_scale above the threshold), 'linear' (1-IoU above the
    threshold), 'gaussian' (exp(-IoU^2/sigma)) or 'hard' (plain NMS).
    """
    if method not in ('quad', 'linear', 'gaussian', 'hard'):
        raise ValueError(f"soft_nms method must be quad/linear/gaussian/hard, got {method!r}")
    if boxes.numel() == 0:
        return boxes.new_zeros(0, dtype=torch.long), scores.new_zeros(0)
    offset = labels.to(boxes) * (boxes.max() + 1)  # boxes of different classes never overlap
    boxes = boxes + offset[:, None]
    scores = scores.clone()
    idx = torch.arange(len(scores), device=scores.device)
    keep, kept_scores = [], []
    while scores.numel():
        top = int(torch.argmax(scores))
        keep.append(idx[top])
        kept_scores.append(scores[top])
        iou = bbox_overlaps(boxes[top:top + 1], boxes)[0]
        over = iou > iou_threshold
        if method == 'quad':
            decay = torch.where(over, (1 - iou).clamp(min=0) ** quad_scale, torch.ones_like(iou))
        elif method == 'linear':
            decay = torch.where(over, 1 - iou, torch.ones_like(iou))
        elif method == 'gaussian':
            decay = torch.exp(-iou ** 2 / sigma)
        else:
            decay = (~over).to(iou)
        scores = scores * decay
        alive = scores > min_score
        alive[top] = False
        boxes, scores, idx = boxes[alive], scores[alive], idx[alive]
    return torch.stack(keep), torch.stack(kept_scores)


@MODELS.register_module()
class DETATTAModel(DetTTAModel):
    """Merge flipped / rescaled views with the official size filter and quad soft-NMS.

    Args:
        tta_cfg: ``nms=dict(type='soft_nms', method='quad', iou_threshold=0.7,
            quad_scale=0.5, min_score=1e-3)``, ``max_per_img``.
        scale_ranges: (min, max) box side (sqrt of area, original-image pixels) kept from the
            views of each test scale, in the order of the TestTimeAug scales; views are
            assumed ordered scale-major with ``num_flips`` flips per scale (TestTimeAug's
            product order for ``[[Resize...], [RandomFlip...]]``). None keeps everything.
    """

    def __init__(self, tta_cfg=None, scale_ranges: Optional[Sequence[Sequence[float]]] = None,
                 num_flips: int = 2, **kwargs):
        super().__init__(tta_cfg=tta_cfg, **kwargs)
        self.scale_ranges = [tuple(r) for r in scale_ranges] if scale_ranges else None
        self.num_flips = num_flips

    def _view_keep(self, bboxes: Tensor, view: int) -> Tensor:
        if self.scale_ranges is None:
            return torch.ones(len(bboxes), dtype=torch.bool, device=bboxes.device)
        scale = view // self.num_flips
        if scale >= len(self.scale_ranges):
            raise ValueError(f'DETATTAModel: view {view} needs scale_ranges[{scale}], only '
                             f'{len(self.scale_ranges)} given')
        lo, hi = self.scale_ranges[scale]
        area = (bboxes[:, 2] - bboxes[:, 0]) * (bboxes[:, 3] - bboxes[:, 1])
        return (area > lo * lo) & (area < hi * hi)

    def _merge_single_sample(self, data_samples: List[DetDataSample]) -> DetDataSample:
        boxes, scores, labels = [], [], []
        for view, sample in enumerate(data_samples):
            pred = sample.pred_instances
            b = self.merge_aug_bboxes([pred.bboxes], None, [sample.metainfo])
            keep = self._view_keep(b, view)
            boxes.append(b[keep])
            scores.append(pred.scores[keep])
            labels.append(pred.labels[keep])
        boxes, scores, labels = torch.cat(boxes), torch.cat(scores), torch.cat(labels)
        nms = dict(self.tta_cfg.nms)
        nms.pop('type', None)
        keep, new_scores = soft_nms(boxes, scores, labels, **nms)
        keep, new_scores = keep[:self.tta_cfg.max_per_img], new_scores[:self.tta_cfg.max_per_img]
        result = data_samples[0]
        result.pred_instances = InstanceData(bboxes=boxes[keep], scores=new_scores,
                                             labels=labels[keep])
        return result
