"""ADE20k linear probe end to end on a toy ADE20k-layout dataset with a tiny frozen PE."""
import copy
import glob
import os
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

import pe_dense  # noqa: F401
import pe_dense.datasets.seg_checks  # noqa: F401

CONFIG = osp.join(osp.dirname(__file__), '..', 'configs', 'ade20k',
                  'pe_spatial_g14_linear_448_ade20k.py')
TINY_PE = dict(patch_size=8, width=32, depth=3, heads=2, mlp_dim=64, cls_token=True,
               img_size=64)
# toy classes on disk: 0 = "other" (ignored), 1 = background, 2..4 = shapes
COLOURS = {1: (90, 90, 90), 2: (230, 40, 40), 3: (40, 200, 40), 4: (40, 60, 230)}
NUM_CLASSES = 4  # after reduce_zero_label


def write_toy_ade(root: str, n_train: int = 24, n_val: int = 8, size: int = 64, seed: int = 0):
    """ADEChallengeData2016 layout: jpg images, uint8 png labels (0 = other)."""
    rng = np.random.default_rng(seed)
    for split, n in (('training', n_train), ('validation', n_val)):
        for i in range(n):
            label = np.ones((size, size), np.uint8)
            for cls in (2, 3, 4):
                h, w = rng.integers(14, 28, size=2)
                y, x = rng.integers(0, size - h), rng.integers(0, size - w)
                label[y:y + h, x:x + w] = cls
            label[:2] = 0  # a strip of "other"
            img = np.zeros((size, size, 3), np.float32)
            for cls, colour in COLOURS.items():
                img[label == cls] = colour
            img += rng.normal(0, 12, img.shape)
            img = np.clip(img, 0, 255).astype(np.uint8)
            name = f'ADE_{split[:5]}_{i:08d}'
            for sub, arr, ext in (('images', img[..., ::-1], '.jpg'),
                                  ('annotations', label, '.png')):
                d = osp.join(root, sub, split)
                os.makedirs(d, exist_ok=True)
                cv2.imwrite(osp.join(d, name + ext), arr)
    return root


def toy_cfg(root: str, work_dir: str, iters: int = 200) -> Config:
    """The real probe config, pointed at the toy data and shrunk to a tiny PE."""
    cfg = Config.fromfile(CONFIG)
    size = 64
    cfg.work_dir = work_dir
    cfg.model.backbone.arch = TINY_PE
    cfg.model.backbone.img_size = size
    cfg.model.backbone.init_cfg = None
    cfg.model.decode_head.in_channels = [TINY_PE['width']]
    cfg.model.decode_head.num_classes = NUM_CLASSES
    cfg.model.decode_head.norm_cfg = dict(type='BN', requires_grad=True)
    cfg.model.data_preprocessor.size = (size, size)
    cfg.model.test_cfg = dict(mode='slide', crop_size=(48, 48), stride=(32, 32))
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        dl = cfg[loader]
        dl.dataset.data_root = root
        dl.num_workers = 0
        dl.persistent_workers = False
        for t in dl.dataset.pipeline:
            if t['type'] == 'CheckSegLabel':
                t['num_classes'] = NUM_CLASSES
            if t['type'] in ('RandomResize', 'Resize'):
                t['scale'] = (4 * size, size)
            if t['type'] == 'RandomCrop':
                t['crop_size'] = (size, size)
    cfg.train_dataloader.batch_size = 4
    cfg.train_cfg.max_iters = iters
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None  # runner.test() evaluates
    cfg.param_scheduler = [
        dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=20),
        dict(type='PolyLR', eta_min=0.0, power=1.0, by_epoch=False, begin=20, end=iters)]
    cfg.optim_wrapper.optimizer.lr = 1e-2
    cfg.default_hooks.checkpoint.interval = iters
    cfg.default_hooks.logger.interval = 50
    cfg.vis_backends = [dict(type='LocalVisBackend')]
    cfg.visualizer.vis_backends = cfg.vis_backends
    cfg.visualizer.name = 'vis_' + osp.basename(osp.dirname(work_dir))  # one per test
    return cfg


@pytest.fixture(scope='module')
def toy_ade(tmp_path_factory):
    return write_toy_ade(str(tmp_path_factory.mktemp('ade')))


def majority_miou(root: str) -> float:
    """mIoU of predicting the most frequent class everywhere (ids after reduce_zero_label)."""
    labels = [cv2.imread(osp.join(root, 'annotations', 'validation', f), 0).astype(int) - 1
              for f in sorted(os.listdir(osp.join(root, 'annotations',
                                                                 'validation')))]
    lab = np.concatenate([x.ravel() for x in labels])
    lab = lab[lab >= 0]
    major = np.bincount(lab).argmax()
    present = np.unique(lab)
    return float((lab == major).mean()) / len(present)  # IoU(major) = freq, others 0


@pytest.mark.slow
def test_linear_probe_learns_toy_ade_and_backbone_stays_frozen(toy_ade, tmp_path):
    cfg = toy_cfg(toy_ade, str(tmp_path / 'work'), iters=80)
    runner = Runner.from_cfg(cfg)
    backbone = runner.model.backbone
    before = copy.deepcopy(backbone.state_dict())
    runner.train()
    assert not backbone.training, 'a frozen PE must stay in eval mode while the head trains'
    assert all(not p.requires_grad and p.grad is None for p in backbone.parameters())
    after = backbone.state_dict()
    assert before.keys() == after.keys()
    for k in before:
        assert torch.equal(before[k], after[k]), f'backbone tensor {k} changed during probing'
    head_bn = runner.model.decode_head.bn
    assert head_bn.num_batches_tracked > 0, 'the probe BN should have been trained'

    metrics = runner.test()
    baseline = majority_miou(toy_ade)
    print('toy ADE mIoU', metrics['mIoU'], 'majority', 100 * baseline)
    assert metrics['mIoU'] > 60 and metrics['mIoU'] > 2.5 * 100 * baseline, \
        (metrics, baseline)


@pytest.mark.slow
def test_whole_inference_variant_and_seg_pictures(toy_ade, tmp_path):
    cfg = toy_cfg(toy_ade, str(tmp_path / 'work'), iters=40)
    cfg.model.test_cfg = dict(mode='whole')
    cfg.model.data_preprocessor.test_cfg = dict(size_divisor=8)
    cfg.default_hooks.visualization = dict(type='SegVisualizationHook', draw=True, interval=1)
    runner = Runner.from_cfg(cfg)
    runner.train()
    metrics = runner.test()
    assert metrics['mIoU'] > 40, metrics
    pics = sorted(glob.glob(osp.join(str(tmp_path / 'work'), '*', 'vis_data',
                                                   'vis_image', '*.png')))
    assert len(pics) >= 8, pics
    pic = cv2.imread(pics[0])
    # GT | prediction side by side, coloured with the dataset palette
    assert pic.shape[1] == 2 * 64 and pic.std() > 10
