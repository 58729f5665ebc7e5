"""Class-aware soft-NMS with the official DETA_pe "quad" decay, which mmcv's soft-NMS lacks.

The official rule (facebookresearch/perception_models, apps/detection/DETA_pe/models/
utils_softnms.py) keeps one box per Python iteration over all classes: ~16k iterations for the
merge of 8 TTA views. Classes never interact (their boxes are offset apart), so here every class
takes its step at once on a padded (class, box) grid: as many iterations as the largest class
keeps, with the same arithmetic per box (IoU as detectron2's ``pairwise_iou`` on the same offset
boxes, the same decay products in the same order), hence the same kept set, the same rescored
scores bit for bit and the official order (decreasing score; ties by input position, as
``argmax`` picks the first maximum).
"""
from typing import Tuple

import torch
from torch import Tensor

METHODS = ('quad', 'linear', 'gaussian', 'hard')


def _iou(top: Tensor, boxes: Tensor) -> Tensor:
    """IoU of ``top`` (C, 4) with each row of ``boxes`` (C, M, 4), as detectron2 computes it."""
    area_top = (top[:, 2] - top[:, 0]) * (top[:, 3] - top[:, 1])
    area = (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])
    wh = (torch.min(top[:, None, 2:], boxes[..., 2:])
          - torch.max(top[:, None, :2], boxes[..., :2])).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    return torch.where(inter > 0, inter / (area_top[:, None] + area - inter),
                       torch.zeros(1, dtype=inter.dtype, device=inter.device))


def _decay(iou: Tensor, method: str, iou_threshold: float, quad_scale: float,
           sigma: float) -> Tensor:
    one = torch.ones_like(iou)
    if method == 'quad':
        return torch.where(iou > iou_threshold, (1 - iou) ** quad_scale, one)
    if method == 'linear':
        return torch.where(iou > iou_threshold, 1 - iou, one)
    if method == 'gaussian':
        return torch.exp(-torch.pow(iou, 2) / sigma)
    return (iou < iou_threshold).to(iou)  # hard: the official keeps IoU strictly below


def soft_nms(boxes: Tensor, scores: Tensor, labels: Tensor, iou_threshold: float = 0.7,
             method: str = 'quad', quad_scale: float = 0.5, sigma: float = 0.5,
             min_score: float = 1e-3) -> Tuple[Tensor, Tensor]:
    """Class-aware soft-NMS; returns kept indices (by decreasing rescored score) and scores.

    ``method``: 'quad' ((1-IoU)^quad_scale above the threshold), 'linear' (1-IoU above the
    threshold), 'gaussian' (exp(-IoU^2/sigma)) or 'hard' (plain NMS). A box whose score falls
    to ``min_score`` or below is dropped. Boxes are xyxy with non-negative coordinates (the
    official class offset only separates those).
    """
    if method not in METHODS:
        raise ValueError(f"soft_nms method must be quad/linear/gaussian/hard, got {method!r}")
    n = len(scores)
    if n == 0:
        return boxes.new_zeros(0, dtype=torch.long), scores.new_zeros(0)
    device = boxes.device
    boxes = boxes + (labels.to(boxes) * (boxes.max() + 1))[:, None]  # official offset
    # The official loop prunes every box at or below min_score after its first step, except
    # the first pick (the overall best), which is kept whatever its score.
    alive_in = scores > min_score
    alive_in[torch.argmax(scores)] = True

    # (class, position-in-class) grid, boxes of a class in input order
    order = torch.argsort(labels, stable=True)
    _, counts = torch.unique_consecutive(labels[order], return_counts=True)
    num_cls, width = len(counts), int(counts.max())
    row = torch.repeat_interleave(torch.arange(num_cls, device=device), counts)
    col = torch.arange(n, device=device) - torch.repeat_interleave(counts.cumsum(0) - counts,
                                                                   counts)
    grid_boxes = boxes.new_zeros(num_cls, width, 4)
    grid_boxes[row, col] = boxes[order]
    grid_scores = scores.new_zeros(num_cls, width)
    grid_scores[row, col] = scores[order]
    grid_idx = torch.full((num_cls, width), -1, dtype=torch.long, device=device)
    grid_idx[row, col] = order
    alive = torch.zeros(num_cls, width, dtype=torch.bool, device=device)
    alive[row, col] = alive_in[order]

    rows = torch.arange(num_cls, device=device)
    neg_inf = torch.tensor(float('-inf'), dtype=scores.dtype, device=device)
    kept_idx, kept_scores, kept_valid = [], [], []
    while bool(alive.any()):
        cur = torch.where(alive, grid_scores, neg_inf)
        top = torch.argmax(cur, dim=1)  # first maximum, as the official argmax
        valid = alive[rows, top]
        kept_idx.append(grid_idx[rows, top])
        kept_scores.append(grid_scores[rows, top])
        kept_valid.append(valid)
        iou = _iou(grid_boxes[rows, top], grid_boxes)
        grid_scores = grid_scores * _decay(iou, method, iou_threshold, quad_scale, sigma)
        alive = alive & (grid_scores > min_score)
        alive[rows, top] = False
    valid = torch.stack(kept_valid).flatten()
    idx = torch.stack(kept_idx).flatten()[valid]
    new = torch.stack(kept_scores).flatten()[valid]
    # official order: decreasing score, equal scores by input position
    by_idx = torch.argsort(idx)
    idx, new = idx[by_idx], new[by_idx]
    by_score = torch.sort(new, descending=True, stable=True).indices
    return idx[by_score], new[by_score]
