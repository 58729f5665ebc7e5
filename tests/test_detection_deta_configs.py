"""Full-size DETA recipe configs (built on the meta device) and official checkpoint loading."""
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from pe_dense.models.detectors import deta_convert as dc
from tests.fixtures.small_deta import SMALL, shrink_deta

ROOT = Path(__file__).parents[1]
STAGES = ['deta/pe_spatial_g_o365_stage1_1024.py', 'deta/pe_spatial_g_o365_stage2_1536.py',
          'deta/pe_spatial_g_coco_stage3_1728.py', 'deta/pe_spatial_g_coco_stage4_1824.py']


def _cfg(name):
    return Config.fromfile(str(ROOT / 'configs' / name))


def _build(cfg_model):
    from mmdet.registry import MODELS
    init_default_scope('mmdet')
    return MODELS.build(cfg_model)


@pytest.fixture(scope='module')
def full():
    cfg = _cfg('pe_spatial_detr_coco.py')
    with torch.device('meta'):  # 1.9 B parameters, no memory
        model = _build(cfg.model)
    return cfg, model


def test_full_model_matches_official_architecture(full):
    cfg, model = full
    bb = model.backbone
    assert (bb.embed_dim, bb.depth, bb.num_heads, bb.patch_size) == (1536, 50, 16, 16)
    assert bb.transformer.resblocks[0].mlp.c_fc.out_features == 8960
    assert bb.positional_embedding.shape == (576, 1536) and bb.pos_embed_mode == 'tile'
    assert bb.rope.mode == 'eva' and bb.num_prefix_tokens == 0 and not bb.final_norm
    assert [i for i, b in enumerate(bb.transformer.resblocks) if b.window_size == 0] == [12, 24, 36, 49]
    assert {b.window_size for b in bb.transformer.resblocks} == {0, 24}
    assert bb.transformer.resblocks[0].ls_1.gamma.shape == (1536,)
    assert bb.with_cp
    assert model.num_queries == 900 and model.num_feature_levels == 5
    assert model.as_two_stage and model.with_box_refine
    assert len(model.encoder.layers) == 6 and len(model.decoder.layers) == 6
    enc_attn = model.encoder.layers[0].self_attn
    assert (enc_attn.num_heads, enc_attn.num_levels, enc_attn.num_points) == (8, 5, 4)
    assert model.decoder.layers[0].cross_attn.num_points == 4
    assert model.encoder.layers[0].ffn.layers[0][0].out_features == 2048
    head = model.bbox_head
    assert head.num_classes == 80 and len(head.cls_branches) == 7
    assert (head.loss_cls.loss_weight, head.loss_bbox.loss_weight, head.loss_iou.loss_weight) == (1.0, 5.0, 2.0)
    assert head.loss_cls.alpha == 0.25
    n = sum(p.numel() for p in model.parameters())
    assert 1.85e9 < n < 1.9e9
    # official test: short edge 1792, long edge capped at 1792, zero-padded to 1824 after normalising
    assert cfg.model.data_preprocessor.pad_size_divisor == 1824
    assert cfg.model.data_preprocessor.pad_value == 0
    resize = [t for t in cfg.test_dataloader.dataset.pipeline if t['type'] == 'Resize'][0]
    assert resize['scale'] == (1792, 1792) and resize['keep_ratio']
    assert cfg.model.test_cfg.max_per_img == 100 and cfg.model.test_cfg.nms_iou == 0.7
    assert cfg.model.test_cfg.pre_nms_topk == 10000


def test_official_gwin384_checkpoint_layout_fits_exactly(full):
    _, model = full
    ours = model.state_dict()
    conv = dc.convert_official_deta(dc.random_official_state_dict(dc.DetaSpec(), device='meta'),
                                    dc.COCO_CATEGORY_IDS)
    assert sorted(conv) == sorted(ours)
    assert all(conv[k].shape == ours[k].shape for k in ours)


# Stage hyper-parameters against the official scripts: tests/test_deta_official_flags.py.


def test_final_config_is_stage4_with_tta():
    final, stage4 = _cfg('pe_spatial_detr_coco.py'), _cfg(STAGES[3])
    assert final.model == stage4.model and final.optim_wrapper == stage4.optim_wrapper
    assert final.tta_model.type == 'DETATTAModel'
    assert final.tta_model.tta_cfg.nms == dict(type='soft_nms', method='quad', iou_threshold=0.7,
                                               quad_scale=0.5, min_score=1e-3)
    assert final.tta_model.scale_ranges == [(0, 10000), (0, 10000), (64, 10000), (64, 10000)]
    aug = final.tta_pipeline[1]['transforms']
    assert [t['scale'] for t in aug[0]] == [(1792, 1792), (1728, 1728), (1536, 1536), (1344, 1344)]
    assert [t['prob'] for t in aug[1]] == [0.0, 1.0]
    assert 'flip_direction' in aug[-1][0]['meta_keys']


def _small_model():
    cfg = _cfg('pe_spatial_detr_coco.py')
    shrink_deta(cfg)
    torch.manual_seed(0)
    return _build(cfg.model).eval()


def test_small_official_checkpoint_converts_and_loads_strictly(tmp_path):
    model = _small_model()
    official = dc.random_official_state_dict(SMALL, seed=1)
    path = tmp_path / 'deta_small.pth'
    torch.save({'model': official}, path)
    conv = dc.convert_official_deta(dc.load_official_deta(str(path)), dc.COCO_CATEGORY_IDS,
                                    num_dec_layers=2)
    result = model.load_state_dict(conv, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    sd = model.state_dict()
    pairs = [('backbone.transformer.resblocks.2.attn.in_proj_weight',
              'backbone.0.body.transformer.resblocks.2.attn.in_proj_weight'),
             ('neck.0.fpn1.0.weight', 'backbone.0.body.fpn1.0.weight'),
             ('neck.1.convs.1.gn.weight', 'input_proj.1.1.weight'),
             ('neck.1.extra_convs.0.conv.weight', 'input_proj.3.0.weight'),
             ('level_embed', 'transformer.level_embed'),
             ('memory_trans_norm.bias', 'transformer.enc_output_norm.bias'),
             ('pix_trans_fc.weight', 'transformer.pix_trans.weight'),
             ('decoder.layers.1.norms.2.weight', 'transformer.decoder.layers.1.norm3.weight'),
             ('encoder.layers.0.ffn.layers.1.weight', 'transformer.encoder.layers.0.linear2.weight'),
             ('bbox_head.reg_branches.1.2.bias', 'bbox_embed.1.layers.1.bias')]
    for ours, theirs in pairs:
        assert torch.equal(sd[ours], official[theirs]), ours
    assert torch.equal(sd['backbone.positional_embedding'], official['backbone.0.body.positional_embedding'][0])
    assert torch.equal(sd['bbox_head.cls_branches.0.weight'],
                       official['class_embed.0.weight'][list(dc.COCO_CATEGORY_IDS)])
    # the converted model runs end to end
    from mmdet.structures import DetDataSample
    sample = DetDataSample(metainfo=dict(img_shape=(256, 256), ori_shape=(256, 256),
                                         scale_factor=(1.0, 1.0), batch_input_shape=(256, 256)))
    with torch.no_grad():
        out = model.predict(torch.randn(1, 3, 256, 256), [sample])
    assert len(out[0].pred_instances) <= 100
