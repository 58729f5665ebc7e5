"""Zero-shot video object segmentation by label propagation over frozen features.

The protocol of DINO's ``eval_video_segmentation``: each target frame attends to the first
frame and the ``n_last`` previous frames; affinities are ``exp(cos / temperature)`` restricted
to a square neighbourhood of ``radius`` tokens; each target token keeps its ``topk`` sources
(over all context frames together) and averages their labels with the normalised affinities.
The first frame's label map is the one-hot ground truth at token resolution; later context
frames carry their soft predictions. Predictions are upsampled bilinearly to the frame size,
min-max normalised per object and argmax-ed.
"""
from collections import deque
from typing import Callable, Iterable, Iterator, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F

FeatureFn = Callable[[np.ndarray], torch.Tensor]  # RGB uint8 (H, W, 3) -> (h, w, C)


def neighbourhood_mask(h: int, w: int, radius: int, device=None) -> torch.Tensor:
    """(h*w, h*w) bool: True where two tokens are at most ``radius`` apart in x and in y."""
    ys, xs = torch.meshgrid(torch.arange(h, device=device), torch.arange(w, device=device),
                            indexing='ij')
    ys, xs = ys.flatten(), xs.flatten()
    return ((ys[:, None] - ys[None]).abs() <= radius) & ((xs[:, None] - xs[None]).abs() <= radius)


def onehot_at_grid(labels: np.ndarray, num_classes: int, grid: Tuple[int, int],
                   device=None) -> torch.Tensor:
    """(num_classes, h, w) one-hot of an id map resized to the token grid (nearest)."""
    lab = torch.as_tensor(labels.astype(np.int64), device=device)[None, None].float()
    lab = F.interpolate(lab, size=grid, mode='nearest-exact')[0, 0].long()
    return F.one_hot(lab, num_classes).permute(2, 0, 1).float()


def propagate(target: torch.Tensor, sources: torch.Tensor, source_labels: torch.Tensor,
              topk: int = 5, temperature: float = 0.1,
              mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Soft labels of the target tokens.

    Keeping the top-k of ``exp(cos / T)`` and normalising equals a softmax over the top-k
    cosines, so the exponential is only taken of the kept values (and cannot overflow).

    Args:
        target: (N, C) target-frame features.
        sources: (M, N, C) features of the M context frames.
        source_labels: (M, K, N) label maps of the context frames.
        mask: (N, N) bool neighbourhood [target token, source token], or None for global.
    Returns:
        (K, N) labels, each column a convex combination of the ``topk`` best sources.
    """
    m, n, c = sources.shape
    target, sources = F.normalize(target, dim=-1), F.normalize(sources, dim=-1)
    cos = (target @ sources.reshape(m * n, c).T).view(-1, m, n)  # (target, frame, source)
    if mask is not None:
        cos.masked_fill_(~mask[:, None, :], float('-inf'))
    vals, idx = cos.view(-1, m * n).topk(min(topk, m * n), dim=1)  # (N, k)
    weights = torch.softmax(vals / temperature, dim=1)
    labels = source_labels.permute(1, 0, 2).reshape(source_labels.shape[1], m * n)
    return (labels[:, idx] * weights).sum(-1)


def upsample_labels(soft: torch.Tensor, size: Tuple[int, int]) -> np.ndarray:
    """(K, h, w) soft labels -> (H, W) uint8 ids: bilinear, per-object min-max, argmax."""
    up = F.interpolate(soft[None], size=size, mode='bilinear', align_corners=False)[0]
    lo = up.flatten(1).min(1).values[:, None, None]
    hi = up.flatten(1).max(1).values[:, None, None]
    scaled = (up - lo) / (hi - lo).clamp_min(1e-12)
    up = torch.where(hi > 0, scaled, up)
    return up.argmax(0).to(torch.uint8).cpu().numpy()


class LabelPropagator:
    """Propagate first-frame masks through a video with a frozen feature extractor.

    Args:
        extractor: frame (RGB uint8, H x W x 3) -> (h, w, C) feature map; called once per frame.
        n_last: previous frames kept in the context queue (besides the first frame).
        topk: sources kept per target token.
        radius: neighbourhood radius in tokens (0 or less: no restriction).
        temperature: softmax temperature of the cosine affinities.
        hard_queue: queue one-hot predictions instead of DINO's soft ones.
    """

    def __init__(self, extractor: FeatureFn, n_last: int = 7, topk: int = 5, radius: int = 12,
                 temperature: float = 0.1, hard_queue: bool = False):
        if n_last < 0 or topk < 1 or temperature <= 0:
            raise ValueError(f'LabelPropagator: need n_last >= 0, topk >= 1, temperature > 0; '
                             f'got {n_last}, {topk}, {temperature}')
        self.extractor, self.n_last, self.topk = extractor, n_last, topk
        self.radius, self.temperature, self.hard_queue = radius, temperature, hard_queue

    def _features(self, frame: np.ndarray, index: int, grid=None) -> torch.Tensor:
        feat = self.extractor(frame)
        if feat.ndim != 3 or (grid is not None and tuple(feat.shape[:2]) != grid):
            raise ValueError(f'frame {index}: feature map of shape {tuple(feat.shape)}; expected '
                             f'(h, w, C) with the grid {grid} of frame 0 (frames of one video '
                             'must share a size)')
        return feat

    def __call__(self, frames: Iterable[np.ndarray], first_labels: np.ndarray
                 ) -> Iterator[np.ndarray]:
        """Yield an (H, W) uint8 id map per frame; frame 0 yields ``first_labels`` itself."""
        frames = iter(frames)
        first = next(frames, None)
        if first is None:
            raise ValueError('LabelPropagator: the video has no frames')
        size = first.shape[:2]
        if first_labels.shape != size:
            raise ValueError(f'first-frame mask is {first_labels.shape}, frame 0 is {size}')
        labels = np.where(first_labels == 255, 0, first_labels)
        feat0 = self._features(first, 0)
        grid = tuple(feat0.shape[:2])
        num_classes = int(labels.max()) + 1
        lab0 = onehot_at_grid(labels, num_classes, grid, feat0.device).flatten(1)
        mask = (neighbourhood_mask(*grid, self.radius, feat0.device)
                if self.radius > 0 else None)
        queue = deque(maxlen=self.n_last)
        yield first_labels.astype(np.uint8)
        for t, frame in enumerate(frames, start=1):
            if frame.shape[:2] != size:
                raise ValueError(f'frame {t} is {frame.shape[:2]}, frame 0 is {size}')
            feat = self._features(frame, t, grid).flatten(0, 1)
            srcs = [feat0.flatten(0, 1)] + [f for f, _ in queue]
            labs = [lab0] + [lab for _, lab in queue]
            soft = propagate(feat, torch.stack(srcs), torch.stack(labs), self.topk,
                             self.temperature, mask)
            if self.n_last:
                queued = (F.one_hot(soft.argmax(0), num_classes).T.float()
                          if self.hard_queue else soft)
                queue.append((feat, queued))
            yield upsample_labels(soft.reshape(num_classes, *grid), size)
