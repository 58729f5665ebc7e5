"""Precompute SAM 2.1 grid-prompt targets of an alignment config's training images.

    python tools/cache_sam_targets.py CONFIG [--out DIR] [--max-images N] [--split train]

Reads ``sam_cache`` (dict(root, grid_hw)) and ``model.sam_teacher`` from the config; writes one
fp16 file per image, atomically; reruns skip existing files (resumable).
"""
import argparse
import json

import torch
from mmengine.config import Config, DictAction
from mmengine.registry import DATASETS, MODELS, init_default_scope

import pe_dense.align  # noqa: F401  registers the SAM teacher and the datasets
from pe_dense.datasets import SAMTargetCache, fill_cache


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument('config')
    p.add_argument('--out', help='cache folder (default: cfg.sam_cache.root)')
    p.add_argument('--max-images', type=int, help='stop after writing this many files')
    p.add_argument('--split', default='train', choices=['train', 'val'])
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--no-progress', action='store_true')
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='override config keys, e.g. model.sam_teacher.chunk=16')
    return p.parse_args()


def main():
    args = parse_args()
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmengine'))
    if 'sam_cache' not in cfg or 'sam_teacher' not in cfg.model:
        raise KeyError(f'{args.config}: needs `sam_cache` and `model.sam_teacher`')
    root = args.out or cfg.sam_cache['root']
    grid_hw = tuple(cfg.sam_cache['grid_hw'])
    ds_cfg = dict(cfg[f'{args.split}_dataloader']['dataset'], pipeline=[], lazy_init=False)
    dataset = DATASETS.build(ds_cfg)
    scfg = dict(cfg.model['sam_teacher'])
    scfg.setdefault('type', 'SAM2Teacher')
    teacher = MODELS.build(scfg).to(args.device)
    cache = SAMTargetCache(root)
    cache.check_meta(dict(sam=scfg, grid_hw=list(grid_hw)))

    def compute(rgb):
        x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float().to(args.device)
        return teacher(x, grid_hw)[0]

    items = [(d['key'], d['img_path']) for d in (dataset.get_data_info(i)
                                                  for i in range(len(dataset)))]
    stats = fill_cache(items, compute, cache, args.max_images, not args.no_progress)
    print(json.dumps(dict(cache=root, **stats)))


if __name__ == '__main__':
    main()
