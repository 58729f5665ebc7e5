"""The toy DETA (configs/demo/pe_deta_toy.py) learns the toy COCO set from scratch on CPU.

Trains with MMEngine's Runner exactly as configured (same assignment and losses as the real
model, only smaller), then evaluates the saved checkpoint with tools/test.py, which prints
the COCO AP table. The pictures are landscape 144x96 (resized to 120x80, padded to 128x80), so
a width / height swap anywhere from the loader to the box decoding costs AP. One torch thread:
on a shared 2-core machine extra threads only contend.
"""
import glob
import json
import os
import os.path as osp
import re
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from pe_dense.toy import make_toy

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG = osp.join(ROOT, 'configs', 'demo', 'pe_deta_toy.py')


def _data_options(data_root: str) -> dict:
    ann = osp.join(data_root, 'annotations', 'instances_val2017.json')
    return {'train_dataloader.dataset.data_root': data_root,
            'val_dataloader.dataset.data_root': data_root,
            'test_dataloader.dataset.data_root': data_root,
            'val_evaluator.ann_file': ann, 'test_evaluator.ann_file': ann}


@pytest.mark.slow
def test_toy_deta_reaches_ap50_and_tools_test_prints_table(tmp_path):
    data_root = str(tmp_path / 'toy_coco')
    make_toy('coco', data_root, num_train=256, num_val=32, progress_bar=False)
    with open(osp.join(data_root, 'annotations', 'instances_val2017.json')) as f:
        assert {(im['width'], im['height']) for im in json.load(f)['images']} == {(144, 96)}
    cfg = Config.fromfile(CONFIG)
    cfg.merge_from_dict(_data_options(data_root))
    cfg.work_dir = str(tmp_path / 'work')
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None  # tools/test.py evaluates
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        runner = Runner.from_cfg(cfg)
        runner.train()
    finally:
        torch.set_num_threads(threads)
    vis = glob.glob(osp.join(cfg.work_dir, '*', 'vis_data'))
    assert len(vis) == 1 and osp.isfile(osp.join(vis[0], 'scalars.json'))  # LocalVisBackend
    assert any(f.startswith('events.out.tfevents') for f in os.listdir(vis[0]))  # Tensorboard

    ckpt = osp.join(cfg.work_dir, f'epoch_{cfg.train_cfg.max_epochs}.pth')
    options = [f'{k}={v}' for k, v in _data_options(data_root).items()]
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=ROOT)
    out = subprocess.run([sys.executable, osp.join(ROOT, 'tools', 'test.py'), CONFIG, ckpt,
                          '--work-dir', str(tmp_path / 'test'), '--cfg-options', *options],
                         capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    log = out.stdout + out.stderr
    assert 'Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all' in log
    assert 'Average Recall     (AR) @[ IoU=0.50:0.95 | area= large' in log
    ap50 = float(re.search(r"'coco/bbox_mAP_50': ([0-9.]+)", out.stdout).group(1))
    assert ap50 >= 0.5, out.stdout[-2000:]
