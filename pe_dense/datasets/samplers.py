"""Batch samplers for contrastive training: per-batch resolution and image/video mixing.

Dataloader workers hold their own copies of the pipeline, and prefetch batches ahead of the
training step, so a resolution changed in the main process would reach them late or never.
:class:`ResolutionBatchSampler` instead attaches the size of batch k to the indices of batch k
(``(index, size)`` pairs); :class:`SizedItemDataset` sets that size on the pipeline's resize
transforms in whichever process loads the sample. Crops are then taken at the stage's
resolution from the source picture, exactly from the scheduled iteration on, with any number
of (persistent) workers.

:class:`ModalityMixBatchSampler` makes each batch of one source of a ``ConcatDataset`` (images
or videos: their tensors cannot be stacked together), the source drawn per batch with fixed
probabilities, the same draw on every rank.
"""
from typing import Callable, Iterator, List, Optional, Sequence, Tuple

import numpy as np
from mmengine.dataset import ConcatDataset
from mmengine.dist import get_dist_info, sync_random_seed
from mmengine.registry import DATA_SAMPLERS
from torch.utils.data import BatchSampler, Dataset, Sampler


def resizable_transforms(dataset) -> list:
    """Transforms with ``set_output_size`` in the pipelines of ``dataset`` (and of the datasets
    it wraps or concatenates)."""
    found = []
    for t in getattr(getattr(dataset, 'pipeline', None), 'transforms', []):
        if hasattr(t, 'set_output_size'):
            found.append(t)
    for inner in getattr(dataset, 'datasets', []) or []:
        found += resizable_transforms(inner)
    if getattr(dataset, 'dataset', None) is not None:
        found += resizable_transforms(dataset.dataset)
    return found


class SizedItemDataset(Dataset):
    """``dataset`` indexed by ``(index, size)``: the size is set on the pipeline's resize
    transforms (in the loading process) before the sample is made. Plain indices pass through.
    Other attributes (``metainfo``...) are the wrapped dataset's."""

    def __init__(self, dataset):
        self.dataset = dataset
        self._transforms = None
        self._size = None

    def __len__(self) -> int:
        return len(self.dataset)

    def __getattr__(self, name):
        if name in ('dataset', '_transforms', '_size'):  # not yet set (unpickling)
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def __getitem__(self, item):
        if isinstance(item, tuple):
            index, size = item
            if size != self._size:
                if self._transforms is None:
                    self._transforms = resizable_transforms(self.dataset)
                for t in self._transforms:
                    t.set_output_size(size)
                self._size = size
            item = index
        return self.dataset[item]


class ResolutionBatchSampler:
    """Batches of ``batch_sampler`` as ``[(index, size_at(k)), ...]`` for the k-th batch.

    ``start`` is the number of the next batch; it keeps counting across passes of a finite
    sampler (epochs). ``sampler``, ``batch_size`` and ``drop_last`` are the wrapped ones (for
    ``DistSamplerSeedHook`` and loops that read them).
    """

    def __init__(self, batch_sampler, size_at: Callable[[int], int], start: int = 0):
        self.batch_sampler, self.size_at, self.next_batch = batch_sampler, size_at, start

    def __getattr__(self, name):
        if name == 'batch_sampler':
            raise AttributeError(name)
        return getattr(self.batch_sampler, name)

    def __iter__(self) -> Iterator[List[Tuple[int, int]]]:
        for batch in self.batch_sampler:
            size = self.size_at(self.next_batch)
            self.next_batch += 1
            yield [(i, size) for i in batch]

    def __len__(self) -> int:
        return len(self.batch_sampler)


@DATA_SAMPLERS.register_module()
class ModalityMixBatchSampler(BatchSampler):
    """Infinite batches, each from one source of a ``ConcatDataset``.

    Source k is drawn for every batch with probability ``ratios[k] / sum(ratios)`` from a
    generator seeded identically on every rank (so all ranks run the same modality, and the
    gathered contrastive batch has one shape). Within a source, indices follow an infinite
    sequence of seeded permutations, split between ranks as MMEngine's ``InfiniteSampler``.

    Args:
        sampler: the dataloader's sampler; only its ``dataset`` (a ``ConcatDataset``) and
            ``seed`` are used.
        batch_size: samples per batch (per rank).
        ratios: one non-negative weight per source, in the ``ConcatDataset`` order.
        seed: overrides the sampler's seed.
    """

    def __init__(self, sampler: Sampler, batch_size: int, ratios: Sequence[float],
                 drop_last: bool = True, seed: Optional[int] = None):
        dataset = getattr(sampler, 'dataset', None)
        if not isinstance(dataset, ConcatDataset):
            raise TypeError('ModalityMixBatchSampler: train_dataloader.dataset must be a '
                            f'ConcatDataset of the sources, got {type(dataset).__name__}')
        ratios = [float(r) for r in ratios]
        if len(ratios) != len(dataset.datasets) or min(ratios) < 0 or sum(ratios) <= 0:
            raise ValueError(f'ModalityMixBatchSampler: ratios {ratios} must be one non-negative '
                             f'weight per source ({len(dataset.datasets)}), not all zero')
        empty = [k for k, d in enumerate(dataset.datasets) if len(d) == 0 and ratios[k] > 0]
        if empty:
            raise ValueError(f'ModalityMixBatchSampler: sources {empty} are empty but have a '
                             'positive ratio')
        self.sampler, self.batch_size, self.drop_last = sampler, batch_size, True
        self.probs = np.asarray(ratios) / sum(ratios)
        self.sizes = [len(d) for d in dataset.datasets]
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)[:-1]]).astype(int)
        if seed is None:
            seed = getattr(sampler, 'seed', None)
        self.seed = sync_random_seed() if seed is None else seed
        self.rank, self.world_size = get_dist_info()

    def _source_indices(self, k: int) -> Iterator[int]:
        rng = np.random.default_rng([self.seed, k])
        pos = 0
        while True:
            for i in rng.permutation(self.sizes[k]):
                if pos % self.world_size == self.rank:
                    yield int(i) + int(self.offsets[k])
                pos += 1

    def __iter__(self) -> Iterator[List[int]]:
        streams = [self._source_indices(k) for k in range(len(self.sizes))]
        choose = np.random.default_rng([self.seed, len(self.sizes), 7])
        while True:
            k = int(choose.choice(len(self.sizes), p=self.probs))
            yield [next(streams[k]) for _ in range(self.batch_size)]

    def __len__(self) -> int:
        return sum(self.sizes) // (self.batch_size * self.world_size)
