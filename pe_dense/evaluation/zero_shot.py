"""Zero-shot classification accuracy from a CLIP model's per-sample ``class_scores``.

The model scores each image against text classifiers built from class names x prompt
templates (PECLIP ``zero_shot=dict(classnames=..., templates=...)``); this metric only ranks.
"""
from typing import List, Sequence

import torch
from mmengine.evaluator import BaseMetric
from mmengine.registry import METRICS


@METRICS.register_module()
class ZeroShotAccuracy(BaseMetric):
    """Top-k accuracy (%) over samples with a ground-truth label (label -1 is ignored)."""
    default_prefix = 'zero_shot'

    def __init__(self, topk: Sequence[int] = (1, 5), **kwargs):
        super().__init__(**kwargs)
        self.topk = tuple(topk)

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for s in data_samples:
            if 'class_scores' not in s:
                raise KeyError('ZeroShotAccuracy: predictions carry no "class_scores"; configure '
                               'the model with zero_shot=dict(classnames=..., templates=...)')
            if s.get('gt_label', -1) < 0:
                continue
            scores = s['class_scores'].float().cpu()
            rank = int((scores > scores[s['gt_label']]).sum())
            self.results.append(rank)

    def compute_metrics(self, results: List[int]) -> dict:
        if not results:
            raise ValueError('ZeroShotAccuracy: no labelled samples were evaluated')
        ranks = torch.tensor(results)
        return {f'top{k}': float((ranks < k).float().mean() * 100) for k in self.topk}
