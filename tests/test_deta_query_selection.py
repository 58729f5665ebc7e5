"""DETA query selection when a level cannot fill its quota (e.g. 2000 queries at 1824 px).

The oracle below restates the official rule (facebookresearch/perception_models,
apps/detection/DETA_pe/models/deformable_transformer.py, ``assign_first_stage`` branch) with
plain loops and a greedy NMS written out, so it shares no code with ``select_queries``.
"""
import torch

from pe_dense.models.detectors import select_queries
from pe_dense.models.detectors.deta import level_ids_of


def _iou(a, b):
    w = max(0., min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0., min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union


def official_rule(logits, boxes, level_ids, num_queries, pre_nms_topk, nms_iou):
    n, num_levels = len(logits), int(level_ids.max()) + 1
    prob = logits.sigmoid()
    # 1. per level: top-k over every position, other levels' probabilities set to zero
    pre = []
    for lvl in range(num_levels):
        masked = torch.tensor([float(prob[i]) if int(level_ids[i]) == lvl else 0.
                               for i in range(n)])
        pre += masked.topk(pre_nms_topk).indices.tolist()
    # 2. NMS within each position's own level, scored by the raw logit; survivors by score
    order = sorted(range(len(pre)), key=lambda j: -float(logits[pre[j]]))
    kept = []
    for j in order:
        i = pre[j]
        if all(int(level_ids[i]) != int(level_ids[pre[m]])
               or _iou(boxes[i].tolist(), boxes[pre[m]].tolist()) <= nms_iou for m in kept):
            kept.append(j)
    keep = [pre[j] for j in kept]
    # 3. too few survivors: plain top-k of the logits
    if len(keep) < num_queries:
        keep = logits.topk(num_queries).indices.tolist()
    # 4. the first num_queries // L of each level, in survivor order
    quota, taken, seen = num_queries // num_levels, [], {}
    for pos, i in enumerate(keep):
        lvl = int(level_ids[i])
        seen[lvl] = seen.get(lvl, 0) + 1
        if seen[lvl] <= quota:
            taken.append(pos)
    # 5. pad with the first survivors not taken, keeping survivor order
    for pos in range(len(keep)):
        if len(taken) >= num_queries:
            break
        if pos not in taken:
            taken.append(pos)
    return [keep[pos] for pos in sorted(taken)]


def _inputs(seed, crowded=False):
    # non-square levels; the last one (2 x 3 = 6 positions) is smaller than the pre-NMS top-k
    shapes = torch.tensor([[6, 9], [3, 5], [2, 3]])
    level_ids = level_ids_of(shapes)
    g = torch.Generator().manual_seed(seed)
    n = len(level_ids)
    logits = torch.randn(n, generator=g) * 3
    xy = torch.rand(n, 2, generator=g) * 0.6
    boxes = torch.cat([xy, xy + 0.1 + torch.rand(n, 2, generator=g) * 0.3], 1)
    # near-duplicates inside the small level and in level 0, so NMS removes some
    boxes[-2] = boxes[-1] + 0.001
    boxes[-4] = boxes[-3]
    boxes[1] = boxes[0]
    if crowded:  # level 0's 20 best positions share one box: NMS keeps one of them
        lvl0 = torch.nonzero(level_ids == 0).squeeze(1)
        top = lvl0[logits[lvl0].topk(20).indices]
        boxes[top] = boxes[top[0]].clone()
    return logits, boxes, level_ids


def test_underfilled_level_matches_the_official_rule_index_for_index():
    num_queries, pre_nms_topk = 15, 10   # quota 5 per level; the last level has 6 positions
    for seed in range(4):
        for crowded in (False, True):
            logits, boxes, level_ids = _inputs(seed, crowded)
            ours = select_queries(logits, boxes, level_ids, num_queries, pre_nms_topk, 0.9)
            ref = official_rule(logits, boxes, level_ids, num_queries, pre_nms_topk, 0.9)
            assert ours.tolist() == ref, (seed, crowded)
            # the small level cannot fill its quota after NMS: padding decides the rest
            assert int((level_ids[ours] == 2).sum()) < num_queries // 3


def test_zero_score_positions_of_other_levels_enter_the_small_levels_top_k():
    """The quirk that matters: the small level's top-k brings in positions of other levels
    (probability zeroed), which then compete in their own level's NMS. With level 0's best
    boxes collapsing under NMS, such positions -- outside level 0's own top-k -- are
    selected; a per-level-only top-k would never pick them."""
    logits, boxes, level_ids = _inputs(0, crowded=True)
    ours = select_queries(logits, boxes, level_ids, 15, 10, 0.9).tolist()
    lvl0 = torch.nonzero(level_ids == 0).squeeze(1)
    own_top = set(lvl0[logits[lvl0].topk(10).indices].tolist())
    dragged = [i for i in ours if int(level_ids[i]) == 0 and i not in own_top]
    assert dragged


def test_nms_never_compares_boxes_of_different_levels():
    """Each level's best proposal is given the same box: NMS runs per level, so both stay
    (a level-blind NMS would drop the lower-scored one)."""
    for seed in range(3):
        logits, boxes, level_ids = _inputs(seed)
        best = [int(torch.nonzero(level_ids == lvl).squeeze(1)[
            logits[level_ids == lvl].argmax()]) for lvl in range(3)]
        boxes[best[1]] = boxes[best[0]]
        boxes[best[2]] = boxes[best[0]]
        ours = select_queries(logits, boxes, level_ids, 15, 10, 0.9).tolist()
        assert set(best) <= set(ours), seed
        assert ours == official_rule(logits, boxes, level_ids, 15, 10, 0.9), seed
