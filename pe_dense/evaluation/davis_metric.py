"""DAVIS 2017 semi-supervised J&F, following the official davis2017-evaluation rules.

J is the per-object region IoU, F the contour F-measure with a tolerance of
``ceil(0.008 * image diagonal)`` pixels. Per sequence the first and last annotated frames are
dropped; the objects are the ids 1..max(id) of the first ground-truth frame (255 counts as
background); per object we report mean, recall (share of frames > 0.5) and decay (first
quarter minus last quarter, overlapping bins). The global numbers average all objects of all
sequences, and the CSVs match the official ``global_results-<split>.csv`` /
``per-sequence_results-<split>.csv`` (one row per ``<sequence>_<object>``).
"""
import csv
import functools
import math
import os.path as osp
from typing import Dict, List, Optional, Sequence

import cv2
import numpy as np
from pe_dense.datasets.davis import read_label_png

GLOBAL_COLUMNS = ('J&F-Mean', 'J-Mean', 'J-Recall', 'J-Decay', 'F-Mean', 'F-Recall', 'F-Decay')
SEQUENCE_COLUMNS = ('Sequence', 'J-Mean', 'F-Mean')
VOID = 255


class DavisMetricError(ValueError):
    """Predictions that the benchmark refuses (object ids it does not know, wrong sizes)."""


def region_similarity(gt: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """J: IoU over the last two axes; frames where both masks are empty score 1."""
    gt, pred = gt.astype(bool), pred.astype(bool)
    inter = np.sum(gt & pred, axis=(-2, -1))
    union = np.sum(gt | pred, axis=(-2, -1))
    with np.errstate(invalid='ignore', divide='ignore'):
        j = inter / union
    return np.where(union == 0, 1.0, j)


def boundary_map(mask: np.ndarray) -> np.ndarray:
    """1-px boundary: pixels that differ from their right, lower or lower-right neighbour.

    Pixels outside the image are never compared, so the image border is not a boundary.
    """
    seg = mask.astype(bool)
    east, south, south_east = (np.zeros_like(seg) for _ in range(3))
    east[:, :-1] = seg[:, 1:]
    south[:-1, :] = seg[1:, :]
    south_east[:-1, :-1] = seg[1:, 1:]
    b = (seg ^ east) | (seg ^ south) | (seg ^ south_east)
    b[-1, :] = seg[-1, :] ^ east[-1, :]
    b[:, -1] = seg[:, -1] ^ south[:, -1]
    b[-1, -1] = False
    return b


def boundary_tolerance(shape: Sequence[int], bound_th: float = 0.008) -> float:
    """Dilation radius in pixels: ``bound_th`` of the diagonal (rounded up), or absolute if >= 1."""
    return bound_th if bound_th >= 1 else math.ceil(bound_th * math.hypot(*shape[:2]))


@functools.lru_cache(maxsize=8)
def _disk(radius: float) -> np.ndarray:
    from skimage.morphology import disk  # imported on first use: keeps `import pe_dense` light
    return disk(radius).astype(np.uint8)


def contour_accuracy(gt: np.ndarray, pred: np.ndarray, bound_th: float = 0.008) -> float:
    """F for one frame: boundary precision/recall against the other's disk-dilated boundary."""
    if gt.shape != pred.shape or gt.ndim != 2:
        raise DavisMetricError(f'contour_accuracy needs two equal 2-D masks, got {gt.shape} '
                               f'and {pred.shape}')
    kernel = _disk(boundary_tolerance(gt.shape, bound_th))
    pb, gb = boundary_map(pred), boundary_map(gt)
    n_pred, n_gt = int(pb.sum()), int(gb.sum())
    if n_pred == 0 and n_gt == 0:
        return 1.0
    if n_pred == 0 or n_gt == 0:
        return 0.0
    pred_dil = cv2.dilate(pb.astype(np.uint8), kernel).astype(bool)
    gt_dil = cv2.dilate(gb.astype(np.uint8), kernel).astype(bool)
    precision = np.sum(pb & gt_dil) / n_pred
    recall = np.sum(gb & pred_dil) / n_gt
    if precision + recall == 0:
        return 0.0
    return float(2 * precision * recall / (precision + recall))


def statistics(values: np.ndarray, n_bins: int = 4):
    """(mean, recall, decay) of per-frame scores, as the benchmark's ``db_statistics``."""
    values = np.asarray(values, dtype=np.float64)
    mean = float(np.nanmean(values))
    recall = float(np.nanmean(values > 0.5))
    ids = (np.round(np.linspace(1, len(values), n_bins + 1) + 1e-10) - 1).astype(int)
    bins = [values[ids[i]:ids[i + 1] + 1] for i in range(n_bins)]
    decay = float(np.nanmean(bins[0]) - np.nanmean(bins[-1]))
    return mean, recall, decay


def split_objects(labels: np.ndarray, num_objects: int) -> np.ndarray:
    """(T, H, W) id maps -> (num_objects, T, H, W) boolean masks of ids 1..num_objects."""
    ids = np.arange(1, num_objects + 1).reshape(-1, *([1] * labels.ndim))
    return labels[None] == ids


def evaluate_sequence(name: str, gt: np.ndarray, pred: np.ndarray,
                      frame_names: Optional[Sequence[str]] = None,
                      bound_th: float = 0.008) -> Dict[str, np.ndarray]:
    """Per-object J and F of one sequence.

    Args:
        gt: (T, H, W) ground-truth ids of every annotated frame (frame 0 included; 255 = void).
        pred: (T-2, H, W) predicted ids for frames 1..T-2 (the evaluated ones).
    Returns:
        dict(J=(K, T-2), F=(K, T-2)) with K the number of objects of the first GT frame.
    """
    frame_names = list(frame_names) if frame_names is not None else [
        f'{i:05d}' for i in range(len(gt))]
    if gt.ndim != 3 or len(gt) < 3:
        raise DavisMetricError(f'{name}: needs >= 3 annotated frames, got shape {gt.shape}')
    gt = np.where(gt == VOID, 0, gt)
    num_objects = int(gt[0].max())
    gt = gt[1:-1]
    if pred.shape != gt.shape:
        raise DavisMetricError(f'{name}: predictions of shape {pred.shape} do not match the '
                               f'evaluated ground truth {gt.shape} (frames 1..T-2, H, W)')
    for t in range(len(pred)):
        top = int(pred[t].max())
        if top > num_objects:
            raise DavisMetricError(
                f'{name}: frame {frame_names[t + 1]} has object id {top}, higher than the '
                f'{num_objects} object(s) of the first ground-truth frame')
    gt_obj, pred_obj = split_objects(gt, num_objects), split_objects(pred, num_objects)
    j = region_similarity(gt_obj, pred_obj).reshape(num_objects, len(gt))
    f = np.array([[contour_accuracy(g, p, bound_th) for g, p in zip(go, po)]
                  for go, po in zip(gt_obj, pred_obj)]).reshape(num_objects, len(gt))
    return dict(J=j, F=f)


def summarize(per_sequence: Dict[str, Dict[str, np.ndarray]]) -> dict:
    """Benchmark tables from ``{sequence: evaluate_sequence(...)}``.

    Returns dict(global={column: value}, objects=[(seq_obj, J-Mean, F-Mean)], plus the raw
    per-object statistics under 'J' / 'F' (lists of (mean, recall, decay)).
    """
    stats = {'J': [], 'F': []}
    rows = []
    for seq, res in per_sequence.items():
        for k in range(res['J'].shape[0]):
            js, fs = statistics(res['J'][k]), statistics(res['F'][k])
            stats['J'].append(js)
            stats['F'].append(fs)
            rows.append((f'{seq}_{k + 1}', js[0], fs[0]))
    if not rows:
        raise DavisMetricError('no objects to evaluate (empty sequence list?)')
    jm, jr, jd = np.mean(stats['J'], axis=0)
    fm, fr, fd = np.mean(stats['F'], axis=0)
    values = ((jm + fm) / 2, jm, jr, jd, fm, fr, fd)
    out = dict(objects=rows, **stats)
    out['global'] = dict(zip(GLOBAL_COLUMNS, map(float, values)))
    return out


def write_csvs(summary: dict, out_dir: str, split: str = 'val') -> List[str]:
    """The official ``global_results-<split>.csv`` and ``per-sequence_results-<split>.csv``."""
    g_path = osp.join(out_dir, f'global_results-{split}.csv')
    s_path = osp.join(out_dir, f'per-sequence_results-{split}.csv')
    with open(g_path, 'w', newline='') as fh:
        w = csv.writer(fh)
        w.writerow(GLOBAL_COLUMNS)
        w.writerow([f'{summary["global"][c]:.3f}' for c in GLOBAL_COLUMNS])
    with open(s_path, 'w', newline='') as fh:
        w = csv.writer(fh)
        w.writerow(SEQUENCE_COLUMNS)
        w.writerows([(n, f'{j:.3f}', f'{f:.3f}') for n, j, f in summary['objects']])
    return [g_path, s_path]


def format_tables(summary: dict, split: str = 'val') -> str:
    """Both tables as aligned text in percent (one decimal), the scale papers quote (61.5).

    The CSVs of ``write_csvs`` keep the official file format (fractions, three decimals).
    """
    def table(header, rows):
        cells = [list(header)] + [[c if isinstance(c, str) else f'{100 * c:.1f}' for c in r]
                                  for r in rows]
        widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
        return '\n'.join(' '.join(c.rjust(wd) for c, wd in zip(r, widths)) for r in cells)
    g = summary['global']
    return (f'----------------------- Global results for {split} (%) -----------------------\n'
            + table(GLOBAL_COLUMNS, [[g[c] for c in GLOBAL_COLUMNS]])
            + f'\n\n---------- Per sequence results for {split} (%) ----------\n'
            + table(SEQUENCE_COLUMNS, summary['objects']))


def evaluate_results(dataset, results_dir: str, bound_th: float = 0.008,
                     progress: bool = False) -> dict:
    """Evaluate ``results_dir/<sequence>/<frame>.png`` against a ``DavisDataset``.

    Only frames 1..T-2 of each sequence are read (the benchmark skips the first and last).
    """
    from tqdm import tqdm

    per_sequence = {}
    for name in tqdm(dataset.names, desc='J&F', disable=not progress):
        seq = dataset[name]
        if len(seq.annotations) != len(seq.frame_ids):
            raise DavisMetricError(f'sequence {name}: J&F needs every frame annotated')
        gt = dataset.load_annotations(seq)
        preds = []
        for fid in seq.frame_ids[1:-1]:
            path = osp.join(results_dir, name, f'{fid}.png')
            if not osp.isfile(path):
                raise DavisMetricError(f'sequence {name}: prediction for frame {fid} not found '
                                       f'({path}); masks must be indexed PNGs named like the '
                                       'annotations')
            preds.append(read_label_png(path))
        shapes = {p.shape for p in preds}
        if shapes != {gt.shape[1:]}:
            raise DavisMetricError(f'sequence {name}: prediction sizes {sorted(shapes)} differ '
                                   f'from the annotation size {gt.shape[1:]}')
        per_sequence[name] = evaluate_sequence(name, gt, np.stack(preds), seq.frame_ids,
                                               bound_th)
    return summarize(per_sequence)
