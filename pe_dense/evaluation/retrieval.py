"""Image <-> text retrieval recall@K from per-sample ``image_emb`` / ``text_emb``.

Sample i's caption is the one correct match of sample i's image and vice versa (one caption per
image, as in a flattened Flickr/COCO split). Embeddings are L2-normalised by the model.
"""
from typing import List, Sequence

import torch
from mmengine.evaluator import BaseMetric
from mmengine.registry import METRICS


def recall_at_k(sim: torch.Tensor, ks: Sequence[int]) -> dict:
    """Row i's correct column is i; returns {k: % of rows whose match ranks within top k}."""
    correct = sim.diagonal()[:, None]
    rank = (sim > correct).sum(dim=1)
    return {k: float((rank < k).float().mean() * 100) for k in ks}


@METRICS.register_module()
class ImageTextRetrieval(BaseMetric):
    """R@K (%) for text->image (``t2i_R@K``) and image->text (``i2t_R@K``) and their mean."""
    default_prefix = 'retrieval'

    def __init__(self, ks: Sequence[int] = (1, 5, 10), **kwargs):
        super().__init__(**kwargs)
        self.ks = tuple(ks)

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for s in data_samples:
            if 'text_emb' not in s:
                raise KeyError('ImageTextRetrieval: predictions carry no "text_emb"; the '
                               'evaluation pipeline must keep captions')
            self.results.append((s['image_emb'].float().cpu(), s['text_emb'].float().cpu()))

    def compute_metrics(self, results: List[tuple]) -> dict:
        if not results:
            raise ValueError('ImageTextRetrieval: nothing was evaluated')
        image = torch.stack([r[0] for r in results])
        text = torch.stack([r[1] for r in results])
        sim = text @ image.t()
        t2i, i2t = recall_at_k(sim, self.ks), recall_at_k(sim.t(), self.ks)
        out = {f't2i_R@{k}': v for k, v in t2i.items()}
        out.update({f'i2t_R@{k}': v for k, v in i2t.items()})
        out['mean_R'] = sum(out.values()) / len(out)
        return out
