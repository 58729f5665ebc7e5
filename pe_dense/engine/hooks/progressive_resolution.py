"""Progressive resolution (PE-Core: 98 -> 154 -> 224 -> 336/448 px by iteration).

The PE tower resamples its position embedding and RoPE to any input grid, so only the input
size changes. Two targets:
- ``'pipeline'`` (default, the paper's recipe): each stage trains on crops taken at its
  resolution from the source picture. The train dataloader is rebuilt once, at the start of
  training, around :class:`ResolutionBatchSampler` (the size of batch k travels with its
  indices) and :class:`SizedItemDataset` (sets it on the pipeline's resize transforms in the
  process that loads the sample): exact at the scheduled iteration with any number of
  persistent, prefetching workers, and on resume;
- ``'preprocessor'``: sets ``data_preprocessor.size``, which resizes the training batch on the
  device (a crop made at the pipeline's size, then resampled: not the paper's recipe).
Validation is never resized: it runs at the test pipeline's size.
"""
import copy
import logging
from typing import Optional, Sequence, Tuple

import torch
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS
from mmengine.runner import IterBasedTrainLoop
from torch.utils.data import DataLoader

from ...datasets.samplers import ResolutionBatchSampler, SizedItemDataset, resizable_transforms


def _fresh_batch_sampler(batch_sampler):
    """A copy that starts the index stream anew. MMEngine's ``InfiniteSampler`` keeps one
    generator for its whole life; the loop's first iterator has already prefetched from it
    (and closes it when collected), so the copy gets a new one with the same seed."""
    batch_sampler = copy.copy(batch_sampler)
    sampler = copy.copy(batch_sampler.sampler)
    if hasattr(sampler, '_indices_of_rank'):
        sampler.indices = sampler._indices_of_rank()
    batch_sampler.sampler = sampler
    return batch_sampler


def _sized_loader(loader: DataLoader, size_at, start: int) -> DataLoader:
    """The same dataset, sampling, workers and collate, with per-batch sizes attached."""
    kwargs = dict(num_workers=loader.num_workers, collate_fn=loader.collate_fn,
                  pin_memory=loader.pin_memory, timeout=loader.timeout,
                  worker_init_fn=loader.worker_init_fn, generator=loader.generator,
                  multiprocessing_context=loader.multiprocessing_context)
    if loader.num_workers > 0:
        kwargs.update(prefetch_factor=loader.prefetch_factor,
                      persistent_workers=loader.persistent_workers)
    return DataLoader(SizedItemDataset(loader.dataset),
                      batch_sampler=ResolutionBatchSampler(_fresh_batch_sampler(loader.batch_sampler),
                                                         size_at, start),
                      **kwargs)


@HOOKS.register_module()
class ProgressiveResolutionHook(Hook):
    """Args:
        schedule: ``[(start_iter, size), ...]``; the first start must be 0.
        target: ``'pipeline'`` (crops at each stage's size) or ``'preprocessor'``.
    """
    priority = 'NORMAL'

    def __init__(self, schedule: Sequence[Tuple[int, int]], target: str = 'pipeline'):
        schedule = sorted((int(i), int(s)) for i, s in schedule)
        if not schedule or schedule[0][0] != 0:
            raise ValueError(f'schedule must start at iteration 0, got {schedule}')
        if any(s <= 0 for _, s in schedule):
            raise ValueError(f'sizes must be positive, got {schedule}')
        if target not in ('preprocessor', 'pipeline'):
            raise ValueError(f"target must be 'preprocessor' or 'pipeline', got {target!r}")
        self.schedule, self.target = schedule, target
        self.current: Optional[int] = None

    def size_at(self, it: int) -> int:
        return [s for start, s in self.schedule if start <= it][-1]

    def _wrap_loader(self, runner) -> None:
        loop = runner.train_loop
        loader = loop.dataloader
        if isinstance(loader.batch_sampler, ResolutionBatchSampler):
            return
        if not resizable_transforms(loader.dataset):
            raise RuntimeError('ProgressiveResolutionHook(target="pipeline"): the train pipeline '
                               'has no resize transform with set_output_size (e.g. '
                               'ClipRandomResizedCrop, ClipResize)')
        # an iteration loop replays the trained batches on resume (batch 0 is the first);
        # epoch loops restart the current epoch
        start = 0 if isinstance(loop, IterBasedTrainLoop) else runner.epoch * len(loader)
        loop.dataloader = _sized_loader(loader, self.size_at, start)
        if hasattr(loop, 'dataloader_iterator'):  # built with the old loader: restart it
            with torch.random.fork_rng(devices=[]):  # a new iterator draws a worker seed
                loop.dataloader_iterator = type(loop.dataloader_iterator)(loop.dataloader)

    def _apply(self, runner, it: int):
        size = self.size_at(it)
        if size == self.current:
            return
        if self.target == 'preprocessor':
            model = runner.model.module if is_model_wrapper(runner.model) else runner.model
            model.data_preprocessor.size = size
        print_log(f'ProgressiveResolutionHook: {size}px from iteration {it}', logger='current',
                  level=logging.INFO)
        self.current = size

    def before_train(self, runner) -> None:
        if self.target == 'pipeline':
            self._wrap_loader(runner)
        self._apply(runner, runner.iter)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        self._apply(runner, runner.iter + 1)
