"""Probe maths against hand computations, and the layer comparison (CKA / cosine) tool."""
import importlib.util
import json
import os.path as osp

import numpy as np
import pytest
import torch
from PIL import Image

from pe_dense.analysis import probes
from pe_dense.analysis.compare import compare_layers, linear_cka, token_cosine
from pe_dense.analysis.feature_cache import FeatureCache, FeatureSource, PESource, build_source

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def test_ridge_recovers_a_linear_map():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(400, 5, generator=g, dtype=torch.float64)
    w = torch.randn(5, 2, generator=g, dtype=torch.float64)
    y = x @ w + 3.0
    probe = probes.Ridge(alpha=1e-9).fit(x, y)
    torch.testing.assert_close(probe.predict(x), y, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match='inputs'):
        probes.Ridge().fit(x, y[:3])


def _onehot_maps(labels, num, patch):
    """Features = per-patch class shares (what a perfect layer would carry)."""
    t = torch.as_tensor(np.stack(labels)).long()
    oh = torch.nn.functional.one_hot(t, num).permute(0, 3, 1, 2).double()
    return torch.nn.functional.avg_pool2d(oh, patch).numpy()


def test_segmentation_miou_matches_hand_computation():
    # class 0 left half, class 1 right half; patch 4 on 8x8 -> a 2x2 grid that resolves it
    lab = np.zeros((8, 8), np.int64)
    lab[:, 4:] = 1
    maps = _onehot_maps([lab, lab], 3, 4)
    assert probes.segmentation_miou(maps, [lab, lab], maps[:1], [lab], 3) == pytest.approx(100)
    # a val map with a class-2 quarter the probe never saw: IoU(2) = 0, union > 0
    val = lab.copy()
    val[:4, :4] = 2
    ignore = val.copy()
    ignore[0, 0] = 255  # ignored pixels count nowhere
    miou = probes.segmentation_miou(maps, [lab, lab], maps[:1], [ignore], 3)
    iou0 = 16 / (32 - 1)  # predicted class 0 on the left half, gt 0 only on the lower quarter
    assert miou == pytest.approx((iou0 + 1.0 + 0.0) / 3 * 100)
    with pytest.raises(ValueError, match='outside 0..2'):
        probes.segmentation_miou(maps, [lab, lab + 5], maps[:1], [lab], 3)
    with pytest.raises(ValueError, match='2 feature maps for 1 label'):
        probes.segmentation_miou(maps, [lab], maps, [lab], 3)


def test_depth_rmse_valid_pixels_and_per_image_mean():
    depth = np.tile(np.linspace(1, 4, 8), (8, 1))
    maps = np.stack([depth[None, ::4, ::4]] * 2)  # features = depth at the patch corner
    gt_a, gt_b = depth.copy(), depth.copy()
    gt_b[:, :2] = 0  # invalid pixels are ignored
    probe = probes._fit_tokens(maps, [depth, depth], probes._valid_mean, 1e-2)
    pred = probes._predict_maps(probe, maps, [(8, 8), (8, 8)])
    want = np.mean([np.sqrt(((pred[0][0].numpy() - gt_a) ** 2).mean()),
                    np.sqrt(((pred[1][0].numpy() - gt_b)[gt_b > 0] ** 2).mean())])
    got = probes.depth_rmse(maps, [depth, depth], maps, [gt_a, gt_b])
    assert got == pytest.approx(want) and got > 0
    with pytest.raises(ValueError, match='no validation pixel'):
        probes.depth_rmse(maps, [depth, depth], maps[:1], [np.zeros((8, 8))])


def test_knn_votes():
    train = np.zeros((4, 2, 1, 1))
    train[:2, 0], train[2:, 1] = 1, 1
    val = np.array([[[[0.9]], [[0.1]]], [[[0.2]], [[0.8]]]])
    assert probes.knn_accuracy(train, [0, 0, 1, 1], val, [0, 1], k=2) == 100
    assert probes.knn_accuracy(train, [0, 0, 1, 1], val, [1, 0], k=2) == 0


def test_cka_and_cosine_properties():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(300, 8, generator=g, dtype=torch.float64)
    q, _ = torch.linalg.qr(torch.randn(8, 8, generator=g, dtype=torch.float64))
    assert linear_cka(x, x) == pytest.approx(1)
    assert linear_cka(x, 3 * x @ q + 1) == pytest.approx(1)  # rotation, scale, shift
    assert linear_cka(x, torch.randn(300, 16, generator=g, dtype=torch.float64)) < 0.2
    assert token_cosine(x, x) == pytest.approx(1) and token_cosine(x, -x) == pytest.approx(-1)
    with pytest.raises(ValueError, match='tokens'):
        linear_cka(x, x[:10])
    with pytest.raises(ValueError, match='width'):
        token_cosine(x, x[:, :4])


def test_compare_same_model_and_tool(tmp_path):
    tiny = dict(patch_size=16, width=32, depth=3, heads=2, mlp_dim=64, cls_token=True,
                pool=None, out_dim=None, layer_scale=None, ln_post=False, img_size=64)
    for i in range(3):
        rng = np.random.default_rng(i)
        Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(
            tmp_path / f'{i}.png')
    torch.manual_seed(0)
    src = build_source(tiny)
    cache = FeatureCache(str(tmp_path / 'cache'), progress=False)
    maps = cache.get(src, sorted(str(p) for p in tmp_path.glob('*.png')), (64, 64), [0, 1, 2])
    res = compare_layers(maps, maps, ('a', 'a'))
    assert all(v == pytest.approx(1) for v in res['cka_diagonal'].values())
    assert all(v == pytest.approx(1) for v in res['token_cosine'].values())

    spec = importlib.util.spec_from_file_location(
        'compare_tool', osp.join(ROOT, 'tools', 'analysis', 'compare_layers.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    out = tmp_path / 'out'
    result = tool.main(['--images', str(tmp_path), '--arch-a', json.dumps(tiny), '--timm-b',
                        'vit_tiny_patch16_224', '--size', '64', '--cache-dir',
                        str(tmp_path / 'cache'), '--out', str(out), '--no-progress'])
    assert np.array(result['cka']).shape == (3, 12) and result['token_cosine'] is None
    assert json.load(open(out / 'compare.json'))['layers_b'] == list(range(12))
    assert osp.getsize(out / 'compare.png') > 1000
    same = tool.main(['--images', str(tmp_path), '--arch-a', json.dumps(tiny), '--arch-b',
                      json.dumps(tiny), '--size', '64', '--cache-dir', str(tmp_path / 'cache'),
                      '--out', str(out), '--no-progress'])
    # different seeds for A and B: random twins are not the same network
    assert same['token_cosine'] is not None and min(same['cka_diagonal'].values()) < 0.999
    with pytest.raises(FileNotFoundError, match='no .jpg'):
        tool.main(['--images', str(tmp_path / 'cache' / 'nothing'), '--arch-a', 'x'])
    assert isinstance(src, PESource)


def test_build_source_errors(tmp_path):
    with pytest.raises(ValueError, match='exactly one'):
        build_source('PE-Core-T16-384', 'vit_tiny_patch16_224')
    with pytest.raises(FileNotFoundError, match='missing.pt'):
        build_source('PE-Core-T16-384', checkpoint=str(tmp_path / 'missing.pt'))
    bad = tmp_path / 'partial.pt'
    torch.save({'cls_token': torch.zeros(1, 1, 192)}, bad)
    with pytest.raises(KeyError, match='weights missing'):
        build_source(timm_name='vit_tiny_patch16_224', checkpoint=str(bad))
    with pytest.raises(TypeError, match='forward_intermediates'):
        from pe_dense.analysis.feature_cache import TimmSource
        TimmSource(torch.nn.Linear(2, 2))

    class Fixed(FeatureSource):
        num_layers = 2

        def fingerprint(self):
            return 'fixed'

    cache = FeatureCache(str(tmp_path / 'c'), progress=False)
    with pytest.raises(ValueError, match='empty image list'):
        cache.get(Fixed(), [], (32, 32), [0])
    with pytest.raises(FileNotFoundError, match='nope.jpg'):
        cache.get(Fixed(), [str(tmp_path / 'nope.jpg')], (32, 32), [0])
    with pytest.raises(IndexError, match='layer 2 outside'):
        cache.get(Fixed(), [str(tmp_path / 'nope.jpg')], (32, 32), [2])
