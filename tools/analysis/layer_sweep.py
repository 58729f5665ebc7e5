#!/usr/bin/env python
"""Score every layer of a frozen PE (or timm ViT) on tracking, segmentation, depth and k-NN.

Example (toy data from tools/make_toy_data.py, random weights):
    python tools/analysis/layer_sweep.py --arch PE-Core-T16-384 --size 224 \
        --segmentation data/toy_ade20k --depth data/toy_nyu --tracking data/toy_davis \
        --classification data/toy_imagetext
Writes work_dirs/layer_sweep/<model>/sweep.json and sweep.png; features are cached in
work_dirs/feature_cache and reused by later runs.
"""
import argparse
import json
import os.path as osp
import sys

import torch

from pe_dense.analysis.feature_cache import FeatureCache, build_source
from pe_dense.analysis.layer_sweep import run_sweep, sweep_layers, write_report
from pe_dense.analysis.tasks import TASKS, build_task


def parse_arch(text):
    """A released name, or a JSON dict of arch settings (for small test models)."""
    return json.loads(text) if text and text.lstrip().startswith('{') else text


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    model = p.add_mutually_exclusive_group(required=True)
    model.add_argument('--arch', type=parse_arch, help='PE arch name or JSON settings dict')
    model.add_argument('--timm', help='timm model name (e.g. vit_base_patch16_224)')
    p.add_argument('--checkpoint', help='weights file (random weights if absent)')
    p.add_argument('--img-size', type=int, help="model's native size override")
    for kind in TASKS:
        p.add_argument(f'--{kind}', metavar='DIR', help=f'{kind} dataset root')
    p.add_argument('--size', type=int, default=224, help='input size (short side for tracking)')
    p.add_argument('--every', type=int, default=1, help='score every k-th layer (+ the last)')
    p.add_argument('--layers', type=int, nargs='+', help='explicit layers (overrides --every)')
    p.add_argument('--max-images', type=int, default=0, help='cap per split (0: all)')
    p.add_argument('--num-classes', type=int, default=150, help='segmentation classes')
    p.add_argument('--cache-dir', default='work_dirs/feature_cache')
    p.add_argument('--out', help='output folder (default work_dirs/layer_sweep/<model>)')
    p.add_argument('--batch-size', type=int, default=8)
    p.add_argument('--seed', type=int, default=0, help='seed of random weights (reproducible)')
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--no-progress', action='store_true')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    roots = {k: getattr(args, k) for k in TASKS if getattr(args, k)}
    if not roots:
        sys.exit('give at least one dataset: ' + ', '.join(f'--{k}' for k in TASKS))
    torch.manual_seed(args.seed)
    source = build_source(args.arch, args.timm, args.checkpoint, args.img_size, args.device)
    tasks = []
    for kind, root in roots.items():
        kw = dict(num_classes=args.num_classes) if kind == 'segmentation' else {}
        tasks.append(build_task(kind, root, size=args.size, max_images=args.max_images, **kw))
    cache = FeatureCache(args.cache_dir, args.batch_size, progress=not args.no_progress)
    layers = sweep_layers(source.num_layers, args.every, args.layers)
    report = run_sweep(source, tasks, cache, layers, progress=not args.no_progress)
    report['weights'] = args.checkpoint or 'random'
    name = source.name if isinstance(args.arch, str) or args.timm else 'PE-custom'
    out = args.out or osp.join('work_dirs', 'layer_sweep', name)
    paths = write_report(report, out)
    for task, t in report['tasks'].items():
        print(f"{task:>15}: best layer {t['best_layer']:>3} ({t['metric']} "
              f"{t['scores'][str(t['best_layer'])]:.3f})")
    print(f"cache: {report['cache']['hits']} hits, {report['cache']['misses']} misses")
    print(f"wrote {paths['json']} and {paths['plot']}")
    return report


if __name__ == '__main__':
    main()
