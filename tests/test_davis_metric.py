"""DAVIS 2017 J&F on hand-made masks (values worked out by hand in the comments)."""
import csv
import os
import os.path as osp

import numpy as np
import pytest
from PIL import Image

from pe_dense.datasets.davis import DavisDataset, write_label_png
from pe_dense.evaluation.davis_metric import (DavisMetricError, boundary_map,
                                              boundary_tolerance, contour_accuracy,
                                              evaluate_results, evaluate_sequence,
                                              format_tables, region_similarity, statistics,
                                              summarize, write_csvs)

H, W = 48, 64  # diagonal 80 px -> tolerance ceil(0.64) = 1 px


def square(top=10, left=10, size=10, value=1, shape=(H, W)):
    m = np.zeros(shape, np.uint8)
    m[top:top + size, left:left + size] = value
    return m


def test_tolerance_matches_benchmark():
    assert boundary_tolerance((480, 854)) == 8
    assert boundary_tolerance((H, W)) == 1
    assert boundary_tolerance((H, W), bound_th=3) == 3


def test_boundary_rule_and_image_border():
    full = np.ones((6, 7), bool)
    assert not boundary_map(full).any()  # the image edge is never a boundary
    m = square(2, 2, 2, shape=(6, 6)).astype(bool)
    b = boundary_map(m)
    # inside pixels next to the east/south edge and the outside pixels right before it
    expected = {(1, 1), (1, 2), (1, 3), (2, 1), (3, 1), (2, 3), (3, 2), (3, 3)}
    assert set(zip(*np.nonzero(b))) == expected


def test_perfect_and_empty_predictions():
    gt = square()
    assert region_similarity(gt, gt) == 1
    assert contour_accuracy(gt, gt) == 1
    empty = np.zeros_like(gt)
    assert region_similarity(gt, empty) == 0
    assert contour_accuracy(gt, empty) == 0
    assert region_similarity(empty, empty) == 1  # both empty -> 1
    assert contour_accuracy(empty, empty) == 1


def test_one_pixel_shift():
    gt, pred = square(), square(left=11)
    # 10x10 squares overlapping in 10x9 pixels: IoU = 90 / 110
    assert region_similarity(gt, pred) == pytest.approx(90 / 110)
    assert contour_accuracy(gt, pred) == 1  # within the 1-px tolerance
    far = square(left=14)  # 4 px away: vertical edges miss, horizontal edges mostly match
    assert contour_accuracy(gt, far) < 1


def test_tolerance_at_davis_resolution():
    shape = (480, 854)  # tolerance 8 px: an 8-px shift is forgiven, a 9-px one is not
    gt = square(100, 100, 120, shape=shape)
    assert contour_accuracy(gt, square(100, 108, 120, shape=shape)) == 1
    assert contour_accuracy(gt, square(100, 109, 120, shape=shape)) < 1


def test_statistics_recall_and_decay():
    v = np.array([1, 1, 1, .6, .6, .2, .2, .2])
    mean, recall, decay = statistics(v)
    # bins from round(linspace(1, 8, 5)) - 1 = [0, 2, 3, 5, 7]: first = v[0:3], last = v[5:8]
    assert mean == pytest.approx(0.6)
    assert recall == pytest.approx(5 / 8)
    assert decay == pytest.approx(1.0 - 0.2)


def test_sequence_excludes_first_and_last_and_decays():
    # 10 frames; object 1 predicted perfectly at first, then lost; frame 0 and 9 are ignored
    gt = np.stack([square() for _ in range(10)])
    pred = np.stack([square() if t < 5 else np.zeros((H, W), np.uint8) for t in range(1, 9)])
    res = evaluate_sequence('seq', gt, pred)
    assert res['J'].shape == (1, 8)
    np.testing.assert_allclose(res['J'][0], [1, 1, 1, 1, 0, 0, 0, 0])
    s = summarize({'seq': res})['global']
    assert s['J-Mean'] == pytest.approx(0.5)
    assert s['J-Recall'] == pytest.approx(0.5)
    assert s['J-Decay'] == pytest.approx(1.0)  # bins [0:3] and [5:8]
    assert s['J&F-Mean'] == pytest.approx((s['J-Mean'] + s['F-Mean']) / 2)


def test_objects_come_from_first_frame_and_255_is_background():
    gt = np.stack([square(value=1) for _ in range(4)])
    gt[1:, 30:40, 40:50] = 2  # an object appearing later is ignored
    gt[:, 0:3, 0:3] = 255
    pred = gt[1:-1].copy()
    pred[pred == 2] = 0
    pred[pred == 255] = 0
    res = evaluate_sequence('late', gt, pred)
    assert res['J'].shape == (1, 2) and np.all(res['J'] == 1) and np.all(res['F'] == 1)


def test_multi_object_global_average_is_over_objects():
    gt_a = np.stack([square(value=1) + square(30, 40, 8, value=2) for _ in range(3)])
    pred_a = square(value=1)[None]  # object 2 never predicted -> empty -> 0
    gt_b = np.stack([square(value=1) for _ in range(3)])
    summary = summarize({'a': evaluate_sequence('a', gt_a, pred_a),
                         'b': evaluate_sequence('b', gt_b, gt_b[1:2])})
    assert summary['global']['J-Mean'] == pytest.approx(2 / 3)  # not (0.5 + 1) / 2
    assert [r[0] for r in summary['objects']] == ['a_1', 'a_2', 'b_1']
    text = format_tables(summary)
    assert 'J&F-Mean' in text and 'a_2' in text
    # percent, one decimal (the paper's scale): J-Mean 2/3 prints as 66.7, never 0.667
    glob_row = text.splitlines()[2].split()
    assert glob_row[1] == '66.7' and '0.667' not in text


def test_predicted_id_beyond_first_frame_objects_is_an_error():
    gt = np.stack([square() for _ in range(4)])
    pred = gt[1:-1].copy()
    pred[1, 0, 0] = 2
    with pytest.raises(DavisMetricError, match=r"seq7: frame 00002 has object id 2"):
        evaluate_sequence('seq7', gt, pred)


def _write_davis(root, seqs):
    for name, labels in seqs.items():
        for t, lab in enumerate(labels):
            write_label_png(osp.join(root, 'Annotations', '480p', name, f'{t:05d}.png'), lab)
            img_dir = osp.join(root, 'JPEGImages', '480p', name)
            os.makedirs(img_dir, exist_ok=True)
            Image.fromarray(np.zeros((*lab.shape, 3), np.uint8)).save(
                osp.join(img_dir, f'{t:05d}.jpg'))
    set_dir = osp.join(root, 'ImageSets', '2017')
    os.makedirs(set_dir, exist_ok=True)
    with open(osp.join(set_dir, 'val.txt'), 'w') as fh:
        fh.write(''.join(n + '\n' for n in seqs))


def test_results_folder_and_official_csvs(tmp_path):
    gt = [square(value=1) + square(30, 40, 8, value=2) for _ in range(5)]
    _write_davis(str(tmp_path / 'davis'), {'two': gt})
    res_dir = tmp_path / 'res'
    for t in range(1, 4):
        write_label_png(str(res_dir / 'two' / f'{t:05d}.png'), square(left=11))
    summary = evaluate_results(DavisDataset(str(tmp_path / 'davis')), str(res_dir))
    assert summary['global']['J-Mean'] == pytest.approx((90 / 110 + 0) / 2)
    g_path, s_path = write_csvs(summary, str(tmp_path))
    with open(g_path) as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ['J&F-Mean', 'J-Mean', 'J-Recall', 'J-Decay', 'F-Mean', 'F-Recall',
                       'F-Decay']
    assert rows[1][1] == f'{(90 / 110) / 2:.3f}' and rows[1][4] == '0.500'
    with open(s_path) as fh:
        rows = list(csv.reader(fh))
    assert rows == [['Sequence', 'J-Mean', 'F-Mean'], ['two_1', f'{90 / 110:.3f}', '1.000'],
                    ['two_2', '0.000', '0.000']]


def test_results_folder_errors_name_sequence_and_frame(tmp_path):
    _write_davis(str(tmp_path / 'davis'), {'one': [square() for _ in range(4)]})
    ds = DavisDataset(str(tmp_path / 'davis'))
    res_dir = tmp_path / 'res'
    write_label_png(str(res_dir / 'one' / '00001.png'), square())
    with pytest.raises(DavisMetricError, match=r'one: prediction for frame 00002 not found'):
        evaluate_results(ds, str(res_dir))
    write_label_png(str(res_dir / 'one' / '00002.png'), square(value=3))  # palette id 3
    with pytest.raises(DavisMetricError, match=r'one: frame 00002 has object id 3.*1 object'):
        evaluate_results(ds, str(res_dir))
    write_label_png(str(res_dir / 'one' / '00002.png'), square(shape=(H, W + 2)))
    with pytest.raises(DavisMetricError, match=r'one: prediction sizes'):
        evaluate_results(ds, str(res_dir))


# A k x k square away from the image edge has a 4k-pixel boundary under the benchmark's rule:
# inside, its east column and south row (2k - 1); outside, the row above from one column to
# the left (k + 1) and the column to the left (k).  10x10 -> 40 px, 2x2 -> 8 px.
def test_boundary_lengths_differ_precision_over_prediction():
    gt = square()
    pred = gt.copy()
    pred[35:37, 50:52] = 1  # a far 2x2 blob: 8 extra predicted boundary pixels, none matched
    assert boundary_map(gt).sum() == 40 and boundary_map(pred).sum() == 48
    # precision = 40 / 48, recall = 40 / 40 -> F = 2 * (5/6) / (5/6 + 1) = 10/11
    assert contour_accuracy(gt, pred) == pytest.approx(10 / 11)
    # the same blob in the ground truth only: recall = 40 / 48, precision = 1
    assert contour_accuracy(pred, gt) == pytest.approx(10 / 11)


def test_tolerance_is_rounded_up_not_to_nearest():
    shape = (90, 120)  # diagonal 150 -> 0.008 * 150 = 1.2 px: ceil 2, round 1, floor 1
    assert boundary_tolerance(shape) == 2
    gt = square(30, 30, 20, shape=shape)
    assert contour_accuracy(gt, square(30, 32, 20, shape=shape)) == 1  # 2-px shift forgiven
    assert contour_accuracy(gt, square(30, 33, 20, shape=shape)) < 1


def test_recall_counts_only_scores_above_one_half():
    gt = square()
    half = square(size=10)
    half[:, 15:] = 0  # 10x5 inside the 10x10 square: IoU = 50 / 100 exactly
    j = [region_similarity(gt, half), 1.0, 0.2, region_similarity(gt, half)]
    assert j[0] == 0.5
    _, recall, _ = statistics(np.array(j))
    assert recall == pytest.approx(1 / 4)  # official db_statistics: mean(X > 0.5)
