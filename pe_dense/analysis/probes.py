"""Fast frozen-feature probes for a layer sweep: closed-form, so a sweep stays cheap.

Segmentation and depth are ridge regressions from a token to its patch's targets (class
shares / mean valid depth), scored at full label resolution with the usual metrics: mIoU with
mmseg's ``IoUMetric`` maths, depth RMSE over valid pixels averaged per image (mmseg's
``DepthMetric``). Classification is DINO's weighted k-NN on mean-pooled tokens. Tracking is
label propagation (``pe_dense.tracking``) scored with the DAVIS J&F of
``pe_dense.evaluation.davis_metric``.
"""
from typing import Iterable, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

IGNORE = 255


def _tokens(maps) -> torch.Tensor:
    """(N, C, h, w) -> (N*h*w, C) float64."""
    m = torch.from_numpy(np.array(maps, dtype=np.float64))
    return m.permute(0, 2, 3, 1).reshape(-1, m.shape[1])


class Ridge:
    """Standardised ridge regression with bias; ``alpha`` is relative to the mean variance."""

    def __init__(self, alpha: float = 1e-2):
        self.alpha = alpha

    def fit(self, x: torch.Tensor, y: torch.Tensor) -> 'Ridge':
        if len(x) != len(y) or len(x) == 0:
            raise ValueError(f'Ridge.fit: {len(x)} inputs for {len(y)} targets')
        self.mu, self.sd = x.mean(0), x.std(0).clamp_min(1e-6)
        self.y_mu = y.mean(0)
        xs = (x - self.mu) / self.sd
        gram = xs.T @ xs
        reg = self.alpha * gram.diagonal().mean().clamp_min(1e-12)
        eye = torch.eye(gram.shape[0], dtype=gram.dtype)
        self.w = torch.linalg.solve(gram + reg * eye, xs.T @ (y - self.y_mu))
        return self

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return ((x - self.mu) / self.sd) @ self.w + self.y_mu


def _patch_targets(label: np.ndarray, grid: Tuple[int, int], fn) -> torch.Tensor:
    """Resize a label/depth map to a multiple of the grid (nearest) and pool per patch."""
    gh, gw = grid
    ph, pw = max(label.shape[0] // gh, 1), max(label.shape[1] // gw, 1)
    lab = torch.as_tensor(np.ascontiguousarray(label))[None, None].float()
    lab = F.interpolate(lab, size=(gh * ph, gw * pw), mode='nearest-exact')[0, 0]
    return fn(lab, (ph, pw))


def _class_shares(classes: torch.Tensor):
    """Pool: per-patch share of each class in ``classes`` (bincount, no full-res one-hot)."""
    lookup = torch.full((max(IGNORE, int(classes.max())) + 1,), -1, dtype=torch.long)
    lookup[classes] = torch.arange(len(classes))

    def pool(lab, patch):
        (ph, pw), (h, w) = patch, lab.shape
        gh, gw = h // ph, w // pw
        cls = lookup[lab.long().clamp(0, len(lookup) - 1)]
        cell = (torch.arange(h)[:, None] // ph) * gw + torch.arange(w)[None] // pw
        ok = cls >= 0
        counts = torch.bincount(cell[ok] * len(classes) + cls[ok],
                                minlength=gh * gw * len(classes))
        share = counts.view(gh * gw, len(classes)).double() / (ph * pw)
        share[share.sum(1) == 0] = torch.nan  # no labelled pixel: not a training token
        return share
    return pool


def _valid_mean(lab, patch):
    valid = (lab > 0).double()
    total = F.avg_pool2d((lab.double() * valid)[None, None], patch)[0, 0]
    count = F.avg_pool2d(valid[None, None], patch)[0, 0]
    mean = torch.where(count > 0, total / count.clamp_min(1e-12), torch.nan)
    return mean.flatten()[:, None]


def _fit_tokens(maps, labels: Sequence[np.ndarray], pool, alpha: float) -> Ridge:
    """Ridge from tokens to pooled targets; tokens whose target is NaN are left out."""
    grid = tuple(np.asarray(maps).shape[-2:])
    x = _tokens(maps)
    y = torch.cat([_patch_targets(lab, grid, pool) for lab in labels])
    keep = ~torch.isnan(y).any(1)
    return Ridge(alpha).fit(x[keep], y[keep])


def _predict_maps(probe: Ridge, maps, sizes: Iterable[Tuple[int, int]]) -> List[torch.Tensor]:
    """Token predictions (N, h, w, D) upsampled bilinearly to each label's size."""
    maps = np.asarray(maps)
    n, _, gh, gw = maps.shape
    pred = probe.predict(_tokens(maps)).view(n, gh, gw, -1).permute(0, 3, 1, 2)
    return [F.interpolate(p[None], size=tuple(s), mode='bilinear', align_corners=False)[0]
            for p, s in zip(pred, sizes)]


def check_pairs(maps, labels, what: str):
    if len(np.asarray(maps)) != len(labels):
        raise ValueError(f'{what}: {len(np.asarray(maps))} feature maps for {len(labels)} '
                         'label maps')


def segmentation_miou(train_maps, train_labels, val_maps, val_labels, num_classes: int,
                      alpha: float = 1e-2) -> float:
    """mIoU (%) of a ridge probe on tokens; labels are (H, W) ids with 255 = ignore.

    The probe regresses each token onto its patch's class shares (classes seen in training)
    and predicts the argmax of its bilinearly upsampled outputs.
    """
    from mmseg.evaluation.metrics import IoUMetric
    check_pairs(train_maps, train_labels, 'segmentation train')
    check_pairs(val_maps, val_labels, 'segmentation val')
    for lab in list(train_labels) + list(val_labels):
        bad = (lab != IGNORE) & ((lab < 0) | (lab >= num_classes))
        if bad.any():
            raise ValueError(f'segmentation label {int(lab[bad][0])} outside 0..{num_classes - 1}')
    # only classes seen in training can be predicted: the probe scores those (fewer outputs)
    seen = torch.as_tensor(np.unique(np.concatenate([np.unique(lab) for lab in train_labels])))
    seen = seen[seen != IGNORE].long()
    if len(seen) == 0:
        raise ValueError('segmentation probe: the training labels are all ignore (255)')
    probe = _fit_tokens(train_maps, train_labels, _class_shares(seen), alpha)
    preds = _predict_maps(probe, val_maps, [lab.shape for lab in val_labels])
    areas = [IoUMetric.intersect_and_union(seen[p.argmax(0)],
                                           torch.as_tensor(lab.astype(np.int64)),
                                           num_classes, IGNORE)
             for p, lab in zip(preds, val_labels)]
    totals = [sum(a[i] for a in areas) for i in range(4)]
    with np.errstate(invalid='ignore', divide='ignore'):  # absent classes: NaN, skipped
        iou = IoUMetric.total_area_to_metrics(*totals, metrics=['mIoU'])['IoU']
    return float(np.nanmean(iou) * 100)


def depth_rmse(train_maps, train_depths, val_maps, val_depths, alpha: float = 1e-2) -> float:
    """RMSE (depth units) of a ridge probe, over valid (> 0) pixels, averaged per image."""
    check_pairs(train_maps, train_depths, 'depth train')
    check_pairs(val_maps, val_depths, 'depth val')
    probe = _fit_tokens(train_maps, train_depths, _valid_mean, alpha)
    preds = _predict_maps(probe, val_maps, [d.shape for d in val_depths])
    rmses = []
    for p, gt in zip(preds, val_depths):
        gt = torch.as_tensor(np.asarray(gt, dtype=np.float64))
        valid = gt > 0
        if valid.any():
            rmses.append(torch.sqrt(((p[0] - gt)[valid] ** 2).mean()).item())
    if not rmses:
        raise ValueError('depth probe: no validation pixel has a valid (> 0) depth')
    return float(np.mean(rmses))


def global_features(maps, center: Optional[torch.Tensor] = None) -> torch.Tensor:
    """(N, C, h, w) -> (N, C) mean tokens, minus ``center``, L2-normalised."""
    m = torch.from_numpy(np.array(maps, dtype=np.float32)).flatten(2).mean(-1)
    return F.normalize(m - center if center is not None else m, dim=-1)


def knn_accuracy(train_maps, train_labels, val_maps, val_labels, k: int = 20,
                 temperature: float = 0.07) -> float:
    """Top-1 accuracy (%) of DINO's weighted k-NN (votes ``exp(cos / T)``).

    Mean tokens are centred on the training mean first: a component shared by every image
    (large in some layers) would otherwise make all cosines ~1 and the votes uniform.
    """
    train_labels = torch.as_tensor(np.asarray(train_labels)).long()
    val_labels = torch.as_tensor(np.asarray(val_labels)).long()
    check_pairs(train_maps, train_labels, 'k-NN train')
    check_pairs(val_maps, val_labels, 'k-NN val')
    center = torch.from_numpy(np.array(train_maps, dtype=np.float32)).mean((0, 2, 3))
    tr, va = global_features(train_maps, center), global_features(val_maps, center)
    sims, idx = (va @ tr.T).topk(min(k, len(tr)), dim=1)
    num_classes = int(max(train_labels.max(), val_labels.max())) + 1
    votes = torch.zeros(len(va), num_classes)
    votes.scatter_add_(1, train_labels[idx], (sims / temperature).exp())
    return float((votes.argmax(1) == val_labels).float().mean() * 100)


def propagation_jf(videos, n_last: int = 7, topk: int = 5, radius: int = 12,
                   temperature: float = 0.1) -> float:
    """DAVIS J&F-Mean (%) of label propagation over cached features.

    Args:
        videos: iterable of (name, maps (T, C, h, w), gt (T, H, W) ids) per sequence.
    """
    from pe_dense.evaluation.davis_metric import evaluate_sequence, summarize
    from pe_dense.tracking.label_propagation import LabelPropagator
    per_seq = {}
    for name, maps, gt in videos:
        maps = np.asarray(maps)
        if len(maps) != len(gt) or len(gt) < 3:
            raise ValueError(f'video {name}: {len(maps)} feature maps, {len(gt)} label maps '
                             '(need equal counts, >= 3 frames)')
        unit = F.normalize(torch.from_numpy(np.array(maps, np.float32)), dim=1)
        feats = iter(unit.permute(0, 2, 3, 1))  # (h, w, C) per frame, in frame order
        prop = LabelPropagator(lambda _frame: next(feats), n_last=n_last, topk=topk,
                               radius=radius, temperature=temperature)
        frames = [np.empty((*gt.shape[1:], 3), np.uint8)] * len(gt)  # sizes only
        first = np.where(gt[0] == IGNORE, 0, gt[0]).astype(np.uint8)
        pred = np.stack(list(prop(frames, first)))
        per_seq[name] = evaluate_sequence(name, gt, pred[1:-1])
    return float(summarize(per_seq)['global']['J&F-Mean'] * 100)
