"""What tools/train.py and tools/test.py do, for MMDetection, MMSegmentation and plain configs.

The config's ``default_scope`` decides the library: its visualisation hook, its TTA defaults
and its RUNNERS registry. Everything else is MMEngine's Runner.
"""
import argparse
import os
import os.path as osp
from copy import deepcopy

import torch
from mmengine.config import Config, ConfigDict, DictAction
from mmengine.logging import print_log
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from .atomic_io import find_resumable_checkpoint
from .console import add_verbose_flag, build_quietly
from .cpu_distributed import start_cpu_distributed

VIS_HOOKS = {'mmdet': 'DetVisualizationHook', 'mmseg': 'SegVisualizationHook'}


def common_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument('--work-dir', help='where logs, configs, checkpoints and events go')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config keys, e.g. train_cfg.max_iters=100')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher (torchrun sets pytorch)')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    return add_verbose_flag(parser)


def load_config(path: str, args) -> Config:
    """Config with CLI overrides; work_dir defaults to work_dirs/<config name>."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'Config file not found: {path}')
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    cfg = Config.fromfile(path)
    cfg.launcher = args.launcher
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('work_dirs', osp.splitext(osp.basename(path))[0])
    return cfg


def set_tf32(cfg: Config) -> bool:
    """TF32 for fp32 matmuls and convolutions on Ampere and later GPUs (``env_cfg.allow_tf32``,
    default True): torch leaves fp32 GEMMs in full fp32, several times slower on A100/H100 for
    the fp32 stages, fine-tuning and inference. ``env_cfg.allow_tf32=False`` keeps exact fp32.
    """
    allow = bool(cfg.get('env_cfg', {}).get('allow_tf32', True))
    torch.backends.cuda.matmul.allow_tf32 = allow
    torch.backends.cudnn.allow_tf32 = allow
    return allow


def pin_memory_on_cuda(cfg: Config) -> None:
    """``pin_memory=True`` for every dataloader that does not set it, when CUDA is present:
    page-locked batches copy to the GPU asynchronously."""
    if not torch.cuda.is_available():
        return
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        if isinstance(cfg.get(key), dict):
            cfg[key].setdefault('pin_memory', True)


def build_runner(cfg: Config, verbose: bool = True) -> Runner:
    """The library's registered runner when the config names one, else MMEngine's (TF32 set
    first, see :func:`set_tf32`; pinned memory on CUDA, see :func:`pin_memory_on_cuda`);
    without ``verbose`` its set-up dump (environment, config, hook table) stays off the console."""
    from pe_dense.models.backbones.hub import register_checkpoint_schemes
    register_checkpoint_schemes()  # load_from / Pretrained init_cfg may name hf://, timm/, URLs
    set_tf32(cfg)
    pin_memory_on_cuda(cfg)
    start_cpu_distributed(cfg)
    build = RUNNERS.build if 'runner_type' in cfg else Runner.from_cfg
    return build_quietly(build, cfg, verbose)


def setup_train(cfg: Config, resume=None, amp: bool = False, auto_scale_lr: bool = False) -> Config:
    """Apply --resume / --amp / --auto-scale-lr the way MMDetection's tools do; ``cfg.compile``
    compiles the model's forward, not MMEngine's whole ``train_step`` (see
    ``pe_dense/engine/hooks/compile_model.py``)."""
    from .hooks.compile_model import move_compile_to_hook
    move_compile_to_hook(cfg)
    if amp:
        wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
        if wrapper == 'AmpOptimWrapper':
            print_log('AMP is already on in the config', logger='current')
        else:
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if resume == 'auto':
        # MMEngine would trust work_dir/last_checkpoint; pick the newest complete file instead.
        cfg.resume, cfg.load_from = True, find_resumable_checkpoint(cfg.work_dir)
        print_log(f'Resuming from {cfg.load_from or "scratch (no complete checkpoint)"}',
                  logger='current')
    elif resume is not None:
        cfg.resume, cfg.load_from = True, resume
    if auto_scale_lr:
        if 'auto_scale_lr' not in cfg or 'base_batch_size' not in cfg.auto_scale_lr:
            raise KeyError('--auto-scale-lr needs auto_scale_lr.base_batch_size in the config')
        cfg.auto_scale_lr.enable = True
    return cfg


def setup_test(cfg: Config, checkpoint: str, show_dir=None, tta: bool = False,
               show: bool = False, wait_time: float = 2, out=None) -> Config:
    """--show-dir / --show / --wait-time / --tta / --out, as mmdet's and mmseg's tools/test.py."""
    from pe_dense.models.backbones.hub import is_checkpoint_name
    if not osp.isfile(checkpoint) and not is_checkpoint_name(checkpoint):
        raise FileNotFoundError(f'Checkpoint file not found: {checkpoint}')
    cfg.load_from = checkpoint
    if show_dir or show:
        enable_visualization(cfg, show_dir, show=show, wait_time=wait_time)
    if tta:
        wrap_tta(cfg)
    if out:
        dump_predictions(cfg, out)
    return cfg


def dump_predictions(cfg: Config, out: str) -> None:
    """--out in the task's convention: for mmdet a ``.pkl`` of the predictions (mmdet's
    DumpDetResults, masks as RLE); for mmseg a folder of PNGs written by the config's IoUMetric
    / DepthMetric (depth in the units of the ground-truth PNGs); otherwise a ``.pkl`` of the
    model outputs (MMEngine's DumpResults)."""
    scope = cfg.get('default_scope', 'mmengine')
    if scope != 'mmseg':
        if not out.endswith(('.pkl', '.pickle')):
            raise ValueError(f'--out must be a .pkl file for {scope} configs, got {out}')
        dump = ConfigDict(type='DumpDetResults' if scope == 'mmdet' else 'DumpResults',
                          out_file_path=out)
        metrics = cfg.test_evaluator
        cfg.test_evaluator = [*metrics, dump] if isinstance(metrics, list) else [metrics, dump]
        return
    if out.endswith(('.pkl', '.pickle')):
        raise ValueError(f'--out for mmseg configs is a folder of PNGs, got {out}')
    metrics = cfg.test_evaluator if isinstance(cfg.test_evaluator, list) else [cfg.test_evaluator]
    writers = [m for m in metrics if m.get('type') in ('IoUMetric', 'DepthMetric')]
    if not writers:
        raise KeyError(f'--out: the test_evaluator has no IoUMetric / DepthMetric to write '
                       f'predictions (it has {[m.get("type") for m in metrics]})')
    for metric in writers:
        metric.output_dir = out
        metric.keep_results = True  # as mmseg's tools/test.py
        if metric.type == 'DepthMetric' and 'depth_scale_factor' not in metric:
            metric.depth_scale_factor = 1 / _depth_rescale_factor(cfg)


def _depth_rescale_factor(cfg: Config) -> float:
    """The test pipeline's LoadDepthAnnotation factor (PNG units -> metres); 1 if none."""
    dataset = cfg.test_dataloader.dataset
    while 'dataset' in dataset:
        dataset = dataset.dataset
    for t in dataset.get('pipeline', []):
        if t.get('type') == 'LoadDepthAnnotation':
            return t.get('depth_rescale_factor', 1.0)
    return 1.0


def enable_visualization(cfg: Config, show_dir=None, show: bool = False,
                         wait_time: float = 2) -> None:
    """Turn on the library's visualisation hook: pictures to ``show_dir`` and/or, with
    ``show``, in a window for ``wait_time`` seconds each."""
    scope = cfg.get('default_scope', 'mmengine')
    hooks = cfg.setdefault('default_hooks', ConfigDict())
    hook = hooks.get('visualization')
    if hook is None:
        if scope not in VIS_HOOKS:
            raise KeyError(f'--show-dir / --show: the config has no default_hooks.visualization and '
                           f'scope {scope!r} has no known visualisation hook')
        hook = hooks['visualization'] = ConfigDict(type=VIS_HOOKS[scope])
    hook.draw = True
    hook.interval = 1
    if show:
        hook.show = True
        hook.wait_time = wait_time
    if not show_dir:
        return
    if scope == 'mmseg':  # SegVisualizationHook has no test_out_dir: it draws into save_dir
        cfg.setdefault('visualizer', ConfigDict(type='SegLocalVisualizer'))
        cfg.visualizer.save_dir = osp.abspath(show_dir)
    else:
        hook.test_out_dir = osp.abspath(show_dir)


def wrap_tta(cfg: Config) -> None:
    """Wrap the model in ``cfg.tta_model`` and use ``cfg.tta_pipeline`` for the test set."""
    missing = [k for k in ('tta_model', 'tta_pipeline') if k not in cfg]
    if missing:
        raise KeyError(f'--tta needs {missing} in the config (see configs/pe_spatial_deta_coco.py)')
    cfg.model = ConfigDict(**deepcopy(cfg.tta_model), module=cfg.model)
    dataset = cfg.test_dataloader.dataset
    while 'dataset' in dataset:
        dataset = dataset.dataset
    dataset.pipeline = cfg.tta_pipeline
