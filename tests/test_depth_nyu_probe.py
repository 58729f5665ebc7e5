"""NYU depth probe end to end with a tiny frozen (random-init) PE.

The protocol default (bins) runs on the toy NYU of ``pe_dense.toy`` (ray-cast textured rooms);
the regression variant on a hazy synthetic scene where brightness encodes depth, which a
random-feature probe can read in a few iterations.
"""
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

import pe_dense.seg  # noqa: F401  registers the seg components
from pe_dense.toy import make_nyu

CONFIG = osp.join(osp.dirname(__file__), '..', 'configs', 'nyu', 'pe_spatial_g14_linear4_nyu.py')
TINY_PE = dict(patch_size=8, width=32, depth=4, heads=2, mlp_dim=64, cls_token=True,
               img_size=64)
H, W = 48, 64
TOY_HW = (64, 80)  # toy NYU frames (H, W), a multiple of the tiny patch


def render(rng) -> tuple:
    """A floor receding to the top (far = hazy) and two boxes; haze makes brightness ~ depth."""
    rows = np.linspace(8.0, 1.0, H, dtype=np.float32)[:, None]
    depth = np.repeat(rows, W, axis=1)
    for _ in range(2):
        h, w = rng.integers(10, 20), rng.integers(10, 24)
        y, x = rng.integers(H // 3, H - h), rng.integers(0, W - w)
        depth[y:y + h, x:x + w] = rng.uniform(1.0, 5.0)
    haze = depth / 9.0
    tint = np.array([60, 110, 170], np.float32)  # BGR albedo
    img = tint * (1 - haze[..., None]) + 230 * haze[..., None]
    img += rng.normal(0, 4, img.shape)
    depth_mm = np.round(depth * 1000).astype(np.uint16)
    depth_mm[:, :2] = 0  # missing readings on the left border
    return np.clip(img, 0, 255).astype(np.uint8), depth_mm


def write_hazy_nyu(root: str, n_train: int = 24, n_test: int = 6, seed: int = 0) -> str:
    """mmseg NYUDataset layout: images/{train,test}/*.jpg, annotations/.../*.png (uint16 mm)."""
    rng = np.random.default_rng(seed)
    for split, n in (('train', n_train), ('test', n_test)):
        for sub in ('images', 'annotations'):
            os.makedirs(osp.join(root, sub, split), exist_ok=True)
        for i in range(n):
            img, depth = render(rng)
            cv2.imwrite(osp.join(root, 'images', split, f'bedroom_{i:04d}.jpg'), img)
            cv2.imwrite(osp.join(root, 'annotations', split, f'bedroom_{i:04d}.png'), depth)
    return root


def toy_cfg(root: str, work_dir: str, iters: int, mode: str = 'bins', hw=(H, W)) -> Config:
    """The real linear4 config, pointed at the toy data and shrunk to a tiny PE."""
    cfg = Config.fromfile(CONFIG)
    cfg.work_dir = work_dir
    bb = cfg.model.backbone
    bb.arch, bb.img_size, bb.init_cfg = TINY_PE, 64, None
    head = cfg.model.decode_head
    head.in_channels = [TINY_PE['width']] * len(cfg.probe_layers)
    head.norm_cfg = dict(type='BN', requires_grad=True)
    head.mode = mode
    head.num_bins = 32
    head.upsample = 2
    cfg.model.data_preprocessor.size = hw
    cfg.model.data_preprocessor.test_cfg = dict(size_divisor=8)
    for loader in ('train_dataloader', 'test_dataloader'):
        dl = cfg[loader]
        dl.dataset.data_root = root
        dl.num_workers = 0
        dl.persistent_workers = False
        for t in dl.dataset.pipeline:
            if t['type'] == 'RandomCrop':
                t['crop_size'] = hw
        dl.dataset.pipeline = [t for t in dl.dataset.pipeline
                               if t['type'] != 'PhotoMetricDistortion']
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    cfg.test_evaluator.crop_type = None  # the Eigen crop is defined on 480x640 frames
    cfg.train_dataloader.batch_size = 4
    cfg.train_cfg.max_iters = iters
    cfg.train_cfg.val_interval = iters
    cfg.param_scheduler = [
        dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=iters // 4),
        dict(type='PolyLR', eta_min=0.0, power=1.0, by_epoch=False, begin=iters // 4,
             end=iters)]
    cfg.optim_wrapper.optimizer.lr = 3e-2
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', by_epoch=False, interval=iters)
    cfg.default_hooks.logger.interval = 50
    cfg.vis_backends = [dict(type='LocalVisBackend')]
    cfg.visualizer.vis_backends = cfg.vis_backends
    cfg.visualizer.name = 'vis_' + osp.basename(osp.dirname(work_dir))
    return cfg


def mean_depth_rmse(root: str) -> float:
    """RMSE of predicting the training-set mean depth everywhere on the test split."""
    def valid(split):
        files = sorted(glob.glob(osp.join(root, 'annotations', split, '*.png')))
        d = np.concatenate([cv2.imread(f, cv2.IMREAD_UNCHANGED).ravel() / 1000. for f in files])
        return d[d > 0]
    mean = valid('train').mean()
    test = valid('test')
    return float(np.sqrt(((test - mean) ** 2).mean()))



@pytest.fixture(autouse=True, scope='module')
def one_thread():
    """One intra-op thread: tiny models gain nothing from more, and on a shared CPU the extra
    spinning threads made these runs tens of times slower."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)

@pytest.fixture(scope='module')
def toy_nyu(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('nyu'))
    make_nyu(root, num_train=24, num_val=6, size=f'{TOY_HW[1]}x{TOY_HW[0]}', seed=0,
             progress_bar=False)
    return root


@pytest.fixture(scope='module')
def hazy_nyu(tmp_path_factory):
    return write_hazy_nyu(str(tmp_path_factory.mktemp('hazy')))


def probe(root, work_dir, iters, mode, hw):
    runner = Runner.from_cfg(toy_cfg(root, work_dir, iters=iters, mode=mode, hw=hw))
    before = copy.deepcopy(runner.model.backbone.state_dict())
    runner.train()
    for k, v in runner.model.backbone.state_dict().items():
        assert torch.equal(v, before[k]), f'backbone tensor {k} changed during probing'
    return runner.test()


@pytest.mark.slow
def test_bins_probe_beats_mean_depth_on_toy_nyu(toy_nyu, tmp_path):
    metrics = probe(toy_nyu, str(tmp_path / 'work'), 100, 'bins', TOY_HW)
    baseline = mean_depth_rmse(toy_nyu)
    print('bins toy NYU', metrics, 'mean-depth RMSE', baseline)  # seen: 1.13 vs 1.75
    assert metrics['rmse'] < 0.75 * baseline, (metrics, baseline)
    assert metrics['d1'] > 0.45, metrics


@pytest.mark.slow
def test_regression_probe_beats_mean_depth_on_hazy_scene(hazy_nyu, tmp_path):
    metrics = probe(hazy_nyu, str(tmp_path / 'work'), 60, 'regression', (H, W))
    baseline = mean_depth_rmse(hazy_nyu)
    print('regression hazy', metrics, 'mean-depth RMSE', baseline)  # seen: 0.47 vs 2.13
    assert metrics['rmse'] < 0.4 * baseline, (metrics, baseline)
    assert metrics['d1'] > 0.8, metrics


@pytest.mark.slow
def test_depth_pictures_are_colour_coded(hazy_nyu, tmp_path):
    cfg = toy_cfg(hazy_nyu, str(tmp_path / 'work'), iters=4)
    cfg.default_hooks.visualization = dict(type='SegVisualizationHook', draw=True, interval=1)
    runner = Runner.from_cfg(cfg)
    runner.train()
    runner.test()
    pics = sorted(glob.glob(osp.join(str(tmp_path / 'work'), '*', 'vis_data', 'vis_image',
                                     '*.png')))
    assert len(pics) == 6, pics
    pic = cv2.imread(pics[0])
    # image over depth, for GT | prediction: two panels wide, two tall
    assert pic.shape[:2] == (2 * H, 2 * W)
    depth_panel = pic[H:, :W].astype(int)
    # colour-coded (a colour map), not grey: channels differ
    assert np.abs(depth_panel[..., 0] - depth_panel[..., 2]).mean() > 20
