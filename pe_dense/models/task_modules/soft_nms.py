"""Class-aware soft-NMS with the official DETA_pe "quad" decay, which mmcv's soft-NMS lacks.

The official rule (facebookresearch/perception_models, apps/detection/DETA_pe/models/
utils_softnms.py) keeps one box per Python iteration over all classes: ~16k iterations for the
merge of 8 TTA views. Classes never interact (their boxes are offset apart), so here every class
takes its step at once on a padded (group, box) grid. Inside a class, boxes that can never decay
each other (connected components of IoU above the threshold) are independent groups too. The
loop runs as many iterations as the largest group keeps (finished groups and dead boxes are
dropped from the grid as it goes), with the same
arithmetic per box (IoU as detectron2's ``pairwise_iou`` on the same offset
boxes, the same decay products in the same order), hence the same kept set, the same rescored
scores bit for bit and the official order (decreasing score; ties by input position, as
``argmax`` picks the first maximum).
"""
from typing import Tuple

import torch
from torch import Tensor

METHODS = ('quad', 'linear', 'gaussian', 'hard')
GROUP_MAX_SIZE = 4096  # larger classes are not split (the pairwise pass is quadratic)


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


def _groups(boxes: Tensor, labels: Tensor, method: str, iou_threshold: float,
            chunk: int = 512) -> Tensor:
    """Connected components of "a pick of one decays the other" (same class, IoU above the
    threshold; any overlap for gaussian): components never interact, exactly as classes.
    A class of more than ``GROUP_MAX_SIZE`` boxes stays one group."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    out = torch.empty_like(labels)
    base = 0
    for c in torch.unique(labels).tolist():
        members = torch.nonzero(labels == c).flatten()
        b, m, edges = boxes[members], len(members), []
        for s in range(0, m if 1 < m <= GROUP_MAX_SIZE else 0, chunk):
            iou = _iou(b[s:s + chunk], b[None].expand(min(chunk, m - s), -1, -1))
            adj = (iou > 0 if method == 'gaussian' else
                   iou >= iou_threshold if method == 'hard' else iou > iou_threshold)
            e = torch.nonzero(adj).to(torch.int32).cpu()
            e[:, 0] += s
            edges.append(e)
        if not edges:
            comp = torch.zeros(m, dtype=torch.long)
        else:
            e = torch.cat(edges).numpy()
            graph = coo_matrix((e[:, 0] * 0 + 1, (e[:, 0], e[:, 1])), shape=(m, m))
            comp = torch.from_numpy(connected_components(graph, directed=False)[1]).long()
        out[members] = comp.to(out.device) + base
        base += int(comp.max()) + 1
    return out


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

    # (group, position-in-group) grid, boxes of a group in input order; boxes dead from the
    # start are never picked nor decay anything: they are left out
    live = torch.nonzero(alive_in).flatten()
    group = torch.empty_like(labels)
    group[live] = _groups(boxes[live], labels[live], method, iou_threshold)
    order = live[torch.argsort(group[live], stable=True)]
    n = len(order)
    _, counts = torch.unique_consecutive(group[order], return_counts=True)
    num_groups, width = len(counts), int(counts.max())
    row = torch.repeat_interleave(torch.arange(num_groups, device=device), counts)
    col = torch.arange(n, device=device) - torch.repeat_interleave(counts.cumsum(0) - counts,
                                                                   counts)
    grid_boxes = boxes.new_zeros(num_groups, width, 4)
    grid_boxes[row, col] = boxes[order]
    grid_scores = scores.new_zeros(num_groups, width)
    grid_scores[row, col] = scores[order]
    grid_idx = torch.full((num_groups, width), -1, dtype=torch.long, device=device)
    grid_idx[row, col] = order
    alive = torch.zeros(num_groups, width, dtype=torch.bool, device=device)
    alive[row, col] = True

    neg_inf = torch.tensor(float('-inf'), dtype=scores.dtype, device=device)
    kept_idx, kept_scores, kept_valid = [], [], []
    step = 0
    while True:
        if step % 8 == 0:  # drop finished groups and dead boxes, keeping the input order
            count = alive.sum(1)
            live = count > 0
            if not bool(live.any()):
                break
            width = int(count.max())
            perm = torch.argsort((~alive[live]).to(torch.int8), dim=1, stable=True)[:, :width]
            grid_boxes = torch.gather(grid_boxes[live], 1, perm[..., None].expand(-1, -1, 4))
            grid_scores = torch.gather(grid_scores[live], 1, perm)
            grid_idx = torch.gather(grid_idx[live], 1, perm)
            alive = torch.gather(alive[live], 1, perm)
            rows = torch.arange(len(alive), device=device)
        step += 1
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
    valid = torch.cat(kept_valid)
    idx = torch.cat(kept_idx)[valid]
    new = torch.cat(kept_scores)[valid]
    # official order: decreasing score, equal scores by input position
    by_idx = torch.argsort(idx)
    idx, new = idx[by_idx], new[by_idx]
    by_score = torch.sort(new, descending=True, stable=True).indices
    return idx[by_score], new[by_score]
