#!/usr/bin/env python
"""Evaluate a checkpoint with a config's test set and metrics.

python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--show-dir DIR] [--tta] [--out F.pkl]
"""
import argparse
import numbers
import sys

import pe_dense  # noqa: F401  registers components; safe checkpoint loading
from pe_dense.engine.launch import build_runner, common_args, load_config, setup_test


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Test (and evaluate) a pe_dense model')
    p.add_argument('config', help='config file path')
    p.add_argument('checkpoint', help='checkpoint file')
    p.add_argument('--show-dir', help='write pictures of the predictions here')
    p.add_argument('--tta', action='store_true', help='test-time augmentation (cfg.tta_model)')
    p.add_argument('--out', help='dump raw predictions to a .pkl file')
    return common_args(p).parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    cfg = load_config(args.config, args)
    cfg = setup_test(cfg, args.checkpoint, show_dir=args.show_dir, tta=args.tta)
    runner = build_runner(cfg, verbose=args.verbose)
    if args.out:
        from mmengine.evaluator import DumpResults
        if not args.out.endswith(('.pkl', '.pickle')):
            raise ValueError(f'--out must be a .pkl file, got {args.out}')
        runner.test_evaluator.metrics.append(DumpResults(out_file_path=args.out))
    metrics = runner.test()
    print({k: round(float(v), 4) if isinstance(v, numbers.Real) else v
           for k, v in metrics.items()})  # numpy scalars too
    return 0


if __name__ == '__main__':
    sys.exit(main())
