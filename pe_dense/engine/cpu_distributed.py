"""torchrun on hosts without a GPU: gloo, and DDP without device ids.

MMEngine's ``pytorch`` launcher calls ``torch.cuda.set_device`` and its default DDP wrapper
passes ``device_ids=[LOCAL_RANK]``; both fail on a CPU-only host. The same config must run on a
laptop under torchrun and on GPU nodes, so on CPU the process group is started here with gloo
(MMEngine then sees it running and skips its own start) and the DDP wrapper drops device ids.
"""
import logging
import os
import sys
from datetime import timedelta

import torch
import torch.distributed as dist
from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.model import MMDistributedDataParallel
from mmengine.registry import MODEL_WRAPPERS


@MODEL_WRAPPERS.register_module()
class DeviceAgnosticDDP(MMDistributedDataParallel):
    """MMEngine's DDP wrapper that accepts a CPU module (where ``device_ids`` must be None)."""

    def __init__(self, module, device_ids=None, **kwargs):
        on_cpu = all(p.device.type == 'cpu' for p in module.parameters())
        super().__init__(module=module, device_ids=None if on_cpu else device_ids, **kwargs)


def start_cpu_distributed(cfg: Config) -> bool:
    """Start gloo for a torchrun launch without CUDA; True when this function started it."""
    if cfg.get('launcher', 'none') != 'pytorch' or torch.cuda.is_available():
        return False
    if not dist.is_initialized():
        dist_cfg = cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})
        asked = dist_cfg.get('backend', 'nccl')
        dist_cfg['backend'] = 'gloo'
        # MMEngine's convention: dist_cfg.timeout in seconds; a stuck peer fails, not hangs
        seconds = dist_cfg.get('timeout', 1800)
        dist.init_process_group('gloo', timeout=timedelta(seconds=seconds))
        if asked != 'gloo':
            print_log(f'No CUDA device: torch.distributed runs on gloo (config asked {asked})',
                      logger='current')
    if cfg.get('strategy') is not None:  # FlexibleRunner: the strategy wraps the model
        return True
    wrapper = cfg.get('model_wrapper_cfg') or dict(type='MMDistributedDataParallel')
    if wrapper.get('type', 'MMDistributedDataParallel') == 'MMDistributedDataParallel':
        wrapper = dict(wrapper, type='DeviceAgnosticDDP')
        wrapper.setdefault('broadcast_buffers', False)  # MMEngine's own default wrapper
        wrapper.setdefault('find_unused_parameters', cfg.get('find_unused_parameters', False))
        cfg.model_wrapper_cfg = wrapper
    return True


def end_distributed() -> None:
    """Leave the process group once every rank is done, then end the process at once.

    gloo can abort a process in interpreter teardown after a successful run ("terminate called
    without an active exception": its threads still hold work of the last collectives), which
    torchrun reports as a failed job. So a distributed process leaves the group after a barrier,
    flushes its logs and streams, and exits without the teardown; by then the runner has
    written its checkpoints and closed its visualisation backends. Nothing happens without a
    process group.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return
    dist.barrier()
    dist.destroy_process_group()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
