"""Precompute SAM 2.1 grid-prompt targets of an alignment config's training images.

    python tools/cache_sam_targets.py CONFIG [--out DIR] [--max-images N] [--split train]
                                     [--shard I/N]

Reads ``sam_cache`` (dict(root, grid_hw)) and ``model.sam_teacher`` from the config; writes one
fp16 file per image, atomically; reruns skip existing files (resumable). SAM sees the picture
the student is trained on: the train pipeline's transforms before ``LoadSAMTargets`` (load and
square resize to 448 px), exactly as the aligner's online path (no cache) does, so a cache can
be swapped in without changing the loss.
``--shard I/N`` (or, without it, RANK / WORLD_SIZE when started by torchrun) takes the I-th of
N disjoint parts (by a hash of the image key): N jobs fill one cache without overlap.
"""
import argparse
import copy
import json
import os

import torch
from mmengine.config import Config, DictAction
from mmengine.dataset import Compose
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
    p.add_argument('--shard', type=parse_shard, help='I/N: the I-th of N parts (0-based)')
    p.add_argument('--no-progress', action='store_true')
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='override config keys, e.g. model.sam_teacher.chunk=16')
    args = p.parse_args()
    if args.shard is None:
        world = int(os.environ.get('WORLD_SIZE', 1))
        args.shard = (int(os.environ.get('RANK', 0)), world)
    return args


def parse_shard(text: str):
    try:
        i, n = (int(v) for v in text.split('/'))
    except ValueError:
        raise argparse.ArgumentTypeError(f'--shard wants I/N (e.g. 0/4), got {text!r}')
    if not 0 <= i < n:
        raise argparse.ArgumentTypeError(f'--shard {text}: need 0 <= I < N')
    return i, n


def aligned_input_steps(pipeline, where: str) -> list:
    """The train pipeline's transforms before ``LoadSAMTargets``: they make SAM's input."""
    pipeline = [dict(t) for t in pipeline]
    names = [t['type'] for t in pipeline]
    if 'LoadSAMTargets' not in names:
        raise KeyError(f'{where}: train_dataloader.dataset.pipeline has no LoadSAMTargets')
    steps = pipeline[:names.index('LoadSAMTargets')]
    random = [n for n in names[:len(steps)] if 'Random' in n or 'Flip' in n]
    if random:
        raise ValueError(f'{where}: random transforms {random} come before LoadSAMTargets; the '
                         'cached picture must be the same every epoch (flip after loading)')
    return steps


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
    steps = aligned_input_steps(cfg.train_dataloader.dataset.pipeline, args.config)
    to_input = Compose(copy.deepcopy(steps))
    dataset = DATASETS.build(ds_cfg)
    scfg = dict(cfg.model['sam_teacher'])
    scfg.setdefault('type', 'SAM2Teacher')
    teacher = MODELS.build(scfg).to(args.device)
    cache = SAMTargetCache(root)
    cache.check_meta(dict(sam=scfg, grid_hw=list(grid_hw), input=steps))

    def compute(rgb):
        x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float().to(args.device)
        return teacher(x, grid_hw)[0]

    items = [(d['key'], d) for d in (dataset.get_data_info(i) for i in range(len(dataset)))]
    stats = fill_cache(items, compute, cache, args.max_images, not args.no_progress,
                       load=lambda info: to_input(copy.deepcopy(info))['img'], shard=args.shard)
    print(json.dumps(dict(cache=root, shard='{}/{}'.format(*args.shard), **stats)))


if __name__ == '__main__':
    main()
