"""Repeat-factor sampling for LVIS (Gupta et al. 2019) as detectron2's training sampler runs it.

mmdet's ``ClassBalancedDataset`` repeats an image ``ceil(r)`` times; the official PE LVIS
configs use detectron2's ``RepeatFactorTrainingSampler``, which rounds ``r`` *stochastically*
afresh on every pass (``floor(r) + (u < frac(r))``) and shuffles the resulting list, an
infinite stream that ranks read with stride ``world_size``. This sampler does exactly that.

``r(image) = max over its categories c of max(1, sqrt(thresh / f(c)))``, with ``f(c)`` the
fraction of training images that contain ``c``.
"""
import itertools
import math
from typing import Iterator, List, Optional, Sequence

import torch
from mmdet.registry import DATA_SAMPLERS
from mmengine.dist import get_dist_info, sync_random_seed
from torch.utils.data import Sampler


def repeat_factors(cat_ids_per_image: Sequence[Sequence[int]], thresh: float) -> List[float]:
    """Per-image repeat factor from the category ids of each image's annotations."""
    sets = [set(c) for c in cat_ids_per_image]
    freq = {}
    for cats in sets:
        for c in cats:
            freq[c] = freq.get(c, 0) + 1
    n = len(sets)
    rep = {c: max(1.0, math.sqrt(thresh / (k / n))) for c, k in freq.items()}
    return [max((rep[c] for c in cats), default=1.0) for cats in sets]


def epoch_indices(factors: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One pass: image ``i`` appears ``floor(r_i)`` or ``floor(r_i) + 1`` times (stochastic)."""
    int_part = torch.trunc(factors)
    frac = factors - int_part
    reps = int_part + (torch.rand(len(frac), generator=generator) < frac).float()
    return torch.repeat_interleave(torch.arange(len(factors)), reps.long())


@DATA_SAMPLERS.register_module()
class RepeatFactorSampler(Sampler):
    """Infinite repeat-factor sampler (detectron2's ``RepeatFactorTrainingSampler``).

    Args:
        dataset: an mmdet dataset (``get_cat_ids(i)`` gives image ``i``'s category ids).
        repeat_thresh: the frequency threshold (official LVIS: 0.001).
        shuffle: shuffle every pass.
        seed: shared by all ranks; None draws one and syncs it.
    """

    def __init__(self, dataset, repeat_thresh: float = 0.001, shuffle: bool = True,
                 seed: Optional[int] = None):
        self.dataset = dataset
        self.rank, self.world_size = get_dist_info()
        self.seed = sync_random_seed() if seed is None else seed
        self.shuffle = shuffle
        cats = [dataset.get_cat_ids(i) for i in range(len(dataset))]
        self.factors = torch.tensor(repeat_factors(cats, repeat_thresh), dtype=torch.float32)

    def _infinite(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(self.seed)
        while True:
            idx = epoch_indices(self.factors, g)
            if self.shuffle:
                idx = idx[torch.randperm(len(idx), generator=g)]
            yield from idx.tolist()

    def __iter__(self) -> Iterator[int]:
        return itertools.islice(self._infinite(), self.rank, None, self.world_size)

    def __len__(self) -> int:
        return len(self.dataset)

    def set_epoch(self, epoch: int) -> None:
        """The stream is infinite (iteration-based training); epochs do not reseed it."""
