"""Zero-shot classification and image<->text retrieval of a PE-Core CLIP.

    python tools/eval_zeroshot.py configs/core/pe_core_toy.py --checkpoint PE-Core-B16-224.pt \
        [--data-root data/toy_imagetext --ann-file val.jsonl --classnames classnames.json \
         --templates "a photo of a {}." "a {}" --work-dir work_dirs/eval]

The checkpoint may be an official whole-CLIP file or a pe_dense/MMEngine one. Metrics come from
the config's test_evaluator (ZeroShotAccuracy, ImageTextRetrieval) and are printed as JSON.
"""
import argparse
import json
import os.path as osp

import pe_dense  # noqa: F401  registers the components (installed by `make`)

from mmengine.config import Config

from pe_dense.engine.launch import build_runner
from pe_dense.models.clip.checkpoint import CheckpointError


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('config')
    p.add_argument('--checkpoint', help='official whole-CLIP or pe_dense checkpoint')
    p.add_argument('--data-root', help='override the test dataset data_root')
    p.add_argument('--ann-file', help='override the test manifest (relative to data_root)')
    p.add_argument('--classnames', help='JSON list of class names (path)')
    p.add_argument('--templates', nargs='+', help='prompt templates with "{}"')
    p.add_argument('--work-dir', help='default: work_dirs/<config name>_eval')
    return p.parse_args(argv)


def build_cfg(args) -> Config:
    cfg = Config.fromfile(args.config)
    ds = cfg.test_dataloader.dataset
    if args.data_root:
        ds.data_root = args.data_root
    if args.ann_file:
        ds.ann_file = args.ann_file
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
    runner = build_runner(build_cfg(args))
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
