"""ADE20k linear probe end to end on the toy ADE20k (pe_dense.toy) with a tiny frozen PE."""
import copy
import glob
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

import pe_dense.seg  # noqa: F401  registers the seg components
from pe_dense.toy import ADE20K_TOY_CLASSES, make_ade20k
from pe_dense.toy.ade20k import ADE20K_TOY_IDS

CONFIG = osp.join(osp.dirname(__file__), '..', 'configs', 'ade20k',
                  'pe_spatial_g14_linear_448_ade20k.py')
TINY_PE = dict(patch_size=8, width=64, depth=3, heads=2, mlp_dim=64, cls_token=True,
               img_size=64)
SIZE = 96
NUM_CLASSES = len(ADE20K_TOY_CLASSES)  # the toy's stuff + thing classes, remapped to 0..K-1


def toy_cfg(root: str, work_dir: str, iters: int = 200) -> Config:
    """The real probe config, pointed at the toy data and shrunk to a tiny PE."""
    cfg = Config.fromfile(CONFIG)
    size = SIZE
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
        dl.dataset.metainfo = dict(classes=ADE20K_TOY_CLASSES)
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



@pytest.fixture(autouse=True, scope='module')
def one_thread():
    """One intra-op thread: tiny models gain nothing from more, and on a shared CPU the extra
    spinning threads made these runs tens of times slower."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)

@pytest.fixture(scope='module')
def toy_ade(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('ade'))
    make_ade20k(root, num_train=32, num_val=8, size=SIZE, seed=0, progress_bar=False)
    return root


def majority_miou(root: str) -> float:
    """mIoU (%) of predicting the most frequent toy class everywhere: IoU = its frequency."""
    ids = np.concatenate([cv2.imread(f, 0).ravel() for f in sorted(
        glob.glob(osp.join(root, 'annotations', 'validation', '*.png')))])
    ids = ids[np.isin(ids, list(ADE20K_TOY_IDS.values()))]
    counts = np.unique(ids, return_counts=True)[1]
    return 100 * counts.max() / counts.sum() / len(counts)


@pytest.mark.slow
def test_linear_probe_learns_toy_ade_and_backbone_stays_frozen(toy_ade, tmp_path):
    cfg = toy_cfg(toy_ade, str(tmp_path / 'work'), iters=200)
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
    print('toy ADE mIoU', metrics['mIoU'], 'majority', baseline)
    assert metrics['mIoU'] > 45 and metrics['mIoU'] > 5 * baseline, \
        (metrics, baseline)


@pytest.mark.slow
def test_whole_inference_variant_and_seg_pictures(toy_ade, tmp_path):
    cfg = toy_cfg(toy_ade, str(tmp_path / 'work'), iters=60)
    cfg.model.test_cfg = dict(mode='whole')
    cfg.model.data_preprocessor.test_cfg = dict(size_divisor=8)
    cfg.default_hooks.visualization = dict(type='SegVisualizationHook', draw=True, interval=1)
    runner = Runner.from_cfg(cfg)
    runner.train()
    metrics = runner.test()
    assert metrics['mIoU'] > 25, metrics
    pics = sorted(glob.glob(osp.join(str(tmp_path / 'work'), '*', 'vis_data',
                                                   'vis_image', '*.png')))
    assert len(pics) >= 8, pics
    pic = cv2.imread(pics[0])
    # GT | prediction side by side, coloured with the dataset palette
    assert pic.shape[1] == 2 * SIZE and pic.std() > 10
