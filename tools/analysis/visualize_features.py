#!/usr/bin/env python
"""PCA of one layer's tokens as LCh colour, side by side with the input pictures.

PC1 drives lightness, PC2 chroma, PC3 hue (see pe_dense/analysis/feature_pca.py).
Example:
    python tools/analysis/visualize_features.py skimage:astronaut skimage:chelsea \
        --arch PE-Spatial-T16-512 --layer -1 --size 448 --joint --mask 0.5
Writes work_dirs/visualize_features/<model>/layer<k>_<image or joint>[_mask<T>].png, so a
masked and an unmasked run of the same picture do not overwrite each other.
"""
import argparse
import os
import os.path as osp

import numpy as np
import torch
from PIL import Image

from pe_dense.analysis.feature_cache import build_source
from pe_dense.analysis.feature_demo import load_picture
from pe_dense.analysis.feature_pca import visualize


def parse_arch(text):
    import json
    return json.loads(text) if text and text.lstrip().startswith('{') else text


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('images', nargs='+', help='picture files or skimage:<name>')
    model = p.add_mutually_exclusive_group(required=True)
    model.add_argument('--arch', type=parse_arch, help='PE arch name or JSON settings dict')
    model.add_argument('--timm', help='timm model name')
    p.add_argument('--checkpoint', help='weights file (random weights if absent)')
    p.add_argument('--layer', type=int, default=-1, help='block index (negatives allowed)')
    p.add_argument('--size', type=int, default=448, help='square input size in px')
    p.add_argument('--joint', action='store_true',
                   help='one PCA over all pictures (part correspondences), one PNG')
    p.add_argument('--mask', type=float, metavar='T',
                   help='foreground = scaled PC1 > T; background painted black')
    p.add_argument('--height', type=int, default=256, help='height of each output row')
    p.add_argument('--out', help='output folder (default work_dirs/visualize_features/<model>)')
    p.add_argument('--seed', type=int, default=0, help='seed of random weights (reproducible)')
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    return p.parse_args(argv)


def _stem(spec: str) -> str:
    return spec.split(':', 1)[1] if spec.startswith('skimage:') else osp.splitext(
        osp.basename(spec))[0]


def main(argv=None):
    args = parse_args(argv)
    torch.manual_seed(args.seed)
    source = build_source(args.arch, args.timm, args.checkpoint, device=args.device)
    layer = source.check_layers([args.layer])[0]
    pictures = [load_picture(s) for s in args.images]
    name = source.name if isinstance(source.name, str) else 'model'
    out = args.out or osp.join('work_dirs', 'visualize_features', name)
    os.makedirs(out, exist_ok=True)
    groups = [(pictures, 'joint')] if args.joint else [([p], _stem(s))
                                                      for p, s in zip(pictures, args.images)]
    written = []
    for pics, tag in groups:
        canvas, _ = visualize(source, pics, layer, args.size, args.mask, args.height)
        suffix = '' if args.mask is None else f'_mask{args.mask:g}'
        path = osp.join(out, f'layer{layer}_{tag}{suffix}.png')
        Image.fromarray(np.ascontiguousarray(canvas)).save(path, optimize=True)
        written.append(path)
        print(f'wrote {path}')
    return written


if __name__ == '__main__':
    main()
