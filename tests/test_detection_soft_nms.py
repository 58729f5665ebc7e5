"""Batched soft-NMS equals the official sequential loop: kept set, rescored scores, order."""
import pytest
import torch

from pe_dense.models.task_modules.soft_nms import soft_nms
from tests.fixtures.official_soft_nms import clustered_boxes, official_soft_nms


def _assert_same(args, **kw):
    keep, new = soft_nms(*args, **kw)
    ref_keep, ref_new = official_soft_nms(*args, **kw)
    assert keep.tolist() == ref_keep.tolist()
    assert torch.equal(new, ref_new)  # bit for bit
    return keep, new


@pytest.mark.parametrize('method', ['quad', 'linear', 'gaussian', 'hard'])
def test_clustered_boxes_equal_the_official_loop(method):
    boxes, scores, labels = clustered_boxes(800, num_classes=7, seed=1)
    keep, new = _assert_same((boxes, scores, labels), method=method)
    assert 30 < len(keep) < 800  # some boxes pruned, many kept
    assert (new[:-1] >= new[1:]).all()


def test_ties_break_by_input_position_across_and_within_classes():
    # equal scores everywhere: the official argmax takes the first; duplicates of one box
    boxes = torch.tensor([[0., 0., 10., 20.], [30., 30., 40., 41.], [0., 0., 10., 20.],
                          [30., 30., 40., 41.], [1., 0., 10., 20.], [100., 5., 120., 9.]])
    scores = torch.tensor([0.5, 0.5, 0.5, 0.5, 0.5, 0.25])
    labels = torch.tensor([2, 0, 2, 0, 2, 1])
    keep, new = _assert_same((boxes, scores, labels), iou_threshold=0.7)
    assert keep[:2].tolist() == [0, 1]  # first of each class, by position
    # many exact ties from a 0.25-step score grid over the clustered set
    b, s, lab = clustered_boxes(600, num_classes=5, seed=2)
    _assert_same((b, (s * 4).round() / 4 + 0.25, lab), iou_threshold=0.6)


def test_boxes_falling_below_min_score():
    boxes, scores, labels = clustered_boxes(500, num_classes=4, seed=3)
    scores[::7] = 5e-4  # start below min_score: pruned after the first step
    keep, new = _assert_same((boxes, scores, labels), min_score=1e-3)
    assert not set(range(0, 500, 7)) & set(keep.tolist())
    _assert_same((boxes, scores * 3e-3, labels), min_score=1e-3)  # decays cross min_score
    # every score below min_score: only the overall best survives, as the official first pick
    keep, new = _assert_same((boxes, scores * 1e-3, labels), min_score=1e-3)
    assert keep.tolist() == [int(torch.argmax(scores))]


def test_empty_and_single():
    keep, new = soft_nms(torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, dtype=torch.long))
    assert keep.numel() == 0 and new.numel() == 0
    _assert_same((torch.tensor([[1., 2., 5., 3.]]), torch.tensor([0.3]), torch.tensor([4])))


def test_hard_suppresses_at_exactly_the_threshold():
    boxes = torch.tensor([[0., 0., 10., 10.], [0., 0., 10., 5.], [0., 0., 20., 10.]])  # IoU 0.5
    keep, _ = _assert_same((boxes, torch.tensor([0.9, 0.8, 0.7]), torch.zeros(3, dtype=torch.long)),
                           method='hard', iou_threshold=0.5)
    assert keep.tolist() == [0]


def test_classes_too_large_to_split_into_groups(monkeypatch):
    import pe_dense.models.task_modules.soft_nms as mod
    monkeypatch.setattr(mod, 'GROUP_MAX_SIZE', 50)  # classes of ~100 boxes: one group each
    _assert_same(clustered_boxes(500, num_classes=5, seed=4))
