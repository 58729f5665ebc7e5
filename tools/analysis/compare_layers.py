#!/usr/bin/env python
"""Per-layer linear CKA (and token cosine, same widths) between two checkpoints.

Example (PE-Core vs PE-Spatial of the same size):
    python tools/analysis/compare_layers.py --images data/toy_images/val \
        --arch-a PE-Core-T16-384 --checkpoint-a core.pt \
        --arch-b PE-Spatial-T16-512 --checkpoint-b spatial.pt --size 224
A model is a PE arch (--arch-X) or a timm name (--timm-X). Writes compare.json and
compare.png to work_dirs/compare_layers/<A>_vs_<B>/; features go through the feature cache.
"""
import argparse
import glob
import json
import os.path as osp

import torch

from pe_dense.analysis.compare import compare_layers, write_comparison
from pe_dense.analysis.feature_cache import FeatureCache, build_source
from pe_dense.analysis.layer_sweep import sweep_layers


def parse_arch(text):
    return json.loads(text) if text and text.lstrip().startswith('{') else text


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--images', required=True, help='folder of pictures (searched recursively)')
    for s in 'ab':
        p.add_argument(f'--arch-{s}', type=parse_arch, help=f'PE arch of model {s.upper()}')
        p.add_argument(f'--timm-{s}', help=f'timm name of model {s.upper()}')
        p.add_argument(f'--checkpoint-{s}', help=f'weights of model {s.upper()} (else random)')
        p.add_argument(f'--name-{s}', help=f'label of model {s.upper()} in the plot')
    p.add_argument('--size', type=int, default=224)
    p.add_argument('--every', type=int, default=1)
    p.add_argument('--max-images', type=int, default=32)
    p.add_argument('--cache-dir', default='work_dirs/feature_cache')
    p.add_argument('--out')
    p.add_argument('--seed', type=int, default=0, help='seed of random weights (reproducible)')
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--no-progress', action='store_true')
    return p.parse_args(argv)


def list_images(folder: str, limit: int):
    paths = sorted(p for ext in ('jpg', 'jpeg', 'png')
                   for p in glob.glob(osp.join(folder, '**', f'*.{ext}'), recursive=True))
    if not paths:
        raise FileNotFoundError(f'no .jpg/.jpeg/.png pictures under {folder}')
    return paths[:limit] if limit else paths


def main(argv=None):
    args = parse_args(argv)
    paths = list_images(args.images, args.max_images)
    cache = FeatureCache(args.cache_dir, progress=not args.no_progress)
    maps, names = [], []
    for s in 'ab':
        arch, tname = getattr(args, f'arch_{s}'), getattr(args, f'timm_{s}')
        torch.manual_seed(args.seed + (s == 'b'))
        src = build_source(arch, tname, getattr(args, f'checkpoint_{s}'), device=args.device)
        names.append(getattr(args, f'name_{s}') or (src.name if isinstance(arch, str) or tname
                                                      else f'model-{s.upper()}'))
        size = (max(args.size // src.patch_size, 1) * src.patch_size,) * 2
        maps.append(cache.get(src, paths, size, sweep_layers(src.num_layers, args.every)))
    if maps[0][next(iter(maps[0]))].shape[-2:] != maps[1][next(iter(maps[1]))].shape[-2:]:
        raise ValueError('the two models give different token grids at this --size (different '
                         'patch sizes?); pick a size both patches divide into the same grid')
    result = compare_layers(maps[0], maps[1], names)
    result['images'] = len(paths)
    out = args.out or osp.join('work_dirs', 'compare_layers', f'{names[0]}_vs_{names[1]}')
    written = write_comparison(result, out)
    print(f"wrote {written['json']} and {written['plot']}")
    return result


if __name__ == '__main__':
    main()
