#!/usr/bin/env python
"""The paper in miniature, from nothing: toy data, a tiny PE-Core CLIP, layer sweep, spatial
alignment to its best intermediate block + SA-1B-style masks, sweep again, figure and table.

    python tools/paper_miniature.py [--seeds 0 1 2] [--out work_dirs/paper_miniature] [--quick]

Writes OUT/results.json, OUT/table.md and OUT/comparison.png (docs/paper_miniature.md).
"""
import argparse
import sys

from pe_dense.analysis.miniature import run


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--seeds', type=int, nargs='+', default=[0],
                   help='training seeds (one CLIP + one alignment run each)')
    p.add_argument('--out', default='work_dirs/paper_miniature', help='output folder')
    p.add_argument('--quick', action='store_true',
                   help='less data and fewer steps (the test version, a few minutes)')
    p.add_argument('--threads', type=int, default=1, help='torch CPU threads')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    run(args.out, seeds=args.seeds, quick=args.quick, threads=args.threads)
    return 0


if __name__ == '__main__':
    sys.exit(main())
