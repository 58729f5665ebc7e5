#!/usr/bin/env python
"""Train a model from an MMEngine / MMDetection / MMSegmentation config.

python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp] [--cfg-options k=v ...]
"""
import argparse
import sys

from pe_dense.engine import enable_checkpoint_io
from pe_dense.engine.cpu_distributed import end_distributed
from pe_dense.engine.launch import build_runner, common_args, load_config, setup_train


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Train a pe_dense model')
    p.add_argument('config', help='config file path')
    p.add_argument('--resume', nargs='?', const='auto', default=None,
                   help='resume from CKPT, or from the latest checkpoint in the work dir')
    p.add_argument('--amp', action='store_true', help='mixed precision (AmpOptimWrapper)')
    p.add_argument('--auto-scale-lr', action='store_true', help='scale lr by the batch size')
    return common_args(p).parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    enable_checkpoint_io()  # safe resume on torch >= 2.6, crash-safe checkpoint writes
    cfg = load_config(args.config, args)
    cfg = setup_train(cfg, resume=args.resume, amp=args.amp, auto_scale_lr=args.auto_scale_lr)
    build_runner(cfg, verbose=args.verbose).train()
    end_distributed()
    return 0


if __name__ == '__main__':
    sys.exit(main())
