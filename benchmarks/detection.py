#!/usr/bin/env python
"""Toy DETA speed on this machine: training iterations/s, peak memory, inference time per image.

Builds the model and dataloaders of a detection config (default: the toy DETA demo) without a
Runner, generates the toy COCO set if the config's data_root is missing, times `--iters`
optimiser steps after `--warmup` ones, then `test_step` over `--test-images` images.
Prints a table and writes work_dirs/benchmarks/detection.json. Not a test.

    python benchmarks/detection.py [--config configs/demo/pe_deta_toy.py] [--iters 10]
"""
import argparse
import json
import os
import os.path as osp
import resource
import sys
import time

import torch

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def peak_rss_mb() -> float:
    """Peak resident memory of this process (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def ensure_toy_data(cfg) -> None:
    root = cfg.train_dataloader.dataset.get('data_root', '')
    if root and not osp.isdir(root):
        from pe_dense.toy.coco import make_coco
        print(f'generating the toy COCO set into {root}')
        make_coco(root, progress_bar=False)


def build(cfg, device):
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner
    from mmdet.registry import MODELS
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    model = MODELS.build(cfg.model).to(device)
    model.init_weights()
    optim = build_optim_wrapper(model, cfg.optim_wrapper)
    train_loader = Runner.build_dataloader(dict(cfg.train_dataloader, persistent_workers=False,
                                                num_workers=0))
    test_loader = Runner.build_dataloader(dict(cfg.test_dataloader, persistent_workers=False,
                                               num_workers=0))
    return model, optim, train_loader, test_loader


def cycle(loader):
    while True:
        yield from loader


def sync(model) -> None:
    """Wait for the device: CUDA kernels are asynchronous, a timer alone measures launches."""
    device = next(model.parameters()).device
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def time_training(model, optim, loader, warmup: int, iters: int) -> dict:
    model.train()
    batches = cycle(loader)
    for _ in range(warmup):
        model.train_step(next(batches), optim)
    sync(model)
    images, start = 0, time.perf_counter()
    for _ in range(iters):
        batch = next(batches)
        images += len(batch['inputs'])
        model.train_step(batch, optim)
    sync(model)
    sec = time.perf_counter() - start
    return dict(train_iters_per_s=iters / sec, train_images_per_s=images / sec,
                train_batch_size=images / iters)


@torch.no_grad()
def time_inference(model, loader, num_images: int) -> dict:
    model.eval()
    seen, sec = 0, 0.0
    for batch in cycle(loader):
        sync(model)
        start = time.perf_counter()
        model.test_step(batch)
        sync(model)
        sec += time.perf_counter() - start
        seen += len(batch['inputs'])
        if seen >= num_images:
            break
    return dict(test_sec_per_image=sec / seen, test_images=seen)


def main(argv=None):
    from mmengine.config import Config
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--config', default=osp.join(ROOT, 'configs/demo/pe_deta_toy.py'))
    p.add_argument('--iters', type=int, default=10)
    p.add_argument('--warmup', type=int, default=2)
    p.add_argument('--test-images', type=int, default=8)
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--out', default=osp.join(ROOT, 'work_dirs/benchmarks/detection.json'))
    args = p.parse_args(argv)

    os.chdir(ROOT)  # config data roots are relative to the repository
    torch.manual_seed(0)
    cfg = Config.fromfile(args.config)
    ensure_toy_data(cfg)
    rss0 = peak_rss_mb()
    model, optim, train_loader, test_loader = build(cfg, args.device)
    result = dict(config=osp.relpath(args.config, ROOT), device=args.device,
                  threads=torch.get_num_threads(),
                  params_m=sum(p.numel() for p in model.parameters()) / 1e6)
    result.update(time_training(model, optim, train_loader, args.warmup, args.iters))
    result['train_peak_rss_mb'] = peak_rss_mb()
    result.update(time_inference(model, test_loader, args.test_images))
    result['peak_rss_mb'] = peak_rss_mb()
    result['rss_before_model_mb'] = rss0
    if args.device.startswith('cuda'):
        result['cuda_peak_mb'] = torch.cuda.max_memory_allocated() / 2 ** 20

    os.makedirs(osp.dirname(args.out), exist_ok=True)
    with open(args.out, 'w') as f:
        json.dump(result, f, indent=2)
    width = max(len(k) for k in result)
    for k, v in result.items():
        print(f'{k:<{width}}  {v:.3f}' if isinstance(v, float) else f'{k:<{width}}  {v}')
    print(f'written to {args.out}')
    return result


if __name__ == '__main__':
    sys.exit(main() and 0)
