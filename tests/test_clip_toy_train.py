"""Acceptance: the toy PE-Core CLIP (configs/core/pe_core_toy.py) trained from scratch on CPU
lifts held-out zero-shot accuracy from chance to >= 0.8 and text->image R@1 to >= 0.6, seeded.
No time limit here: timings belong to benchmarks/.

The data are made with the options the config records (``toy_data``). Zero-shot top-1 is
measured on every val picture (chance 1 / number of classes); retrieval on the first val picture
of each distinct caption, because recall@K assumes one correct match per caption.
"""
import json
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from pe_dense.toy.imagetext import make_imagetext

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG = osp.join(ROOT, 'configs', 'core', 'pe_core_toy.py')


def _distinct_captions(root: str) -> int:
    """Write val_unique.jsonl: the first val picture of each caption; returns how many."""
    seen, rows = set(), []
    with open(osp.join(root, 'val.jsonl')) as f:
        for line in f:
            caption = json.loads(line)['caption']
            if caption not in seen:
                seen.add(caption)
                rows.append(line)
    with open(osp.join(root, 'val_unique.jsonl'), 'w') as f:
        f.writelines(rows)
    return len(rows)


def _cfg(root: str, work_dir: str) -> Config:
    cfg = Config.fromfile(CONFIG)
    cfg.work_dir = work_dir
    for dl in (cfg.train_dataloader, cfg.val_dataloader, cfg.test_dataloader):
        dl.dataset.data_root = root
    cfg.val_dataloader.dataset.ann_file = 'val.jsonl'  # zero-shot: every held-out picture
    cfg.val_evaluator = [dict(type='ZeroShotAccuracy', topk=(1,))]
    cfg.test_dataloader.dataset.ann_file = 'val_unique.jsonl'  # retrieval: distinct captions
    cfg.test_evaluator = [dict(type='ImageTextRetrieval', ks=(1, 5))]
    cfg.model.zero_shot.classnames = osp.join(root, 'classnames.json')
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=-1)  # nothing to keep
    return cfg


@pytest.mark.slow
def test_toy_clip_lifts_zero_shot_and_retrieval_from_chance(tmp_path):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matmuls: extra threads only contend
    try:
        root = str(tmp_path / 'toy_imagetext')
        cfg = _cfg(root, str(tmp_path / 'work'))
        make_imagetext(root, progress_bar=False, **cfg.toy_data)
        num_classes = len(json.load(open(osp.join(root, 'classnames.json'))))
        num_retrieval = _distinct_captions(root)
        assert num_retrieval >= 10, num_retrieval  # R@1 over fewer items would be too easy

        runner = Runner.from_cfg(cfg)
        before = dict(runner.val(), **runner.test())
        runner.train()
        after = dict(runner.val(), **runner.test())
    finally:
        torch.set_num_threads(threads)
    print(f'toy CLIP: {num_classes} classes, {num_retrieval} retrieval items; before {before}; '
          f'after {after}')

    chance = 100 / num_classes
    assert before['zero_shot/top1'] < 2.5 * chance, before  # an untrained model is at chance
    assert before['retrieval/t2i_R@1'] < 30, before  # ~12 items: chance is ~1 hit, allow 3
    assert after['zero_shot/top1'] >= 80, after
    assert after['retrieval/t2i_R@1'] >= 60, after
