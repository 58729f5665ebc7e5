"""LinearProbeHead and the ADE20k configs, without training."""
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from mmengine.structures import PixelData

import pe_dense.seg  # noqa: F401  registers the seg components
from pe_dense.models.decode_heads import LinearProbeHead, gather_features

CFG_DIR = osp.join(osp.dirname(__file__), '..', 'configs', 'ade20k')
TINY_PE = dict(patch_size=8, width=32, depth=4, heads=2, mlp_dim=64, cls_token=True,
               img_size=64)


def test_gather_concatenates_layers_and_broadcasts_global_vectors():
    a, b = torch.randn(2, 3, 4, 5), torch.randn(2, 2, 2, 3)
    g = torch.randn(2, 6)
    out = gather_features([a, b, g], [0, 1, 2])
    assert out.shape == (2, 11, 4, 5)
    assert torch.equal(out[:, :3], a)
    # the (B, C) vector is constant over the grid
    assert torch.equal(out[:, 5:, 1, 2], g) and torch.equal(out[:, 5:, 3, 4], g)
    with pytest.raises(ValueError, match='at least one selected input'):
        gather_features([g], [0])
    with pytest.raises(ValueError, match='neither'):
        gather_features([a, torch.randn(2, 3, 4)], [0, 1])


def test_linear_probe_is_bn_plus_1x1_conv():
    head = LinearProbeHead(in_channels=[8, 8], in_index=[0, 1], num_classes=5,
                           norm_cfg=dict(type='BN'))
    params = {n for n, _ in head.named_parameters()}
    assert params == {'bn.weight', 'bn.bias', 'conv_seg.weight', 'conv_seg.bias'}
    assert head.conv_seg.kernel_size == (1, 1) and head.conv_seg.in_channels == 16
    head.eval()
    x = [torch.randn(2, 8, 4, 4), torch.randn(2, 8, 4, 4)]
    out = head(x)
    assert out.shape == (2, 5, 4, 4)
    ref = head.conv_seg(head.bn(torch.cat(x, 1)))
    torch.testing.assert_close(out, ref)


def test_linear_probe_upsamples_logits_to_the_label_and_upsample_option():
    head = LinearProbeHead(in_channels=8, in_index=0, num_classes=3, upsample=2)
    x = [torch.randn(2, 8, 4, 4)]
    assert head(x).shape == (2, 3, 8, 8)
    samples = []
    for _ in range(2):
        s = SegDataSample()
        s.gt_sem_seg = PixelData(data=torch.randint(0, 3, (1, 32, 32)))
        samples.append(s)
    losses = head.loss(x, samples, None)
    assert losses['loss_ce'].requires_grad
    # accuracy = share of label pixels where the bilinearly resized logits pick the label
    logits = F.interpolate(head(x), size=(32, 32), mode='bilinear', align_corners=False)
    labels = torch.cat([s.gt_sem_seg.data for s in samples])
    expected = (logits.argmax(1) == labels).float().mean() * 100
    assert losses['acc_seg'].item() == pytest.approx(expected.item(), abs=1e-3)
    meta = [dict(img_shape=(32, 32), pad_shape=(32, 32))] * 2
    assert head.predict(x, meta, None).shape == (2, 3, 32, 32)


def test_linear_probe_bad_arguments():
    with pytest.raises(ValueError, match='same length'):
        LinearProbeHead(in_channels=[8, 8], in_index=[0], num_classes=3)
    with pytest.raises(ValueError, match='upsample'):
        LinearProbeHead(in_channels=8, in_index=0, num_classes=3, upsample=0)


def test_syncbn_config_gives_syncbn_that_runs_without_distributed():
    head = LinearProbeHead(in_channels=8, in_index=0, num_classes=3,
                           norm_cfg=dict(type='SyncBN', requires_grad=True))
    assert isinstance(head.bn, torch.nn.SyncBatchNorm)
    assert head([torch.randn(2, 8, 3, 3)]).shape == (2, 3, 3, 3)


def tiny(cfg: Config) -> Config:
    bb = cfg.model.backbone
    bb.arch, bb.img_size, bb.init_cfg = TINY_PE, 64, None
    bb.pop('with_cp', None)
    if bb.get('out_indices') and len(bb.out_indices) == 4:
        bb.out_indices = (0, 1, 2, 3)
    return cfg


@pytest.mark.parametrize('name,mode', [
    ('pe_spatial_g14_linear_448_ade20k', 'slide'),
    ('pe_spatial_g14_linear_448_ade20k_whole', 'whole'),
    ('pe_spatial_g14_upernet_448_ade20k', 'slide'),
    ('pe_spatial_g14_upernet_448_ade20k_whole', 'whole'),
])
def test_ade20k_configs_build_and_predict(name, mode):
    cfg = tiny(Config.fromfile(osp.join(CFG_DIR, name + '.py')))
    assert cfg.default_scope == 'mmseg' and 'pe_dense.seg' in cfg.custom_imports.imports
    assert cfg.model.test_cfg.mode == mode
    assert {b['type'] for b in cfg.vis_backends} == {'LocalVisBackend', 'TensorboardVisBackend'}
    if 'linear' in name:
        cfg.model.decode_head.in_channels = [TINY_PE['width']]
        assert cfg.model.backbone.frozen is True
    else:
        assert cfg.model.neck.type == 'SimpleFPN'
        cfg.model.neck.in_channels = TINY_PE['width']
        cfg.model.neck.out_channels = 16
        cfg.model.decode_head.update(in_channels=[16] * 4, channels=16)
        cfg.model.auxiliary_head.update(in_channels=16, channels=8)
        cfg.model.test_cfg.update(crop_size=(64, 64), stride=(48, 48))
    if mode == 'slide':
        cfg.model.test_cfg.update(crop_size=(64, 64), stride=(48, 48))
    for bn in ('decode_head', 'auxiliary_head'):
        if bn in cfg.model:
            cfg.model[bn].norm_cfg = dict(type='BN', requires_grad=True)
    init_default_scope(cfg.default_scope)
    model = MODELS.build(cfg.model)
    model.eval()
    img = torch.randint(0, 255, (3, 70, 100), dtype=torch.uint8)
    sample = SegDataSample(metainfo=dict(ori_shape=(70, 100), img_shape=(70, 100)))
    data = model.data_preprocessor(dict(inputs=[img], data_samples=[sample]), False)
    with torch.no_grad():
        out = model.predict(**data)
    assert out[0].pred_sem_seg.data.shape == (1, 70, 100)
    assert out[0].seg_logits.data.shape == (150, 70, 100)


def test_upernet_config_optimizer_has_layer_decay():
    from mmengine.optim import build_optim_wrapper
    cfg = tiny(Config.fromfile(osp.join(CFG_DIR, 'pe_spatial_g14_upernet_448_ade20k.py')))
    assert cfg.optim_wrapper.paramwise_cfg == dict(num_layers=50, layer_decay_rate=0.9)
    cfg.model.neck.update(in_channels=TINY_PE['width'], out_channels=16)
    cfg.model.decode_head.update(in_channels=[16] * 4, channels=16,
                                 norm_cfg=dict(type='BN', requires_grad=True))
    cfg.model.auxiliary_head.update(in_channels=16, channels=8,
                                    norm_cfg=dict(type='BN', requires_grad=True))
    cfg.optim_wrapper.paramwise_cfg.num_layers = TINY_PE['depth']
    init_default_scope(cfg.default_scope)
    model = MODELS.build(cfg.model)
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    lr = {id(p): g['lr'] for g in wrapper.optimizer.param_groups for p in g['params']}
    base, rate, n = 1e-4, 0.9, TINY_PE['depth']
    assert lr[id(model.backbone.conv1.weight)] == pytest.approx(base * rate ** (n + 1))
    assert lr[id(model.backbone.transformer.resblocks[n - 1].mlp.c_fc.weight)] == \
        pytest.approx(base * rate)
    assert lr[id(model.decode_head.conv_seg.weight)] == pytest.approx(base)


def test_probe_on_patch_tokens_plus_pooled_embedding_of_a_core_arch():
    """with_embedding=True appends the (B, out_dim) embedding, broadcast by the probe."""
    init_default_scope('mmseg')
    core = dict(TINY_PE, pool='attn', out_dim=24, ln_post=True)
    model = MODELS.build(dict(
        type='EncoderDecoder',
        data_preprocessor=dict(type='SegDataPreProcessor', mean=[127.5] * 3, std=[127.5] * 3,
                               size_divisor=8),
        backbone=dict(type='PE', arch=core, out_indices=(-2, -1), with_embedding=True,
                      frozen=True),
        decode_head=dict(type='LinearProbeHead', in_channels=[32, 32, 24], in_index=[0, 1, 2],
                         num_classes=4, norm_cfg=dict(type='BN')),
        test_cfg=dict(mode='whole'))).eval()
    feats = model.extract_feat(torch.randn(2, 3, 40, 48))
    assert [tuple(f.shape) for f in feats] == [(2, 32, 5, 6), (2, 32, 5, 6), (2, 24)]
    assert model.decode_head(feats).shape == (2, 4, 5, 6)
    assert model.decode_head.conv_seg.in_channels == 88
