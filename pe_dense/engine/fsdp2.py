"""FSDP2 (``torch.distributed.fsdp.fully_shard``) as an MMEngine strategy, on GPUs and on CPU/gloo.

MMEngine 0.10.7's ``FSDPStrategy`` wraps with FSDP1 and needs CUDA. ``FullyShardStrategy`` shards
in place instead: every module whose class is in ``unit_types`` (one PE block each by default)
becomes its own FSDP unit, then the root takes the remaining parameters. The model stays the
model (FQNs unchanged), parameters become ``DTensor`` shards, and the optimizer is built on them.

Checkpoints are MMEngine's ordinary files: the full model and optimizer state are gathered
collectively on every rank (``get_model_state_dict`` / ``get_optimizer_state_dict`` with
``full_state_dict=True, cpu_offload=True``) and rank 0 writes them. The optimizer state is stored
in torch's own layout (integer parameter ids), so a single process without FSDP resumes it; a
sharded run resumes a single-process checkpoint the same way. Without a distributed launcher the
strategy trains the plain model on one device.
"""
import os
from typing import Callable, Dict, Iterable, Optional, Sequence

import torch
import torch.distributed as dist
import torch.nn as nn
from mmengine.device import get_device
from mmengine.dist import is_main_process
from mmengine.optim import OptimWrapper
from mmengine.registry import STRATEGIES
from mmengine._strategy import DDPStrategy

OPTIM_LAYOUT_KEYS = ('state', 'param_groups')


def is_sharded(model: nn.Module) -> bool:
    from torch.distributed.fsdp import FSDPModule
    return isinstance(model, FSDPModule)


def _average_grad(param: torch.Tensor) -> None:
    dist.all_reduce(param.grad)
    param.grad /= dist.get_world_size()


def shard_units(model: nn.Module, unit_types: Sequence[str], mesh=None,
                **fsdp_kwargs) -> int:
    """``fully_shard`` every module of a class named in ``unit_types`` (innermost first), then the
    root; returns the number of units below the root.

    ``fully_shard`` rejects 0-d parameters (CLIP's ``logit_scale``): they stay replicated, are
    broadcast from rank 0, and their gradients are averaged over the ranks as DDP would.
    """
    from torch.distributed.fsdp import fully_shard
    scalars = {p for p in model.parameters() if p.dim() == 0}
    for param in scalars:
        dist.broadcast(param.data, src=0)
        if param.requires_grad:
            param.register_post_accumulate_grad_hook(_average_grad)
    names = set(unit_types)
    units = [m for m in model.modules() if type(m).__name__ in names and m is not model]
    for module in reversed(units):  # modules() is pre-order: children before their parents
        fully_shard(module, mesh=mesh, ignored_params=scalars, **fsdp_kwargs)
    fully_shard(model, mesh=mesh, ignored_params=scalars, **fsdp_kwargs)
    return len(units)


def _param_names(model: nn.Module, optimizer: torch.optim.Optimizer) -> list:
    """The parameters' FQNs in the optimizer's id order (group by group), torch's numbering."""
    name_of = {id(p): n for n, p in model.named_parameters(remove_duplicate=False)}
    return [name_of[id(p)] for group in optimizer.param_groups for p in group['params']]


def fqn_to_ids(state: dict) -> dict:
    """A full optimizer state dict keyed by parameter name -> torch's integer-id layout."""
    index, groups = {}, []
    for group in state['param_groups']:
        ids = []
        for name in group['params']:
            index[name] = len(index)
            ids.append(index[name])
        groups.append(dict(group, params=ids))
    return dict(state=dict((index[n], s) for n, s in state['state'].items()), param_groups=groups)


def ids_to_fqn(state: dict, names: list) -> dict:
    """torch's integer-id optimizer layout -> keyed by parameter name (``names`` from
    :func:`_param_names`)."""
    groups = [dict(g, params=[names[i] for i in g['params']]) for g in state['param_groups']]
    return dict(state={names[i]: s for i, s in state['state'].items()}, param_groups=groups)


def _dtype(value):
    return getattr(torch, value) if isinstance(value, str) else value


@STRATEGIES.register_module()
class FullyShardStrategy(DDPStrategy):
    """Shard parameters, gradients and optimizer states with FSDP2.

    Args:
        unit_types: class names sharded as separate units (default: the PE block).
        reshard_after_forward: free each unit's gathered parameters after its forward
            (ZeRO-3); False keeps them until backward (ZeRO-2, more memory, less traffic).
        mixed_precision: ``MixedPrecisionPolicy`` fields, dtypes as strings
            (e.g. ``dict(param_dtype='bfloat16', reduce_dtype='float32')``); None = fp32.
        **kwargs: :class:`mmengine._strategy.DDPStrategy` arguments (``sync_bn``, ...).
    """

    def __init__(self, *, unit_types: Iterable[str] = ('ResidualAttentionBlock', ),
                 reshard_after_forward: bool = True, mixed_precision: Optional[dict] = None,
                 **kwargs):
        kwargs.pop('model_wrapper', None)  # no wrapper: fully_shard changes the model in place
        super().__init__(**kwargs)
        self.unit_types = tuple(unit_types)
        self.reshard_after_forward = reshard_after_forward
        self.mixed_precision = mixed_precision
        self._gathered: Optional[Dict[str, dict]] = None  # set while rank 0 writes

    def _setup_distributed(self, launcher: str = 'pytorch', backend: str = 'nccl', **kwargs):
        if not torch.cuda.is_available():
            backend = 'gloo'  # tools/ start gloo themselves (cpu_distributed); this is for API use
        super()._setup_distributed(launcher, backend, **kwargs)

    def _wrap_model(self, model: nn.Module) -> nn.Module:
        if not self.distributed:
            self.logger.info('FullyShardStrategy without a distributed launcher: one process, '
                             'no sharding')
            return super(DDPStrategy, self)._wrap_model(model)  # SingleDeviceStrategy's
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import MixedPrecisionPolicy
        device = get_device()
        if device == 'cuda':
            torch.cuda.set_device(int(os.environ.get('LOCAL_RANK', 0)))
        model = self.convert_model(model.to(device))
        mesh = init_device_mesh('cuda' if device == 'cuda' else 'cpu', (dist.get_world_size(), ))
        kwargs = dict(reshard_after_forward=self.reshard_after_forward)
        if self.mixed_precision:
            kwargs['mp_policy'] = MixedPrecisionPolicy(
                **{k: _dtype(v) for k, v in self.mixed_precision.items()})
        units = shard_units(model, self.unit_types, mesh=mesh, **kwargs)
        self.logger.info(f'FSDP2: {units} units of {list(self.unit_types)} + the root, sharded '
                         f'over {dist.get_world_size()} ranks')
        return model

    # --- state dicts: collective under FSDP, written by rank 0 --------------------------------
    def _options(self, **kwargs):
        from torch.distributed.checkpoint.state_dict import StateDictOptions
        return StateDictOptions(full_state_dict=True, **kwargs)

    def model_state_dict(self) -> dict:
        """The full state dict on rank 0 (collective: every rank must call it)."""
        if self._gathered is not None:
            return self._gathered['state_dict']
        if not is_sharded(self.model):
            return super().model_state_dict()
        from torch.distributed.checkpoint.state_dict import get_model_state_dict
        return get_model_state_dict(self.model, options=self._options(cpu_offload=True))

    def optim_state_dict(self) -> dict:
        """The full optimizer state (torch's id layout) on rank 0; collective."""
        if self._gathered is not None:
            return self._gathered['optimizer']
        if not is_sharded(self.model):
            return super().optim_state_dict()
        from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict
        wrapper = self.optim_wrapper
        if type(wrapper) is not OptimWrapper and not hasattr(wrapper, 'loss_scaler'):
            raise TypeError(f'FullyShardStrategy saves OptimWrapper / AmpOptimWrapper, '
                            f'not {type(wrapper).__name__}')
        full = get_optimizer_state_dict(self.model, wrapper.optimizer,
                                        options=self._options(cpu_offload=True))
        if not is_main_process():
            return {}
        extra = {k: v for k, v in wrapper.state_dict().items() if k not in OPTIM_LAYOUT_KEYS}
        return dict(fqn_to_ids(full), **extra)  # AmpOptimWrapper adds its loss_scaler

    def load_model_state_dict(self, state_dict: dict, *, strict: bool = False,
                              revise_keys: list = [(r'^module.', '')]) -> None:
        if not is_sharded(self.model):
            return super().load_model_state_dict(state_dict, strict=strict,
                                                 revise_keys=revise_keys)
        import re
        from torch.distributed.checkpoint.state_dict import set_model_state_dict
        for pattern, repl in revise_keys:
            state_dict = {re.sub(pattern, repl, k): v for k, v in state_dict.items()}
        missing, unexpected = set_model_state_dict(
            self.model, state_dict, options=self._options(strict=strict))
        if missing or unexpected:
            self.logger.warning(f'missing keys: {missing}; unexpected keys: {unexpected}')

    def load_optim_state_dict(self, state_dict: dict) -> None:
        if not is_sharded(self.model):
            return super().load_optim_state_dict(state_dict)
        from torch.distributed.checkpoint.state_dict import set_optimizer_state_dict
        wrapper = self.optim_wrapper
        layout = {k: state_dict[k] for k in OPTIM_LAYOUT_KEYS}
        set_optimizer_state_dict(self.model, wrapper.optimizer,
                                 ids_to_fqn(layout, _param_names(self.model, wrapper.optimizer)),
                                 options=self._options(strict=False))  # as torch's own load:
        # a parameter that never had a gradient (an unused mask token) has no state to restore;
        # torch.distributed.checkpoint then gives it a zero state, which no step reads
        if 'loss_scaler' in state_dict and hasattr(wrapper, 'loss_scaler'):
            wrapper.loss_scaler.load_state_dict(state_dict['loss_scaler'])

    def save_checkpoint(self, filename: str, *, save_optimizer: bool = True,
                        save_param_scheduler: bool = True, extra_ckpt: Optional[dict] = None,
                        callback: Optional[Callable] = None) -> None:
        """Gathers on every rank (collective); rank 0 runs the hooks' callback and writes."""
        if not is_sharded(self.model):
            if is_main_process():
                super().save_checkpoint(filename, save_optimizer=save_optimizer,
                                        save_param_scheduler=save_param_scheduler,
                                        extra_ckpt=extra_ckpt, callback=callback)
            return
        gathered: Dict[str, dict] = dict(state_dict=self.model_state_dict())
        if save_optimizer and hasattr(self, 'optim_wrapper'):
            gathered['optimizer'] = self.optim_state_dict()
        if is_main_process():
            self._gathered = gathered
            try:  # SingleDeviceStrategy assembles meta, schedulers, extras, callback; writes
                super(DDPStrategy, self).save_checkpoint(
                    filename, save_optimizer=save_optimizer,
                    save_param_scheduler=save_param_scheduler, extra_ckpt=extra_ckpt,
                    callback=callback)
            finally:
                self._gathered = None
        dist.barrier()  # no rank reads the file (or exits) before it is written
