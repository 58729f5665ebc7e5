"""Test-time augmentation for DETA as the official DETA_pe evaluation does it.

Each view (scale x flip) is predicted, boxes are mapped back to the original image, views
at the smaller scales keep only boxes above a minimum size (small objects are better seen
at full resolution), and all views are merged with class-aware soft-NMS. The official merge
uses a "quad" decay, ``score *= (1 - IoU) ** quad_scale`` for IoU above the threshold, which
mmcv's soft-NMS (linear / gaussian / naive) lacks (see ``task_modules/soft_nms.py``). Each
view itself is post-processed with that soft-NMS on its top 2000 scores (``view_test_cfg``).
"""
from typing import List, Optional, Sequence

import torch
from mmdet.models.test_time_augs import DetTTAModel
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData
from torch import Tensor

from ..task_modules.soft_nms import soft_nms  # noqa: F401  (re-exported)


@MODELS.register_module()
class DETATTAModel(DetTTAModel):
    """Merge flipped / rescaled views with the official size filter and quad soft-NMS.

    Args:
        tta_cfg: ``nms=dict(type='soft_nms', method='quad', iou_threshold=0.7,
            quad_scale=0.5, min_score=1e-3)``, ``max_per_img`` (None: every survivor of the
            merge, as the official ``engine_tta.py``; COCO evaluation keeps at most 100 per
            image and category).
        num_queries: queries of the wrapped two-stage detector during TTA (the official
            ``eval_tta_slurm_1824pix.sh`` runs 2000; plain testing 900). None keeps its own.
        view_test_cfg: merged into the wrapped detector's ``bbox_head.test_cfg`` for every
            view; the official TTA post-processes each view with soft-NMS on its top 2000
            scores and keeps every survivor (``pre_nms_topk=2000, soft_nms=dict(...),
            max_per_img=None``), where plain testing uses hard NMS and the first 100.
        scale_ranges: (min, max) box side (sqrt of area, original-image pixels) kept from the
            views of each test scale, in the order of the TestTimeAug scales; views are
            assumed ordered scale-major with ``num_flips`` flips per scale (TestTimeAug's
            product order for ``[[Resize...], [RandomFlip...]]``). None keeps everything.
    """

    def __init__(self, tta_cfg=None, scale_ranges: Optional[Sequence[Sequence[float]]] = None,
                 num_flips: int = 2, view_test_cfg: Optional[dict] = None,
                 num_queries: Optional[int] = None, **kwargs):
        super().__init__(tta_cfg=tta_cfg, **kwargs)
        if num_queries is not None:
            if not hasattr(self.module, 'num_queries') or not getattr(
                    self.module, 'as_two_stage', False):
                raise TypeError('DETATTAModel: num_queries needs a two-stage detector (its '
                                'queries come from proposals, not learned embeddings), got '
                                f'{type(self.module).__name__}')
            self.module.num_queries = int(num_queries)
        if view_test_cfg:
            head = getattr(self.module, 'bbox_head', None)
            if head is None or getattr(head, 'test_cfg', None) is None:
                raise TypeError('DETATTAModel: view_test_cfg needs a module with '
                                f'bbox_head.test_cfg, got {type(self.module).__name__}')
            head.test_cfg.update(view_test_cfg)
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
        cap = self.tta_cfg.get('max_per_img')
        keep, new_scores = keep[:cap], new_scores[:cap]
        result = data_samples[0]
        result.pred_instances = InstanceData(bboxes=boxes[keep], scores=new_scores,
                                             labels=labels[keep])
        return result
