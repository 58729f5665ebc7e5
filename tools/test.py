#!/usr/bin/env python
"""Evaluate a checkpoint with a config's test set and metrics.

python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--show-dir DIR] [--show [--wait-time S]]
    [--tta] [--out OUT]

--out follows the task's convention: detection (mmdet) a .pkl of the predictions, segmentation
and depth (mmseg) a folder of PNGs, other configs a .pkl of the model outputs.
"""
import argparse
import numbers
import sys

from pe_dense.engine import enable_checkpoint_io
from pe_dense.engine.cpu_distributed import end_distributed
from pe_dense.engine.launch import build_runner, common_args, load_config, setup_test


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Test (and evaluate) a pe_dense model')
    p.add_argument('config', help='config file path')
    p.add_argument('checkpoint', help='checkpoint file, or a name: hf://ORG/REPO:FILE, '
                                      'hf-hub:ORG/REPO, an http(s) URL')
    p.add_argument('--show-dir', help='write pictures of the predictions here')
    p.add_argument('--tta', action='store_true', help='test-time augmentation (cfg.tta_model)')
    p.add_argument('--show', action='store_true', help='show the predictions in a window')
    p.add_argument('--wait-time', type=float, default=2, help='seconds each picture is shown')
    p.add_argument('--out', help='predictions: a .pkl (detection, others) or a folder of PNGs '
                   '(segmentation / depth)')
    return common_args(p).parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    enable_checkpoint_io()  # MMEngine checkpoints load with weights_only=True + allowlist
    cfg = load_config(args.config, args)
    cfg = setup_test(cfg, args.checkpoint, show_dir=args.show_dir, tta=args.tta,
                     show=args.show, wait_time=args.wait_time, out=args.out)
    runner = build_runner(cfg, verbose=args.verbose)
    metrics = runner.test()
    print({k: round(float(v), 4) if isinstance(v, numbers.Real) else v
           for k, v in metrics.items()})  # numpy scalars too
    end_distributed()
    return 0


if __name__ == '__main__':
    sys.exit(main())
