"""MMEngine's ``compile`` option, applied to the model's forward instead of ``train_step``.

MMEngine's Runner wraps the whole ``train_step`` in ``torch.compile``, so dynamo also traces
the optim wrapper and ``optimizer.step``. On torch 2.14 that recompiles at every iteration
(guards on the wrapper's ``_inner_count`` and on each parameter group's ``lr``, which the
schedulers change) until the recompile limit sends it back to eager, and with MMEngine's
``ConfigDict`` parameter groups (any ``paramwise_cfg``) dynamo stops in the optimizer step
(``InternalTorchDynamoError: 'UserDefinedDictVariable' object has no attribute 'items'``).

``tools/train.py`` therefore moves ``cfg.compile`` into this hook: before training it compiles
``target`` of the unwrapped model -- ``'forward'`` (the loss computation, its backward through
AOT autograd; graph breaks where the model leaves torch, e.g. Hungarian matching in scipy) or
``'backbone'`` (only ``model.backbone.forward``) -- with the remaining keys as
``torch.compile`` arguments. The optimizer step and the wrapper's bookkeeping stay eager.
"""
import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS

TARGETS = ('forward', 'backbone')


@HOOKS.register_module()
class CompileModelHook(Hook):
    priority = 'VERY_HIGH'

    def __init__(self, target: str = 'forward', **compile_kwargs):
        if target not in TARGETS:
            raise ValueError(f'CompileModelHook: target must be one of {TARGETS}, got {target!r}')
        self.target = target
        self.compile_kwargs = compile_kwargs

    def before_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if self.target == 'backbone':
            if not hasattr(model, 'backbone'):
                raise AttributeError(f'CompileModelHook(target=backbone): '
                                     f'{type(model).__name__} has no backbone')
            model = model.backbone
        model.forward = torch.compile(model.forward, **self.compile_kwargs)
        runner.logger.info(f'torch.compile({type(model).__name__}.forward, '
                           f'{self.compile_kwargs}): the first iterations compile')


def move_compile_to_hook(cfg) -> None:
    """``cfg.compile`` (True or a dict of ``torch.compile`` arguments plus ``target``) ->
    a ``CompileModelHook``; MMEngine's own ``train_step`` compilation is switched off."""
    option = cfg.get('compile')
    if not option:
        return
    kwargs = dict(option) if isinstance(option, dict) else {}
    hooks = [h for h in cfg.get('custom_hooks') or [] if h.get('type') != 'CompileModelHook']
    cfg.custom_hooks = [*hooks, dict(type='CompileModelHook', **kwargs)]
    cfg.compile = False
