"""DETA's IoU-based one-to-many assignment (stage 1: encoder proposals, stage 2: decoder queries).

DETA replaces DETR's Hungarian matching by the Faster R-CNN recipe: label every candidate box
by its best IoU with a ground truth (thresholds + low-quality matches), randomly subsample
positives/negatives, then let each ground truth keep at most ``max_k`` positives -- its
``max_k`` highest-IoU candidates among all, capped by how many positives it got sampled. The
losses then treat every non-positive as background, so only the positives matter downstream.

Candidates are ``pred_instances.priors`` (xyxy): the fixed encoder anchors in stage 1, the
proposals fed to the decoder (its initial references) in stage 2. Any consistent coordinate
frame works (IoU is invariant to axis-wise scaling), e.g. normalised [0, 1] boxes.

Labelling follows detectron2's ``Matcher`` as the official code uses it
(``apps/detection/DETA_pe/models/assigner.py``): every candidate keeps its highest-IoU ground
truth, and a candidate made positive by a low-quality match (it is some ground truth's best
candidate) stays with that highest-IoU ground truth. MMDetection's ``MaxIoUAssigner`` would
hand it to the low-quality ground truth instead -- with nested boxes, to whichever is listed
last -- so targets would depend on annotation order. ``RandomSampler`` does the subsampling.
"""
from typing import Optional, Tuple

import torch
from mmdet.models.task_modules.assigners import AssignResult, BaseAssigner
from mmdet.models.task_modules.samplers import RandomSampler
from mmdet.registry import TASK_UTILS
from mmengine.structures import InstanceData
from torch import Tensor


def match_candidates(ious: Tensor, pos_iou_thr: float, neg_iou_thr: float,
                     low_quality: bool = True) -> Tensor:
    """detectron2 ``Matcher`` labels of (num_gts, num_candidates) IoUs as ``gt_inds``.

    Returns, per candidate, its highest-IoU GT index + 1 if positive (IoU >= ``pos_iou_thr``,
    or among some GT's best candidates, ties included, when ``low_quality``), 0 if negative
    (IoU < ``neg_iou_thr``), -1 if ignored.
    """
    best, best_gt = ious.max(dim=0)
    gt_inds = torch.full_like(best_gt, -1)
    gt_inds[best < neg_iou_thr] = 0
    positive = best >= pos_iou_thr
    if low_quality:
        positive |= (ious == ious.max(dim=1, keepdim=True).values).any(0)
    gt_inds[positive] = best_gt[positive] + 1
    return gt_inds


def topk_per_gt(pos_inds: Tensor, pos_gt: Tensor, ious: Tensor, k: int) -> Tuple[Tensor, Tensor]:
    """Replace each GT's sampled positives by its ``min(count, k)`` highest-IoU candidates.

    ``ious`` is (num_gts, num_candidates); returns (candidate indices, GT indices).
    """
    if pos_gt.numel() == 0:
        return pos_inds, pos_gt
    gts, counts = pos_gt.unique(return_counts=True)
    k = min(k, ious.shape[1])
    best = ious[gts].topk(k, dim=1).indices  # (G, k), sorted by decreasing IoU
    take = torch.arange(k, device=best.device)[None] < counts[:, None]
    return best[take], gts[:, None].expand(-1, k)[take]


class DETAAssigner(BaseAssigner):
    """IoU labelling, random subsampling and a per-GT top-k cap (see the module docstring).

    Args:
        pos_iou_thr / neg_iou_thr: IoU >= pos is positive, < neg negative, between ignored.
        num: samples per image; ``pos_fraction`` of them at most are positives.
        max_k: positives kept per ground truth.
        match_low_quality: each GT also claims its best candidates (ties included).
    """

    def __init__(self, pos_iou_thr: float, neg_iou_thr: float, num: int,
                 pos_fraction: float, max_k: int = 4, match_low_quality: bool = True,
                 iou_calculator: dict = dict(type='BboxOverlaps2D')):
        if not 0 < neg_iou_thr <= pos_iou_thr <= 1:
            raise ValueError(f'{type(self).__name__}: need 0 < neg_iou_thr ({neg_iou_thr}) <= '
                             f'pos_iou_thr ({pos_iou_thr}) <= 1')
        if num < 1 or not 0 < pos_fraction <= 1 or max_k < 1:
            raise ValueError(f'{type(self).__name__}: need num >= 1, 0 < pos_fraction <= 1 and '
                             f'max_k >= 1, got num={num}, pos_fraction={pos_fraction}, '
                             f'max_k={max_k}')
        self.max_k = max_k
        self.pos_iou_thr, self.neg_iou_thr = float(pos_iou_thr), float(neg_iou_thr)
        self.match_low_quality = match_low_quality
        self.iou_calculator = TASK_UTILS.build(iou_calculator)
        self.sampler = RandomSampler(num=num, pos_fraction=pos_fraction, neg_pos_ub=-1,
                                     add_gt_as_proposals=False)

    def sample(self, priors: Tensor, gt_bboxes: Tensor,
               gt_labels: Optional[Tensor] = None) -> Tuple[Tensor, Tensor, Tensor]:
        """Returns (positive candidate indices, their GT indices, sampled negative indices)."""
        n = priors.shape[0]
        empty = priors.new_zeros(0, dtype=torch.long)
        if gt_bboxes.shape[0] == 0:
            neg = torch.randperm(n, device=priors.device)[:self.sampler.num]
            return empty, empty, neg
        if gt_labels is None:
            gt_labels = gt_bboxes.new_zeros(gt_bboxes.shape[0], dtype=torch.long)
        ious = self.iou_calculator(gt_bboxes, priors)
        gt_inds = match_candidates(ious, self.pos_iou_thr, self.neg_iou_thr,
                                   self.match_low_quality)
        labels = torch.where(gt_inds > 0, gt_labels[(gt_inds - 1).clamp(min=0)], -1)
        labelled = AssignResult(len(gt_bboxes), gt_inds, ious.max(0).values, labels=labels)
        sampled = self.sampler.sample(labelled, InstanceData(priors=priors),
                                      InstanceData(bboxes=gt_bboxes, labels=gt_labels))
        pos_inds, pos_gt = topk_per_gt(sampled.pos_inds, sampled.pos_assigned_gt_inds, ious,
                                       self.max_k)
        return pos_inds, pos_gt, sampled.neg_inds

    def assign(self, pred_instances: InstanceData, gt_instances: InstanceData,
               gt_instances_ignore: Optional[InstanceData] = None, **kwargs) -> AssignResult:
        """``gt_inds``: GT index + 1 for positives, 0 for all others (background)."""
        priors, gt_bboxes = pred_instances.priors, gt_instances.bboxes
        gt_labels = gt_instances.get('labels', None)
        pos_inds, pos_gt, _ = self.sample(priors, gt_bboxes, gt_labels)
        gt_inds = priors.new_zeros(priors.shape[0], dtype=torch.long)
        gt_inds[pos_inds] = pos_gt + 1
        labels = gt_inds.new_full(gt_inds.shape, -1)
        if gt_labels is not None and pos_inds.numel():
            labels[pos_inds] = gt_labels[pos_gt]
        max_overlaps = priors.new_zeros(priors.shape[0])
        if gt_bboxes.shape[0]:
            max_overlaps = self.iou_calculator(gt_bboxes, priors).max(0).values
        return AssignResult(gt_bboxes.shape[0], gt_inds, max_overlaps, labels=labels)


@TASK_UTILS.register_module()
class DETAStage1Assigner(DETAAssigner):
    """Encoder proposals (anchors) vs GT: 0.3 / 0.7 IoU, 256 samples at 50%, 4 per GT."""

    def __init__(self, pos_iou_thr: float = 0.7, neg_iou_thr: float = 0.3, num: int = 256,
                 pos_fraction: float = 0.5, max_k: int = 4, **kwargs):
        super().__init__(pos_iou_thr, neg_iou_thr, num, pos_fraction, max_k, **kwargs)


@TASK_UTILS.register_module()
class DETAStage2Assigner(DETAAssigner):
    """Decoder queries (their input proposals) vs GT: IoU >= 0.6, num_queries samples at
    25% positives, 4 per GT."""

    def __init__(self, num: int = 900, pos_iou_thr: float = 0.6, neg_iou_thr: float = 0.6,
                 pos_fraction: float = 0.25, max_k: int = 4, **kwargs):
        super().__init__(pos_iou_thr, neg_iou_thr, num, pos_fraction, max_k, **kwargs)
