"""Depth heads, mmseg's DepthMetric against hand computations, CheckDepthMap, NYU configs."""
import os
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmseg.evaluation import DepthMetric
from mmseg.registry import DATASETS, MODELS
from mmseg.structures import SegDataSample

import pe_dense.seg  # noqa: F401  registers the seg components
from pe_dense.datasets.seg_checks import CheckDepthMap
from pe_dense.models.decode_heads import DPTDepthHead, LinearDepthHead, bin_centres

CFG_DIR = osp.join(osp.dirname(__file__), '..', 'configs', 'nyu')
TINY_PE = dict(patch_size=8, width=32, depth=4, heads=2, mlp_dim=64, cls_token=True,
               img_size=64)


# ---------------------------------------------------------------- metric
def hand_metrics(gt: np.ndarray, pred: np.ndarray, max_depth: float) -> dict:
    keep = (gt > 0) & (gt < max_depth)
    g, p = gt[keep].astype(np.float64), pred[keep].astype(np.float64)
    ratio = np.maximum(g / p, p / g)
    return dict(
        rmse=np.sqrt(np.mean((p - g) ** 2)),
        abs_rel=np.mean(np.abs(p - g) / g),
        log10=np.mean(np.abs(np.log10(p) - np.log10(g))),
        d1=np.mean(ratio < 1.25), d2=np.mean(ratio < 1.25 ** 2), d3=np.mean(ratio < 1.25 ** 3))


def sample(gt, pred):
    s = SegDataSample()
    s.gt_depth_map = PixelData(data=torch.tensor(gt, dtype=torch.float32)[None])
    s.pred_depth_map = PixelData(data=torch.tensor(pred, dtype=torch.float32)[None])
    return s.to_dict()


def test_depth_metric_equals_hand_computation_and_skips_invalid_pixels():
    gt = np.array([[1.0, 2.0, 0.0], [4.0, 12.0, 3.0]])  # 0 = no reading, 12 > max depth
    pred = np.array([[1.1, 1.5, 5.0], [5.5, 2.0, 3.0]])
    metric = DepthMetric(min_depth_eval=1e-3, max_depth_eval=10.)
    metric.process({}, [sample(gt, pred)])
    got = metric.compute_metrics(metric.results)
    want = hand_metrics(gt, pred, 10.)
    for k, v in want.items():
        assert got[k] == pytest.approx(v, rel=1e-5), k
    # spelled out: valid pixels (1, 1.1), (2, 1.5), (4, 5.5), (3, 3)
    assert got['rmse'] == pytest.approx(np.sqrt((0.01 + 0.25 + 2.25 + 0) / 4), rel=1e-5)
    assert got['d1'] == pytest.approx(2 / 4)  # 1.1/1 and 3/3 are within 1.25


def test_eigen_crop_only_counts_its_window():
    gt = np.full((480, 640), 2.0)
    pred = np.full((480, 640), 2.0)
    pred[:45] = 9.0  # wrong, but above the crop (rows 45:471)
    metric = DepthMetric(max_depth_eval=10., crop_type='nyu_crop')
    metric.process({}, [sample(gt, pred)])
    assert metric.compute_metrics(metric.results)['rmse'] == pytest.approx(0.0)


# ---------------------------------------------------------------- heads
def test_bin_centres():
    torch.testing.assert_close(bin_centres(0., 4., 4, 'linear'), torch.tensor([.5, 1.5, 2.5, 3.5]))
    log = bin_centres(0.01, 10., 3, 'log')
    assert (log[1:] / log[:-1]).tolist() == pytest.approx([10.0, 10.0], rel=1e-5)
    with pytest.raises(ValueError, match='bin_spacing'):
        bin_centres(0.1, 1., 3, 'cubic')


def test_bins_mode_is_softmax_expectation_of_centres():
    head = LinearDepthHead(in_channels=4, in_index=0, num_bins=4, min_depth=1e-3, max_depth=4.)
    logits = torch.full((1, 4, 1, 2), -1e4)
    logits[0, 2, 0, 0] = 0  # all mass on bin 2
    logits[0, :, 0, 1] = 0  # uniform -> mean of centres
    depth = head.to_depth(logits)
    c = head.centres
    torch.testing.assert_close(depth[0, 0, 0], torch.stack([c[2], c.mean()]))


def test_regression_mode_stays_in_range_and_probe_shape():
    head = LinearDepthHead(in_channels=[8, 8, 6], in_index=[0, 1, 2], mode='regression',
                           max_depth=10., upsample=4)
    x = [torch.randn(2, 8, 3, 4) * 50, torch.randn(2, 8, 3, 4), torch.randn(2, 6)]
    out = head(x)
    assert out.shape == (2, 1, 12, 16) and out.min() >= 0 and out.max() <= 10.
    assert head.conv_seg.out_channels == 1


def test_depth_loss_ignores_missing_and_too_far_pixels():
    head = LinearDepthHead(in_channels=4, in_index=0, mode='regression', max_depth=10.)
    pred = torch.full((1, 1, 4, 4), 2.0, requires_grad=True)
    gt = torch.full((1, 4, 4), 2.0)
    gt[0, 0] = 0.0  # missing
    gt[0, 1] = 50.0  # beyond max_depth
    s = SegDataSample()
    s.gt_depth_map = PixelData(data=gt)
    loss = head.loss_by_feat(pred, [s])['loss_silog']
    assert loss.item() == pytest.approx(0.0, abs=1e-3)
    gt[0, 2] = 4.0  # a real error must count
    s.gt_depth_map = PixelData(data=gt)
    assert head.loss_by_feat(pred, [s])['loss_silog'].item() > 0.1


def test_dpt_depth_head_on_plain_pe_maps():
    head = DPTDepthHead(in_channels=[16] * 4, in_index=(0, 1, 2, 3), embed_dims=16,
                        post_process_channels=[8, 8, 16, 16], channels=8, max_depth=10.)
    out = head([torch.randn(1, 16, 4, 6) for _ in range(4)])
    # patch grid 4x6 -> stride 1 of a 16-px patch
    assert out.shape == (1, 1, 64, 96) and 0 <= out.min() and out.max() <= 10
    with pytest.raises(ValueError, match='expects 4 maps'):
        head([torch.randn(1, 16, 4, 6)] * 3)
    with pytest.raises(ValueError, match='readout'):
        DPTDepthHead(in_channels=[16] * 4, embed_dims=16, channels=8, readout_type='project')


def test_depth_head_bad_arguments():
    with pytest.raises(ValueError, match='mode'):
        LinearDepthHead(in_channels=4, mode='ordinal')
    with pytest.raises(ValueError, match='num_bins'):
        LinearDepthHead(in_channels=4, num_bins=1)
    with pytest.raises(ValueError, match='min_depth < max_depth'):
        LinearDepthHead(in_channels=4, min_depth=5., max_depth=1.)


# ---------------------------------------------------------------- CheckDepthMap
def write_nyu(root, depth_png, hw=(24, 32)):
    for sub in ('images/train', 'annotations/train'):
        os.makedirs(osp.join(root, sub), exist_ok=True)
    cv2.imwrite(osp.join(root, 'images/train/kitchen_0001.jpg'), np.zeros((*hw, 3), np.uint8))
    cv2.imwrite(osp.join(root, 'annotations/train/kitchen_0001.png'), depth_png)
    init_default_scope('mmseg')
    return DATASETS.build(dict(
        type='NYUDataset', data_root=root,
        data_prefix=dict(img_path='images/train', depth_map_path='annotations/train'),
        pipeline=[dict(type='LoadImageFromFile'),
                  dict(type='LoadDepthAnnotation', depth_rescale_factor=1e-3),
                  dict(type='CheckDepthMap', max_depth=10.),
                  dict(type='PackSegInputs')]))


def test_millimetre_png_loads_in_metres(tmp_path):
    d = np.full((24, 32), 2500, np.uint16)
    d[0] = 0
    ds = write_nyu(str(tmp_path), d)
    gt = ds[0]['data_samples'].gt_depth_map.data
    assert gt.max().item() == pytest.approx(2.5) and gt.min().item() == 0


def test_png_in_metres_is_refused(tmp_path):
    d = np.random.default_rng(0).integers(1, 9, (24, 32)).astype(np.uint16)  # 1..8 "metres"
    with pytest.raises(ValueError, match=r'kitchen_0001\.png.*stores metres, not millimetres'):
        write_nyu(str(tmp_path), d)[0]


def test_png_in_tenth_of_millimetres_is_refused(tmp_path):
    d = np.full((24, 32), 40000, np.uint16)  # 4 m in 0.1 mm -> reads as 40 m
    with pytest.raises(ValueError, match=r'kitchen_0001\.png.*beyond max_depth=10'):
        write_nyu(str(tmp_path), d)[0]


def test_depth_size_and_empty_map():
    check = CheckDepthMap()
    img = np.zeros((4, 6, 3), np.uint8)
    with pytest.raises(ValueError, match='4x5 but image'):
        check(dict(img=img, ori_shape=(4, 6), gt_depth_map=np.ones((4, 5), np.float32)))
    with pytest.raises(ValueError, match='no valid'):
        check(dict(img=img, ori_shape=(4, 6), gt_depth_map=np.zeros((4, 6), np.float32)))
    with pytest.raises(KeyError, match='after LoadDepthAnnotation'):
        check(dict(img=img, ori_shape=(4, 6)))


# ---------------------------------------------------------------- configs
@pytest.mark.parametrize('name', ['pe_spatial_g14_linear4_nyu', 'pe_spatial_g14_dpt_nyu'])
def test_nyu_configs_build_and_predict_metric_depth(name):
    cfg = Config.fromfile(osp.join(CFG_DIR, name + '.py'))
    assert cfg.test_evaluator.crop_type == 'nyu_crop' and cfg.test_evaluator.max_depth_eval == 10
    bb = cfg.model.backbone
    bb.arch, bb.img_size, bb.init_cfg = TINY_PE, 64, None
    bb.pop('with_cp', None)
    head = cfg.model.decode_head
    head.in_channels = [TINY_PE['width']] * 4
    head.norm_cfg = dict(type='BN')
    if 'dpt' in name:
        bb.out_indices = (0, 1, 2, 3)
        head.update(embed_dims=TINY_PE['width'], post_process_channels=[8, 8, 16, 16],
                    channels=8)
    cfg.model.data_preprocessor.test_cfg = dict(size_divisor=TINY_PE['patch_size'])
    init_default_scope(cfg.default_scope)
    model = MODELS.build(cfg.model).eval()
    img = torch.randint(0, 255, (3, 30, 45), dtype=torch.uint8)
    s = SegDataSample(metainfo=dict(ori_shape=(30, 45), img_shape=(30, 45)))
    data = model.data_preprocessor(dict(inputs=[img], data_samples=[s]), False)
    with torch.no_grad():
        out = model.predict(**data)[0].pred_depth_map.data
    assert out.shape == (1, 30, 45) and out.min() >= 0 and out.max() <= 10


def test_dpt_config_optimizer_decays_backbone_lr():
    from mmengine.optim import build_optim_wrapper
    cfg = Config.fromfile(osp.join(CFG_DIR, 'pe_spatial_g14_dpt_nyu.py'))
    bb = cfg.model.backbone
    bb.update(arch=TINY_PE, img_size=64, init_cfg=None, out_indices=(0, 1, 2, 3))
    cfg.model.decode_head.update(in_channels=[TINY_PE['width']] * 4,
                                 embed_dims=TINY_PE['width'],
                                 post_process_channels=[8, 8, 16, 16], channels=8)
    cfg.optim_wrapper.paramwise_cfg.num_layers = TINY_PE['depth']
    init_default_scope(cfg.default_scope)
    model = MODELS.build(cfg.model)
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    lr = {id(p): g['lr'] for g in wrapper.optimizer.param_groups for p in g['params']}
    assert lr[id(model.decode_head.conv_seg.weight)] == pytest.approx(5e-5)
    assert lr[id(model.backbone.conv1.weight)] == pytest.approx(5e-5 * 0.9 ** 5)
