"""Class-aware soft-NMS with the official DETA_pe "quad" decay, which mmcv's soft-NMS lacks."""
from typing import Tuple

import torch
from mmdet.structures.bbox import bbox_overlaps
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
