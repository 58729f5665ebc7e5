"""`tools/test.py` writes coloured seg and depth pictures for the mmseg configs.

mmseg 1.2.2's SegVisualizationHook has no ``test_out_dir``: pictures go to the visualizer's
``save_dir``, which ``--show-dir`` sets for mmseg configs.
"""
import glob
import os
import os.path as osp
import sys

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

import pe_dense.seg  # noqa: F401  registers the seg components

REPO = osp.join(osp.dirname(__file__), '..')
TINY_PE = dict(patch_size=8, width=32, depth=4, heads=2, mlp_dim=64, cls_token=True,
               img_size=64)


def tool_test():
    sys.path.insert(0, osp.join(REPO, 'tools'))
    try:
        import test as tool
    finally:
        sys.path.pop(0)
    return tool


def write_images(root, split_dirs, ann, n=2):
    rng = np.random.default_rng(0)
    for i in range(n):
        img = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
        for d in split_dirs:
            os.makedirs(osp.join(root, d), exist_ok=True)
        cv2.imwrite(osp.join(root, split_dirs[0], f'kitchen_{i:04d}.jpg'), img)
        cv2.imwrite(osp.join(root, split_dirs[1], f'kitchen_{i:04d}.png'), ann(rng))


def shrink(cfg: Config, root: str, work: str) -> Config:
    bb = cfg.model.backbone
    bb.update(arch=TINY_PE, img_size=64, init_cfg=None)
    if len(bb.out_indices) == 4:  # the depth probe's spaced blocks, for the tiny depth
        bb.out_indices = tuple(range(TINY_PE['depth']))
    head = cfg.model.decode_head
    head.update(in_channels=[TINY_PE['width']] * len(head.in_channels),
                norm_cfg=dict(type='BN'))
    cfg.model.data_preprocessor.test_cfg = dict(size_divisor=8)
    cfg.model.test_cfg = dict(mode='whole')
    cfg.test_dataloader.update(num_workers=0, persistent_workers=False)
    cfg.test_dataloader.dataset.data_root = root
    # mmseg's SegVisualizationHook reads runner.iter, which builds the train loop and its
    # dataset: point it at the same (test) files
    cfg.train_dataloader.update(num_workers=0, persistent_workers=False)
    cfg.train_dataloader.dataset.update(data_root=root,
                                        data_prefix=cfg.test_dataloader.dataset.data_prefix)
    cfg.vis_backends = [dict(type='LocalVisBackend')]
    cfg.visualizer.vis_backends = cfg.vis_backends
    cfg.visualizer.name = 'vis_' + osp.basename(work)
    cfg.work_dir = work
    return cfg


def run(cfg: Config, tmp_path) -> list:
    init_default_scope('mmseg')
    ckpt = str(tmp_path / 'model.pth')
    torch.save(dict(state_dict=MODELS.build(cfg.model).state_dict(), meta={}), ckpt)
    cfg_file = str(tmp_path / 'cfg.py')
    cfg.dump(cfg_file)
    show = str(tmp_path / 'show')
    tool_test().main([cfg_file, ckpt, '--work-dir', cfg.work_dir, '--show-dir', show])
    return sorted(glob.glob(osp.join(show, '**', '*.png'), recursive=True))


@pytest.fixture(autouse=True)
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def depth_cfg(tmp_path) -> Config:
    """The NYU linear4 config shrunk onto two random 48x64 depth test pictures."""
    root = str(tmp_path / 'nyu')
    write_images(root, ('images/test', 'annotations/test'),
                 lambda rng: rng.integers(500, 9000, (48, 64)).astype(np.uint16))
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'nyu', 'pe_spatial_g14_linear4_nyu.py'))
    cfg = shrink(cfg, root, str(tmp_path / 'work_depth'))
    cfg.test_evaluator.crop_type = None
    return cfg


def test_tools_test_depth_pictures(tmp_path):
    pics = run(depth_cfg(tmp_path), tmp_path)
    assert len(pics) == 2, pics
    pic = cv2.imread(pics[0]).astype(int)
    assert pic.shape[:2] == (96, 128)  # image over depth; GT | prediction
    depth = pic[48:]
    assert np.abs(depth[..., 0] - depth[..., 2]).mean() > 20  # colour map, not grey


def test_tools_test_segmentation_pictures(tmp_path):
    root = str(tmp_path / 'ade')
    write_images(root, ('images/validation', 'annotations/validation'),
                 lambda rng: rng.integers(0, 151, (48, 64)).astype(np.uint8))
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'ade20k',
                                   'pe_spatial_g14_linear_448_ade20k_whole.py'))
    cfg = shrink(cfg, root, str(tmp_path / 'work_seg'))
    pics = run(cfg, tmp_path)
    assert len(pics) == 2, pics
    pic = cv2.imread(pics[0])
    assert pic.shape[:2] == (48, 128) and pic.std() > 10  # GT | prediction in the palette
