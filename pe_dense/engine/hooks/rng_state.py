"""Save and restore every RNG a training step draws from, so a resumed run continues the same.

MMEngine restores weights, optimizer, schedulers, the iteration and (by fast-forwarding the
sampler) the data position, but not the RNG states: dropout, drop path and random masking
then diverge after a resume. The states go into the checkpoint as plain tensors, arrays and
ints (loadable with weights_only=True) and are put back before the first resumed batch is
drawn (see :class:`RNGStateHook`).

In distributed runs every rank draws its own numbers, so the checkpoint holds one state per
rank (``rng_state['ranks']``) and each rank restores its own. MMEngine loads resume
checkpoints with ``map_location`` on the GPU, while ``torch.set_rng_state`` takes CPU byte
tensors only: states are moved back before use.
"""
import random
import warnings

import numpy as np
import torch
from mmengine.dist import all_gather_object, get_dist_info
from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from mmengine.runner import IterBasedTrainLoop


def capture_rng_state() -> dict:
    state = dict(torch=torch.get_rng_state(), python=random.getstate(),
                 numpy=np.random.get_state())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def _cpu_bytes(t) -> torch.Tensor:
    """An RNG state tensor from any device (as ``map_location`` left it) as a CPU uint8 one."""
    return torch.tensor(torch.as_tensor(t).detach().cpu().numpy(), dtype=torch.uint8)


def restore_rng_state(state: dict) -> None:
    torch.set_rng_state(_cpu_bytes(state['torch']))
    random.setstate(_as_tuple(state['python']))
    np.random.set_state(state['numpy'])
    if 'cuda' in state and torch.cuda.is_available():
        saved, present = len(state['cuda']), torch.cuda.device_count()
        if saved > present:
            warnings.warn(f'RNG state: the checkpoint holds {saved} CUDA generator states, this '
                          f'process sees {present} devices; restoring the first {present}')
        for i, s in enumerate(state['cuda'][:present]):
            torch.cuda.set_rng_state(_cpu_bytes(s), i)


def state_of_rank(saved: dict, rank: int, world_size: int) -> dict:
    """This rank's state out of a checkpoint's ``rng_state`` (one per rank, or a single one
    from older checkpoints)."""
    if 'ranks' not in saved:
        return saved
    ranks = saved['ranks']
    if len(ranks) != world_size:
        warnings.warn(f'RNG state: the checkpoint was saved by {len(ranks)} ranks, this run has '
                      f'{world_size}; rank {rank} takes state {rank % len(ranks)}')
    return ranks[rank % len(ranks)]


def _as_tuple(x):
    return tuple(_as_tuple(v) for v in x) if isinstance(x, (list, tuple)) else x


class SkipFirst:
    """Iterator whose first ``count`` pulls return None: it answers the loop's own
    fast-forward calls on resume without drawing data again."""

    def __init__(self, iterator, count: int):
        self._iterator, self._count = iterator, count

    def __iter__(self):
        return self

    def __next__(self):
        if self._count > 0:
            self._count -= 1
            return None
        return next(self._iterator)

    def __getattr__(self, name):
        return getattr(self._iterator, name)


@HOOKS.register_module()
class RNGStateHook(Hook):
    """Put ``rng_state`` in every checkpoint; restore it just before the first resumed batch.

    MMEngine's loops fetch a batch before ``before_train_iter``, so with ``num_workers=0`` the
    random transforms of that batch would see the wrong state. The state therefore comes back
    in ``before_train_epoch``: for epoch loops the epoch's data iterator does not exist yet;
    for iteration loops the hook first advances the data iterator past the trained batches
    (what MMEngine would do next, with whatever RNG draws that costs), restores the state, and
    hands the loop an iterator whose skip calls are free.

    MMEngine saves checkpoints on rank 0 only, so in distributed runs every rank's state is
    gathered after each iteration and epoch (a few kB), before the checkpoint hook runs.
    """
    priority = 'LOW'  # before CheckpointHook ('VERY_LOW') in the after_train_* calls

    def __init__(self):
        self._pending = None
        self._gathered = None

    def _gather(self) -> None:
        if get_dist_info()[1] > 1:
            self._gathered = all_gather_object(capture_rng_state())

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        self._gather()

    def after_train_epoch(self, runner) -> None:
        self._gather()

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        ranks = self._gathered if get_dist_info()[1] > 1 and self._gathered else None
        checkpoint['rng_state'] = dict(ranks=ranks or [capture_rng_state()])

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        saved = checkpoint.get('rng_state')
        self._pending = None if saved is None else state_of_rank(saved, *get_dist_info())

    def before_train_epoch(self, runner) -> None:
        if self._pending is None:
            return
        loop = runner.train_loop
        done = getattr(loop, '_iter', 0)
        if isinstance(loop, IterBasedTrainLoop) and done > 0:
            for _ in range(done):
                next(loop.dataloader_iterator)
            loop.dataloader_iterator = SkipFirst(loop.dataloader_iterator, done)
        self._restore()

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        self._gathered = None
        self._restore()  # loops that skip before_train_epoch

    def _restore(self) -> None:
        if self._pending is not None:
            restore_rng_state(self._pending)
            self._pending = None
