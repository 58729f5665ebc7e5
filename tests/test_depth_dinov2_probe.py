"""The NYU linear4 config is DINOv2's depth probe: spaced blocks, no BatchNorm, ReLU + 0.1
normalised bins at linspace(min, max, 256), SigLoss; checked against a transcription of
DINOv2's head (facebookresearch/dinov2, dinov2/eval/depth/models/decode_heads) on fixed,
non-square inputs."""
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

import pe_dense  # noqa: F401
from pe_dense.models.decode_heads import SigLoss, spaced_layers

CONFIG = osp.join(osp.dirname(__file__), '..', 'configs', 'nyu', 'pe_spatial_g14_linear4_nyu.py')


def dinov2_linear4(feats, weight, bias, min_depth, max_depth, n_bins=256, upsample=4):
    """DINOv2 BNHead(classify=True, bins_strategy='UD', norm_strategy='linear'), written out:
    resize every map to the first's grid x upsample, concatenate, 1x1 conv, ReLU + 0.1,
    normalise, expectation over linspace bins."""
    size = [s * upsample for s in feats[0].shape[2:]]
    x = torch.cat([F.interpolate(f, size=size, mode='bilinear', align_corners=False)
                   for f in feats], dim=1)
    logit = F.conv2d(x, weight, bias)
    p = torch.relu(logit) + 0.1
    p = p / p.sum(dim=1, keepdim=True)
    bins = torch.linspace(min_depth, max_depth, n_bins)
    return torch.einsum('ikmn,k->imn', p, bins).unsqueeze(1)


def _head_cfg(width):
    cfg = Config.fromfile(CONFIG)
    head = dict(cfg.model.decode_head)
    head['in_channels'] = [width] * 4
    return cfg, head


def test_layers_follow_dinov2_spacing():
    cfg = Config.fromfile(CONFIG)
    assert spaced_layers(12) == [2, 5, 8, 11] and spaced_layers(40) == [9, 19, 29, 39]
    assert list(cfg.probe_layers) == spaced_layers(50) == [11, 24, 36, 49]
    assert tuple(cfg.model.backbone.out_indices) == tuple(cfg.probe_layers)


def test_head_equals_dinov2_probe_and_has_no_batchnorm():
    torch.manual_seed(0)
    cfg, head_cfg = _head_cfg(6)
    init_default_scope('mmseg')
    head = MODELS.build(head_cfg).eval()
    assert not [m for m in head.modules() if isinstance(m, torch.nn.modules.batchnorm._NormBase)]
    with torch.no_grad():
        head.conv_seg.weight.normal_(0, 0.5)
        head.conv_seg.bias.normal_(0, 0.5)
    feats = [torch.randn(2, 6, 3, 5) * (k + 1) for k in range(4)]  # 3 x 5 token grid
    with torch.no_grad():
        ours = head(feats)
        ref = dinov2_linear4(feats, head.conv_seg.weight, head.conv_seg.bias, 1e-3,
                             cfg.max_depth)
    assert ours.shape == (2, 1, 12, 20)
    assert torch.allclose(ours, ref, atol=1e-5, rtol=1e-5)
    # the softmax / BatchNorm / interval-centre variant gives other depths on the same input
    other = dict(head_cfg, bin_norm='softmax', bin_spacing='linear', batch_norm=True)
    other_head = MODELS.build(other).eval()
    other_head.load_state_dict(head.state_dict(), strict=False)
    with torch.no_grad():
        assert (other_head(feats) - ref).abs().max() > 0.1


def test_sigloss_is_dinov2s():
    torch.manual_seed(1)
    pred = torch.rand(2, 1, 4, 7) * 9 + 0.5
    gt = torch.rand(2, 1, 4, 7) * 9 + 0.5
    gt[0, 0, 0, :3] = 0  # no reading: ignored
    valid = gt > 0
    g = torch.log(pred[valid] + 1e-3) - torch.log(gt[valid] + 1e-3)
    n = g.numel()
    var = ((g - g.mean()) ** 2).sum() / (n - 1)
    expected = 10 * torch.sqrt(var + 0.15 * g.mean() ** 2)
    loss = SigLoss(loss_weight=10.0)(pred, gt)
    assert torch.allclose(loss, expected, rtol=1e-6)
    cfg = Config.fromfile(CONFIG)
    assert cfg.model.decode_head.loss_decode == dict(type='SigLoss', loss_weight=10.0)
    with pytest.raises(ValueError, match='bin_norm'):
        MODELS.build(dict(_head_cfg(6)[1], bin_norm='sigmoid'))
