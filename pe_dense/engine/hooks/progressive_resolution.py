"""Progressive resolution (PE-Core: 98 -> 154 -> 224 -> 336/448 px by iteration).

The PE tower resamples its position embedding and RoPE to any input grid, so only the input
size changes. Two targets:
- ``'preprocessor'``: sets ``data_preprocessor.size``; the batch is resized on the device, so it
  works with any number of (persistent) dataloader workers;
- ``'pipeline'``: sets ``scale`` of the train pipeline's resize transforms; only with
  ``num_workers=0`` (worker processes hold their own copy of the pipeline).
The size for iteration i is set before batch i is loaded (end of i-1, and at start/resume).
"""
import logging
from typing import Optional, Sequence, Tuple

from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS


@HOOKS.register_module()
class ProgressiveResolutionHook(Hook):
    """Args:
        schedule: ``[(start_iter, size), ...]``; the first start must be 0.
        target: ``'preprocessor'`` or ``'pipeline'``.
        transform_types: class names whose ``scale`` is set in 'pipeline' mode.
    """
    priority = 'NORMAL'

    def __init__(self, schedule: Sequence[Tuple[int, int]], target: str = 'preprocessor',
                 transform_types: Sequence[str] = ('ClipResize',)):
        schedule = sorted((int(i), int(s)) for i, s in schedule)
        if not schedule or schedule[0][0] != 0:
            raise ValueError(f'schedule must start at iteration 0, got {schedule}')
        if any(s <= 0 for _, s in schedule):
            raise ValueError(f'sizes must be positive, got {schedule}')
        if target not in ('preprocessor', 'pipeline'):
            raise ValueError(f"target must be 'preprocessor' or 'pipeline', got {target!r}")
        self.schedule, self.target, self.transform_types = schedule, target, tuple(transform_types)
        self.current: Optional[int] = None

    def size_at(self, it: int) -> int:
        return [s for start, s in self.schedule if start <= it][-1]

    def _transforms(self, runner):
        loader = runner.train_dataloader
        if getattr(loader, 'num_workers', 0) > 0:
            raise RuntimeError('ProgressiveResolutionHook(target="pipeline") needs '
                               'train_dataloader.num_workers=0; use target="preprocessor"')
        pipeline = getattr(loader.dataset, 'pipeline', None)
        found = [t for t in getattr(pipeline, 'transforms', [])
                 if type(t).__name__ in self.transform_types]
        if not found:
            raise RuntimeError(f'no {self.transform_types} transform in the train pipeline')
        return found

    def _apply(self, runner, it: int):
        size = self.size_at(it)
        if size == self.current:
            return
        if self.target == 'pipeline':
            for t in self._transforms(runner):
                t.scale = size
        else:
            model = runner.model.module if is_model_wrapper(runner.model) else runner.model
            model.data_preprocessor.size = size
        print_log(f'ProgressiveResolutionHook: {size}px from iteration {it}', logger='current',
                  level=logging.INFO)
        self.current = size

    def before_train(self, runner) -> None:
        self._apply(runner, runner.iter)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        self._apply(runner, runner.iter + 1)
