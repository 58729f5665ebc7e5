"""Save and restore every RNG a training step draws from, so a resumed run continues the same.

MMEngine restores weights, optimizer, schedulers, the iteration and (by fast-forwarding the
sampler) the data position, but not the RNG states: dropout, drop path and random masking
then diverge after a resume. The states go into the checkpoint as plain tensors, arrays and
ints (loadable with weights_only=True) and are put back just before the first resumed step,
after the data loader has drawn its own seed.
"""
import random

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


def capture_rng_state() -> dict:
    state = dict(torch=torch.get_rng_state(), python=random.getstate(),
                 numpy=np.random.get_state())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict) -> None:
    torch.set_rng_state(state['torch'])
    random.setstate(_as_tuple(state['python']))
    np.random.set_state(state['numpy'])
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'])


def _as_tuple(x):
    return tuple(_as_tuple(v) for v in x) if isinstance(x, (list, tuple)) else x


@HOOKS.register_module()
class RNGStateHook(Hook):
    """Put ``rng_state`` in every checkpoint; restore it at the first step after a resume."""
    priority = 'VERY_LOW'

    def __init__(self):
        self._pending = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint['rng_state'] = capture_rng_state()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self._pending = checkpoint.get('rng_state')

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        if self._pending is not None:
            restore_rng_state(self._pending)
            self._pending = None
