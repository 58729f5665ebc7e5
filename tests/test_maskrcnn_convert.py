"""Official PE Mask R-CNN checkpoints -> pe_dense: full-size layout, strict load, safety."""
import importlib.util
from pathlib import Path

import pytest
import torch
from mmengine.config import Config

from pe_dense.models.backbones import CheckpointError
from pe_dense.models.detectors import maskrcnn_convert as mc
from tests.fixtures.maskrcnn_small import build_model, small_maskrcnn_cfg

ROOT = Path(__file__).parents[1]
SMALL = mc.MaskRCNNSpec(embed_dim=64, depth=3, num_heads=4, mlp_dim=128, pos_grid=4,
                        window_size=4, global_attn_indexes=(2,), img_size=128,
                        fpn_dim=32, fc_dim=64, num_classes=80)


class Foreign:
    """A pickled object outside the weights-only allowlist."""


def _cfg(name):
    return Config.fromfile(str(ROOT / 'configs' / 'maskrcnn' / f'{name}.py'))


@pytest.mark.parametrize('name,spec', [
    ('mask_rcnn_PEspatial_G_coco36ep', mc.MaskRCNNSpec()),
    ('mask_rcnn_PEcore_G_lvis75ep', mc.MaskRCNNSpec(layer_scale=False, num_classes=1203,
                                                    fed_loss=True)),
])
def test_released_layout_fits_the_config_model_exactly(name, spec):
    """Every key of the released file (882 / 783, as detectron2 instantiates the official
    config) converts to exactly our model's keys and shapes (meta device: no memory)."""
    with torch.device('meta'):
        ours = build_model(_cfg(name).model).state_dict()
    official = mc.random_official_state_dict(spec, device='meta')
    assert len(official) == {80: 882, 1203: 783}[spec.num_classes]
    conv = mc.convert_official_maskrcnn(official)
    assert sorted(conv) == sorted(ours)
    assert [k for k in ours if conv[k].shape != ours[k].shape] == []


def test_renaming_by_hand():
    pairs = {
        'backbone.net.transformer.resblocks.7.ls_2.gamma': 'backbone.transformer.resblocks.7.ls_2.gamma',
        'backbone.simfp_2.1.weight': 'neck.fpn1.1.weight',
        'backbone.simfp_2.4.norm.bias': 'neck.lateral_convs.0.ln.bias',
        'backbone.simfp_2.5.weight': 'neck.fpn_convs.0.conv.weight',
        'backbone.simfp_3.0.bias': 'neck.fpn2.0.bias',
        'backbone.simfp_3.2.norm.weight': 'neck.fpn_convs.1.ln.weight',
        'backbone.simfp_4.0.weight': 'neck.lateral_convs.2.conv.weight',
        'backbone.simfp_5.1.weight': 'neck.lateral_convs.3.conv.weight',
        'backbone.simfp_5.2.norm.bias': 'neck.fpn_convs.3.ln.bias',
        'proposal_generator.rpn_head.conv.conv1.bias': 'rpn_head.rpn_conv.1.conv.bias',
        'proposal_generator.rpn_head.objectness_logits.weight': 'rpn_head.rpn_cls.weight',
        'proposal_generator.rpn_head.anchor_deltas.bias': 'rpn_head.rpn_reg.bias',
        'roi_heads.box_head.conv1.norm.weight': 'roi_head.bbox_head.shared_convs.0.ln.weight',
        'roi_heads.box_head.fc1.weight': 'roi_head.bbox_head.shared_fcs.0.weight',
        'roi_heads.box_predictor.cls_score.bias': 'roi_head.bbox_head.fc_cls.bias',
        'roi_heads.box_predictor.bbox_pred.weight': 'roi_head.bbox_head.fc_reg.weight',
        'roi_heads.mask_head.mask_fcn4.weight': 'roi_head.mask_head.convs.3.conv.weight',
        'roi_heads.mask_head.deconv.bias': 'roi_head.mask_head.upsample.bias',
        'roi_heads.mask_head.predictor.weight': 'roi_head.mask_head.conv_logits.weight',
    }
    assert {k: mc.rename_official_key(k) for k in pairs} == pairs
    with pytest.raises(CheckpointError, match='backbone.simfp_4.2.weight'):
        mc.rename_official_key('backbone.simfp_4.2.weight')
    with pytest.raises(CheckpointError, match='roi_heads.keypoint_head.x'):
        mc.rename_official_key('roi_heads.keypoint_head.x')


def _tool():
    spec = importlib.util.spec_from_file_location(
        'convert_checkpoint', ROOT / 'tools' / 'convert_checkpoint.py')
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_cli_converts_a_released_layout_file_that_loads_strictly_and_runs(tmp_path, capsys):
    src, dst = tmp_path / 'mask_rcnn_small.pth', tmp_path / 'ours.pth'
    official = mc.random_official_state_dict(SMALL, seed=1)
    torch.save({'model': official, 'iteration': 5}, src)
    _tool().main(['maskrcnn', str(src), str(dst)])
    assert 'wrote' in capsys.readouterr().out
    sd = torch.load(dst, weights_only=True)['state_dict']
    torch.manual_seed(0)
    model = build_model(small_maskrcnn_cfg().model)
    model.load_state_dict(sd, strict=True)
    assert torch.equal(model.backbone.positional_embedding,
                       official['backbone.net.positional_embedding'][0])
    assert torch.equal(model.neck.fpn_convs[3].conv.weight, official['backbone.simfp_5.2.weight'])
    model.eval()
    from mmdet.structures import DetDataSample
    sample = DetDataSample(metainfo=dict(img_shape=(96, 128), ori_shape=(96, 128),
                                         scale_factor=(1.0, 1.0)))
    g = torch.Generator().manual_seed(0)
    data = model.data_preprocessor(dict(inputs=[torch.randint(0, 255, (3, 96, 128), generator=g,
                                                              dtype=torch.uint8)],
                                        data_samples=[sample]))
    with torch.no_grad():
        feats = model.extract_feat(data['inputs'])
        out = model.predict(data['inputs'], data['data_samples'])[0].pred_instances
    assert [tuple(f.shape[-2:]) for f in feats] == [(32, 32), (16, 16), (8, 8), (4, 4), (2, 2)]
    assert all(torch.isfinite(f).all() for f in feats)
    assert len(out) <= 100 and torch.isfinite(out.bboxes).all()


def test_refusals_name_the_problem(tmp_path):
    official = mc.random_official_state_dict(SMALL, seed=2)
    bad = dict(official, **{'roi_heads.keypoint_head.fcn1.weight': torch.zeros(1)})
    with pytest.raises(CheckpointError, match='keypoint_head.fcn1.weight'):
        mc.convert_official_maskrcnn(bad)
    with pytest.raises(CheckpointError, match='rope_win.freqs_cos'):  # another RoPE rule
        mc.convert_official_maskrcnn(official, rope_pt_seq_len=16)
    with pytest.raises(CheckpointError, match='does not match the official Mask R-CNN layout'):
        mc.check_layout(official, mc.MaskRCNNSpec(), 'small.pth')
    mc.check_layout(official, SMALL)
    evil = tmp_path / 'evil.pth'
    torch.save({'model': official, 'trainer': Foreign()}, evil)
    with pytest.raises(CheckpointError, match='evil.pth'):
        mc.load_official(str(evil))


def test_backbone_only_file_initialises_the_config_backbone(tmp_path):
    """``pev1_rc2_*_d2.pt`` = {'model': tower} with a (1, N, C) pos-embed and, for PE-Core,
    the unused pooling head."""
    tower = {k[len('backbone.net.'):]: v
             for k, v in mc.random_official_state_dict(SMALL, seed=3).items()
             if k.startswith('backbone.net.') and 'freqs' not in k}
    tower.update({'ln_post.weight': torch.ones(64), 'proj': torch.zeros(64, 8),
                  'attn_pool.probe': torch.zeros(1, 1, 64)})
    src, dst = tmp_path / 'pev1_rc2_d2.pt', tmp_path / 'tower.pth'
    torch.save({'model': tower}, src)
    sd = mc.convert_file(str(src), str(dst))
    assert 'proj' not in sd and sd['positional_embedding'].shape == (16, 64)
    cfg = small_maskrcnn_cfg()
    cfg.model.backbone.init_cfg = dict(type='Pretrained', checkpoint=str(dst))
    model = build_model(cfg.model)
    model.backbone.init_weights()
    for k, v in sd.items():
        assert torch.equal(model.backbone.state_dict()[k], v), k
    torch.save({'model': dict(tower, **{'visual.extra': torch.zeros(1)})}, src)
    with pytest.raises(CheckpointError, match='visual.extra'):
        mc.convert_file(str(src), str(dst))
