"""Start a training stage from a previous stage's weights minus some modules (``--finetune``).

The official DETA_pe ``main.py --finetune CKPT`` deletes every ``class_embed`` key from the
checkpoint unless ``--keep_class_embed`` is given, so the class heads start freshly initialised
when a stage starts (stages 2 and 3 of the released recipe) and are kept at stage 4. MMEngine's
``load_from`` loads whatever matches; this hook drops the matching keys first. It acts only when
a training run starts from ``load_from``: not when resuming (the run's own heads are wanted)
and not at test time.
"""
import re
from typing import Sequence

from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.registry import HOOKS
from mmengine.runner import BaseLoop


@HOOKS.register_module()
class DropLoadedKeysHook(Hook):
    """Remove ``state_dict`` keys matching any of ``patterns`` (regular expressions, searched)
    from the ``load_from`` checkpoint of a training run, so those modules keep their init."""

    priority = 'VERY_HIGH'

    def __init__(self, patterns: Sequence[str]):
        if isinstance(patterns, str) or not patterns:
            raise ValueError('DropLoadedKeysHook: patterns must be a non-empty list of regular '
                             f'expressions, got {patterns!r}')
        self.patterns = [re.compile(p) for p in patterns]

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        training = isinstance(getattr(runner, '_train_loop', None), BaseLoop)
        if not training or getattr(runner, '_resume', False):
            return
        state = checkpoint.get('state_dict', checkpoint)
        dropped = [k for k in list(state) if any(p.search(k) for p in self.patterns)]
        for k in dropped:
            del state[k]
        print_log(f'DropLoadedKeysHook: {len(dropped)} keys of the loaded checkpoint left at '
                  f'their initialisation ({", ".join(p.pattern for p in self.patterns)})',
                  logger='current')
