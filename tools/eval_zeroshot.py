"""Zero-shot classification and image<->text retrieval of a PE-Core CLIP.

    python tools/eval_zeroshot.py configs/core/pe_core_toy.py --checkpoint PE-Core-B16-224.pt \
        [--data-root data/toy_imagetext --ann-file val.jsonl --classnames classnames.json \
         --templates "a photo of a {}." "a {}" --unique-captions --work-dir work_dirs/eval]

The checkpoint may be an official whole-CLIP file or a pe_dense/MMEngine one (random weights
only with an explicit --random-init). Metrics come from the config's test_evaluator
(ZeroShotAccuracy, ImageTextRetrieval) and are printed as JSON. --unique-captions scores the
first picture of each distinct caption only: recall@K assumes one correct match per caption.
"""
import argparse
import json
import os.path as osp

from mmengine.config import Config, DictAction

import pe_dense.core  # noqa: F401  registers the CLIP model, datasets and metrics
from pe_dense.engine import enable_checkpoint_io
from pe_dense.engine.console import add_verbose_flag
from pe_dense.engine.launch import build_runner
from pe_dense.models.clip.checkpoint import CheckpointError


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('config')
    p.add_argument('--checkpoint', help='official whole-CLIP or pe_dense checkpoint')
    p.add_argument('--random-init', action='store_true',
                   help='score randomly initialised weights (chance-level baseline)')
    p.add_argument('--data-root', help='override the test dataset data_root')
    p.add_argument('--ann-file', help='override the test manifest (relative to data_root)')
    p.add_argument('--classnames', help='JSON list of class names (path)')
    p.add_argument('--templates', nargs='+', help='prompt templates with "{}"')
    p.add_argument('--unique-captions', action='store_true',
                   help='keep the first item of each distinct caption (for retrieval)')
    p.add_argument('--work-dir', help='default: work_dirs/<config name>_eval')
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='override config keys, e.g. test_dataloader.batch_size=16')
    add_verbose_flag(p)
    args = p.parse_args(argv)
    if not args.checkpoint and not args.random_init:
        p.error('give --checkpoint FILE (or --random-init to score random weights on purpose)')
    if args.checkpoint and args.random_init:
        p.error('--checkpoint and --random-init exclude each other')
    return args


def first_of_each_caption(dataset_cfg) -> list:
    """Indices of the first item of every distinct caption, in manifest order."""
    from mmengine.registry import DATASETS
    dataset = DATASETS.build(dict(dataset_cfg, pipeline=[]))
    seen, keep = set(), []
    for i in range(len(dataset)):
        caption = dataset.get_data_info(i)['caption']
        if caption not in seen:
            seen.add(caption)
            keep.append(i)
    return keep


def build_cfg(args) -> Config:
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    ds = cfg.test_dataloader.dataset
    if args.data_root:
        ds.data_root = args.data_root
    if args.ann_file:
        ds.ann_file = args.ann_file
    if args.unique_captions:
        ds.indices = first_of_each_caption(ds)
    if args.classnames or args.templates:
        zs = cfg.model.get('zero_shot') or {}
        if args.classnames:
            zs['classnames'] = args.classnames
        if args.templates:
            zs['templates'] = args.templates
        cfg.model.zero_shot = zs
    if not cfg.model.get('zero_shot'):
        cfg.test_evaluator = [e for e in cfg.test_evaluator if e['type'] != 'ZeroShotAccuracy']
    cfg.model.pop('pretrained', None)
    cfg.model.pop('distill', None)  # a teacher is not needed to evaluate
    name = osp.splitext(osp.basename(args.config))[0]
    cfg.work_dir = args.work_dir or osp.join('work_dirs', f'{name}_eval')
    cfg.train_dataloader = cfg.train_cfg = cfg.optim_wrapper = None
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    cfg.param_scheduler = None
    cfg.custom_hooks = []
    return cfg


def main(argv=None) -> dict:
    args = parse_args(argv)
    enable_checkpoint_io()  # allowlisted loading; --checkpoint may be hf://, hf-hub:, a URL
    runner = build_runner(build_cfg(args), args.verbose)
    if args.checkpoint:
        try:  # official whole-CLIP / exported weights
            runner.model.load_checkpoint(args.checkpoint)
        except CheckpointError:  # an MMEngine training checkpoint (message hub, optimizer...)
            runner.load_checkpoint(args.checkpoint)
    metrics = runner.test()
    print(json.dumps(metrics, indent=2))
    return metrics


if __name__ == '__main__':
    main()
