"""Quiet console for the command-line tools: progress and results, not set-up dumps.

MMEngine's Runner logs, while it is built, the environment, the whole config and the hook
table (hundreds of lines before the first result). The tools build it with the handlers at
WARNING and raise them to INFO afterwards, so the training/test progress and the metrics still
show; the config is still written to the work dir. ``--verbose`` keeps MMEngine's output.
"""
import argparse
import logging
import warnings

from mmengine.logging import MMLogger


def add_verbose_flag(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument('--verbose', action='store_true',
                        help="show MMEngine's environment, config dump, hook table and "
                             'initialisation log')
    return parser


def filter_third_party_warnings() -> None:
    """Deprecations raised inside pinned dependencies that users cannot act on."""
    # mmengine 0.10.7 (mmengine/optim/optimizer/zero_optimizer.py, mmengine/utils/dl_utils)
    # and mmseg 1.2.2 import torch APIs that torch deprecates; fixed upstream only in
    # releases our mmcv/mmdet pins do not support.
    for module in ('mmengine', 'mmseg', 'mmdet', 'mmcv'):
        warnings.filterwarnings('ignore', category=DeprecationWarning, module=module)
        warnings.filterwarnings('ignore', category=FutureWarning, module=module)
    # torch.cuda.amp deprecations triggered by mmengine 0.10.7's AmpOptimWrapper / autocast
    warnings.filterwarnings('ignore', message=r'.*torch\.cuda\.amp\..*is deprecated',
                            category=FutureWarning)
    # mmseg 1.2.2: BaseDecodeHead builds its losses through mmseg's own deprecated build_loss;
    # CrossEntropyLoss announces its avg_non_ignore default; LoadAnnotations announces the
    # move of reduce_zero_label (our ADE20k pipelines set it there, as mmseg's configs do)
    for message in (r'``build_loss`` would be deprecated', r'Default ``avg_non_ignore``',
                    r'`reduce_zero_label` will be deprecated'):
        warnings.filterwarnings('ignore', message=message, category=UserWarning)
    # mmdet 3.3 models/layers/transformer/deformable_detr_layers.py
    # (get_encoder_reference_points) calls torch.meshgrid without `indexing`
    warnings.filterwarnings('ignore', message=r'torch\.meshgrid: in an upcoming release',
                            category=UserWarning)


def quiet_console(verbose: bool = False) -> None:
    """For tools that build models without a Runner: the current logger at WARNING (MMEngine's
    per-parameter initialisation log goes to the console when no log file is open)."""
    filter_third_party_warnings()
    if verbose:
        return
    logger = MMLogger.get_current_instance()
    for handler in logger.handlers:
        handler.setLevel(logging.WARNING)


def build_quietly(build, cfg, verbose: bool = False):
    """``build(cfg)`` (a Runner) with the set-up logs off, then INFO back on for progress."""
    filter_third_party_warnings()
    if verbose:
        return build(cfg)
    wanted = cfg.get('log_level', 'INFO')
    cfg.log_level = 'WARNING'
    runner = build(cfg)
    cfg.log_level = wanted
    for handler in runner.logger.handlers:
        handler.setLevel(wanted)
    return runner
