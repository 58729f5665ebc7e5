"""Stop (or skip) a training step whose loss is NaN/Inf, naming the batch that caused it.

A non-finite loss otherwise silently poisons the weights and every later checkpoint. The
hook wraps, on the running instances only, the model's ``parse_losses`` (to see every loss
term) and the optim wrapper's ``update_params`` (the one place MMEngine backpropagates and
steps), so ``action='skip'`` drops the step before ``backward``: no gradient, no optimizer
or scaler state change. Schedulers still advance, as for any iteration.

Under DDP the decision is agreed across ranks (an all-reduce of the finite flag) before any
rank skips: a rank that skipped alone would never join the gradient all-reduce and the others
would wait for it until the timeout.
"""
import math

import torch
import torch.distributed as dist
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS


class NonFiniteLossError(RuntimeError):
    """Raised by :class:`NaNGuardHook` with ``action='raise'``."""


def batch_file_names(data_batch) -> list:
    """``img_path`` (or ``filename``) of each sample's metainfo, where present."""
    samples = data_batch.get('data_samples') if isinstance(data_batch, dict) else None
    names = []
    for s in samples or []:
        meta = s.metainfo if hasattr(s, 'metainfo') else (s if isinstance(s, dict) else {})
        name = meta.get('img_path', meta.get('filename'))
        if name is not None:
            names.append(str(name))
    return names


def _scalar(v):
    if isinstance(v, torch.Tensor):
        return v.detach().float().mean().item() if v.numel() else 0.0
    if isinstance(v, (list, tuple)):
        return sum(_scalar(x) for x in v)
    return float(v)


@HOOKS.register_module()
class NaNGuardHook(Hook):
    """Check every loss term before backward.

    Args:
        action: ``'raise'`` stops the run with the iteration, loss terms and file names;
            ``'skip'`` logs them and skips backward/step for this iteration.
        max_skips: with ``'skip'``, raise after this many skipped steps (``None``: never).
    """
    priority = 'VERY_HIGH'

    def __init__(self, action: str = 'raise', max_skips=None):
        if action not in ('raise', 'skip'):
            raise ValueError(f"NaNGuardHook: action must be 'raise' or 'skip', got {action!r}")
        self.action = action
        self.max_skips = max_skips
        self.skipped = 0
        self._terms = {}
        self._files = []
        self._runner = None

    def before_train(self, runner) -> None:
        self._runner = runner
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        parse = model.parse_losses

        def parse_losses(losses):
            self._terms = {k: _scalar(v) for k, v in losses.items() if 'loss' in k}
            return parse(losses)
        model.parse_losses = parse_losses
        wrapper = runner.optim_wrapper
        update = wrapper.update_params

        def update_params(loss, *args, **kwargs):
            if self._agreed(self._finite(loss), loss.device):
                return update(loss, *args, **kwargs)
            return self._non_finite(loss)
        wrapper.update_params = update_params

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        self._files = batch_file_names(data_batch)
        self._terms = {}

    def _finite(self, loss) -> bool:
        return bool(torch.isfinite(loss.detach()).all()) and all(
            math.isfinite(v) for v in self._terms.values())

    @staticmethod
    def _agreed(finite: bool, device) -> bool:
        """True when the loss is finite on every rank (one all-reduce in distributed runs)."""
        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
            return finite
        flag = torch.tensor([1.0 if finite else 0.0], device=device)
        dist.all_reduce(flag, op=dist.ReduceOp.MIN)
        return bool(flag.item())

    def _non_finite(self, loss):
        it = self._runner.iter if self._runner is not None else -1
        terms = self._terms or {'loss': _scalar(loss)}
        where = ' on another rank (terms here)' if self._finite(loss) else ''
        msg = (f'non-finite loss{where} at iteration {it}: '
               + ', '.join(f'{k}={v}' for k, v in terms.items())
               + f'; batch files: {self._files or "(no img_path in metainfo)"}')
        if self.action == 'raise':
            raise NonFiniteLossError(msg)
        self.skipped += 1
        self._runner.logger.warning(f'NaNGuardHook skipped step ({self.skipped}): {msg}')
        self._runner.optim_wrapper.zero_grad()
        if self.max_skips is not None and self.skipped > self.max_skips:
            raise NonFiniteLossError(f'more than {self.max_skips} skipped steps; last: {msg}')
        return None
