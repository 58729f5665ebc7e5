"""Feature PCA pictures: colours follow the components; the tool writes side-by-side PNGs."""
import importlib.util
import json
import os.path as osp

import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image
from skimage.color import lab2lch, rgb2lab

from pe_dense.analysis.feature_cache import FeatureSource
from pe_dense.analysis.feature_pca import (C_RANGE, HUE_SPAN, L_RANGE, foreground, lch_colours,
                                           pca, pca_images, visualize)

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
G = 8  # token grid of the constructed case
ROWS, COLS = np.meshgrid(np.arange(G) - 3.5, np.arange(G) - 3.5, indexing='ij')
CHECKER = (-1.0) ** (np.arange(G)[:, None] + np.arange(G)[None])


class ConstructedSource(FeatureSource):
    """Tokens 3*rows e0 + 2*cols e1 + checker e2 (6 dims): PC1 rows, PC2 cols, PC3 checker."""

    name, num_layers, patch_size = 'constructed', 1, 8

    def fingerprint(self):
        return 'constructed'

    def _maps(self, x, layers):
        fmap = torch.zeros(6, G, G)
        fmap[0], fmap[1], fmap[2] = (torch.tensor(3 * ROWS), torch.tensor(2 * COLS),
                                     torch.tensor(CHECKER))
        return [fmap.expand(len(x), -1, -1, -1).clone() for _ in layers]


def test_pca_recovers_components_with_fixed_signs():
    fmap = ConstructedSource()._maps(torch.zeros(1), [0])[0][0].numpy()
    _, comps, proj = pca(fmap.reshape(6, -1).T, 3)
    np.testing.assert_allclose(np.abs(comps[:, :3]), np.eye(3), atol=1e-9)
    np.testing.assert_allclose(proj[:, 0], 3 * ROWS.ravel(), atol=1e-9)  # sign: loading > 0
    with pytest.raises(ValueError, match='tokens'):
        pca(np.zeros((1, 4)))


def test_lch_mapping_is_exact_in_gamut():
    rng = np.random.default_rng(0)
    proj = rng.uniform(size=(500, 3))
    proj[:2] = [[0, 0, 0], [1, 1, 1]]  # pin the percentile range close to [0, 1]
    lch = lab2lch(rgb2lab(lch_colours(proj)[None]))[0]
    lo, hi = np.percentile(proj, [1, 99], axis=0)
    unit = (np.clip(proj, lo, hi) - lo) / (hi - lo)
    want_l = L_RANGE[0] + unit[:, 0] * (L_RANGE[1] - L_RANGE[0])
    want_c = C_RANGE[0] + unit[:, 1] * (C_RANGE[1] - C_RANGE[0])
    # low-chroma, not too light colours are inside sRGB: the round trip gives back L, C, hue
    ok = (want_c < 25) & (want_l < 85)
    np.testing.assert_allclose(lch[ok, 0], want_l[ok], atol=0.5)
    np.testing.assert_allclose(lch[ok, 1], want_c[ok], atol=0.5)
    hue = np.rad2deg(lch[ok, 2]) % 360
    diff = (hue - unit[ok, 2] * HUE_SPAN + 180) % 360 - 180
    assert np.abs(diff[want_c[ok] > 10]).max() < 3


def test_visualisation_png_follows_the_components(tmp_path):
    source = ConstructedSource()
    pic = skimage.data.astronaut()
    canvas, colours = visualize(source, [pic], 0, size=64, height=G * 16)
    path = tmp_path / 'pca.png'
    Image.fromarray(canvas).save(path)
    png = np.asarray(Image.open(path).convert('RGB'))
    assert png.shape == (G * 16, 2 * G * 16, 3)
    # left half: the input picture; right half: one colour block per token (nearest upsampling)
    left = np.asarray(Image.fromarray(pic).resize((G * 16, G * 16), Image.BILINEAR))
    np.testing.assert_array_equal(png[:, :G * 16], left)
    tokens = png[8::16, G * 16 + 8::16].astype(float) / 255
    lch = lab2lch(rgb2lab(tokens))
    # PC1 (rows) drives lightness, PC2 (cols) chroma, PC3 (checker) hue
    light_by_row = lch[..., 0].mean(1)
    chroma_by_col = lch[..., 1].mean(0)
    assert np.all(np.diff(light_by_row) > 3)
    assert np.all(np.diff(chroma_by_col) > 0.5)
    hue = np.rad2deg(lch[..., 2])
    even, odd = hue[CHECKER > 0], hue[CHECKER < 0]
    sep = np.abs(((even.mean() - odd.mean()) + 180) % 360 - 180)
    assert sep > 30 and np.ptp(np.cos(np.deg2rad(even))) < 0.7


def test_foreground_mask_and_joint_pca():
    maps = []
    for shift in (0, 1):
        m = np.random.default_rng(shift).normal(0, 0.05, (4, G, G))
        m[0, 2 + shift:5 + shift, 2:5] += 3.0  # an object away from the border
        maps.append(m)
    masks = foreground(maps, 0.5)
    for shift, mask in enumerate(masks):
        want = np.zeros((G, G), bool)
        want[2 + shift:5 + shift, 2:5] = True
        np.testing.assert_array_equal(mask, want)
    colours, _ = pca_images(maps, masks)
    assert all(c[~k].sum() == 0 for c, k in zip(colours, masks))  # background is black
    assert all(c[k].sum() > 0 for c, k in zip(colours, masks))
    with pytest.raises(ValueError, match='fewer than 2 tokens'):
        pca_images(maps, [np.zeros((G, G), bool)] * 2)


def test_visualize_tool_on_real_pictures(tmp_path):
    spec = importlib.util.spec_from_file_location(
        'viz_tool', osp.join(ROOT, 'tools', 'analysis', 'visualize_features.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    tiny = dict(patch_size=16, width=48, depth=2, heads=2, mlp_dim=96, cls_token=True,
                pool=None, out_dim=None, layer_scale=None, ln_post=False, img_size=64)
    base = ['--arch', json.dumps(tiny), '--size', '64', '--height', '64', '--out', str(tmp_path)]
    single = tool.main(['skimage:astronaut', 'skimage:chelsea', *base])
    assert [osp.basename(p) for p in single] == ['layer1_astronaut.png', 'layer1_chelsea.png']
    joint = tool.main(['skimage:astronaut', 'skimage:coffee', '--joint', '--mask', '0.3',
                       '--layer', '0', *base])
    img = np.asarray(Image.open(joint[0]))
    assert img.shape[0] == 128 and osp.getsize(joint[0]) < 100_000
    with pytest.raises(IndexError, match='layer'):
        tool.main(['skimage:astronaut', '--layer', '5', *base])
    with pytest.raises(ValueError, match='no sample picture'):
        tool.main(['skimage:nonexistent', *base])
