#!/usr/bin/env python
"""Print the shapes of PE features of chosen layers for a real picture.

Example: python tools/demo_features.py skimage:astronaut --arch PE-Spatial-T16-512 --layers 3 -1
"""
import argparse
import sys
import time

import torch

from pe_dense.analysis.feature_demo import layer_features, load_picture, summary_rows, to_input
from pe_dense.models.backbones import PE


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('image', help='picture file, or skimage:<name> (e.g. skimage:astronaut)')
    p.add_argument('--arch', default='PE-Spatial-T16-512', help='released PE name')
    p.add_argument('--checkpoint', help='official .pt / timm / safetensors weights, or a name '
                   '(hf://ORG/REPO:FILE, hf-hub:ORG/REPO, timm/TAG, URL); random if absent')
    p.add_argument('--layers', type=int, nargs='+', default=[-1], help='block indices, negatives ok')
    p.add_argument('--size', type=int, help='input size in px (default: the arch native size)')
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    model = PE(args.arch, out_indices=args.layers)
    if args.checkpoint:
        model.load_pretrained(args.checkpoint)
    model = model.eval().to(args.device)
    img = load_picture(args.image)
    size = args.size or model.arch_settings['img_size']
    start = time.perf_counter()
    feats = layer_features(model, to_input(img, size).to(args.device), args.layers)
    elapsed = time.perf_counter() - start
    weights = args.checkpoint or 'random weights (no --checkpoint)'
    print(f'{args.arch} on {args.image} ({img.shape[1]}x{img.shape[0]} -> {size}x{size}), {weights}')
    print('\n'.join(summary_rows(feats)))
    print(f'forward: {elapsed * 1000:.0f} ms on {args.device}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
