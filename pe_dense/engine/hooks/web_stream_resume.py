"""Store a webdataset stream's position in checkpoints and resume there (a shard boundary).

:class:`~pe_dense.datasets.web_stream.WebImageTextStream` deals the epoch's shard order to
consumers (``order[start:][rank::world][worker::workers]``); each consumer reads its shards
front to back, and every sample carries ``shard_pos``, its shard's place in the order. The
batches the model has actually trained on (``after_train_iter``; prefetched ones do not count)
give each consumer's current shard; every shard before the smallest of them is finished by
all consumers, so the checkpoint stores that position (gathered over the ranks, an all-reduce
of a few integers per iteration). On resume the stream restarts its epoch there: nothing is
lost, and the samples already read from the shards at or after it are read again. MMEngine's
``IterBasedTrainLoop`` would skip the trained iterations by pulling batches; the resumed
iterator answers those pulls without reading. The next pass starts from shard 0 again.

Needs ``shard_pos`` in the batch (``PackClipInputs`` keeps it) and an ``IterBasedTrainLoop``.
"""
from typing import List, Optional

import torch
import torch.distributed as dist
from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from mmengine.runner import IterBasedTrainLoop
from mmengine.runner.loops import _InfiniteDataloaderIterator

from .rng_state import SkipFirst


def consumer_of(pos: int, start: int, world: int, workers: int) -> int:
    """Which reader (``rank * workers + worker``) reads shard ``pos`` of a pass from ``start``."""
    j = pos - start
    return (j % world) * workers + (j // world) % workers


def resume_shard(current: List[int], start: int, num_shards: int, world: int,
                 workers: int) -> int:
    """The first shard not finished by every reader: each reader's current shard (``-1``: none
    trained on yet, so its first shard), the smallest over readers that have shards."""
    candidates = []
    for c, pos in enumerate(current):
        rank, worker = divmod(c, workers)
        first = start + worker * world + rank
        if first >= num_shards:
            continue  # this reader has no shard in this pass
        candidates.append(pos if pos >= 0 else first)
    return min(candidates) if candidates else start


def _positions(data_batch) -> List[int]:
    samples = data_batch.get('data_samples') if isinstance(data_batch, dict) else None
    if isinstance(samples, dict):  # default_collate: a dict of lists / tensors
        pos = samples.get('shard_pos')
        return [] if pos is None else [int(p) for p in pos]
    return [int(s['shard_pos']) for s in samples or [] if isinstance(s, dict) and
            'shard_pos' in s]


@HOOKS.register_module()
class WebStreamResumeHook(Hook):
    priority = 'ABOVE_NORMAL'  # before RNGStateHook, which also pulls the skipped batches

    def __init__(self):
        self._pending: Optional[dict] = None
        self._start = 0
        self._current: Optional[torch.Tensor] = None

    def _layout(self, runner):
        loader = runner.train_dataloader
        world = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
        return loader.dataset, world, max(loader.num_workers, 1)

    def before_train(self, runner) -> None:
        stream, world, workers = self._layout(runner)
        if not hasattr(stream, 'shard_order') or not hasattr(stream, 'start_shard'):
            raise TypeError(f'WebStreamResumeHook: the train dataset is a '
                            f'{type(stream).__name__}, not a WebImageTextStream')
        if not isinstance(runner.train_loop, IterBasedTrainLoop):
            raise TypeError('WebStreamResumeHook needs an IterBasedTrainLoop')
        self._start = stream.start_shard
        self._current = torch.full((world * workers, ), -1, dtype=torch.int64)

    def before_train_epoch(self, runner) -> None:
        if self._pending is None:
            return
        stream, _, _ = self._layout(runner)
        saved, self._pending = self._pending, None
        stream.set_epoch(saved['epoch'])
        before, stream.start_shard = stream.start_shard, saved['start_shard']
        loop = runner.train_loop
        resumed = _InfiniteDataloaderIterator(loop.dataloader)  # the pass fixes its shards here
        stream.start_shard = before  # later passes read the whole order
        loop.dataloader_iterator = SkipFirst(resumed, loop._iter)
        self._start = saved['start_shard']
        runner.logger.info(f'web stream resumed at shard {saved["start_shard"]} of epoch '
                           f'{saved["epoch"]}\'s order')

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        stream, world, workers = self._layout(runner)
        rank = dist.get_rank() if world > 1 else 0
        mine = torch.full_like(self._current, -1)
        for pos in _positions(data_batch):
            c = consumer_of(pos, self._start, world, workers)
            if c // workers == rank:
                if pos < self._current[c]:  # a new pass began (from shard 0)
                    self._start = stream.start_shard
                    self._current.fill_(-1)
                    c = consumer_of(pos, self._start, world, workers)
                mine[c] = max(int(mine[c]), pos)
        if world > 1:
            dist.all_reduce(mine, op=dist.ReduceOp.MAX)
        torch.maximum(self._current, mine, out=self._current)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        stream, world, workers = self._layout(runner)
        start = resume_shard(self._current.tolist(), self._start, len(stream.urls), world,
                             workers)
        checkpoint['web_stream'] = dict(epoch=stream.epoch, start_shard=start)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self._pending = checkpoint.get('web_stream')
