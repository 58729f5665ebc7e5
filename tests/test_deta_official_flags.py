"""Every value of the official DETA_pe runs, checked in the configs that reproduce them.

``fixtures/deta_official_flags.json`` transcribes the four training scripts, the TTA and plain
evaluation scripts and main.py's defaults (facebookresearch/perception_models,
apps/detection/DETA_pe). A config that drifts from any of them fails here; a deliberate
deviation belongs in an opt-in variant config (docs/reproduction.md, "Opt-in variants").
"""
import json
import os.path as osp
import re

import pytest
from mmdet.registry import TASK_UTILS
from mmengine.config import Config

import pe_dense.det  # noqa: F401  registers the DETA assigners

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
FLAGS = json.load(open(osp.join(ROOT, 'tests/fixtures/deta_official_flags.json')))
COMMON = FLAGS['common']


def _cfg(path):
    return Config.fromfile(osp.join(ROOT, path))


def _find(pipeline, type_):
    hits = [t for t in pipeline if t['type'] == type_]
    assert len(hits) == 1, f'{type_} appears {len(hits)} times'
    return hits[0]


def _lr_mult(paramwise, name):
    """lr multiplier MMEngine's DefaultOptimWrapperConstructor gives parameter ``name``."""
    for key in sorted(paramwise.get('custom_keys', {}), key=len, reverse=True):
        if key in name:
            return paramwise['custom_keys'][key].get('lr_mult', 1.0)
    return 1.0


def check_model(model, flags):
    c = COMMON
    assert model.type == 'DETA'
    assert model.num_queries == flags['num_queries']
    assert model.num_feature_levels == c['num_feature_levels']
    assert model.neck[1].num_outs == c['num_feature_levels']
    enc, dec = model.encoder, model.decoder
    assert (enc.num_layers, dec.num_layers) == (c['enc_layers'], c['dec_layers'])
    for attn, points in ((enc.layer_cfg.self_attn_cfg, c['enc_n_points']),
                         (dec.layer_cfg.cross_attn_cfg, c['dec_n_points'])):
        assert (attn.embed_dims, attn.num_heads, attn.num_points, attn.dropout) == (
            c['hidden_dim'], c['nheads'], points, c['dropout'])
    for layer in (enc.layer_cfg, dec.layer_cfg):
        assert layer.ffn_cfg.feedforward_channels == c['dim_feedforward']
        assert layer.ffn_cfg.ffn_drop == c['dropout']
    assert dec.layer_cfg.self_attn_cfg.dropout == c['dropout']
    head = model.bbox_head
    assert head.loss_cls.loss_weight == c['cls_loss_coef']
    assert head.loss_cls.alpha == c['focal_alpha'] and head.loss_cls.gamma == 2.0
    assert head.loss_bbox.loss_weight == c['bbox_loss_coef']
    assert head.loss_iou.loss_weight == c['giou_loss_coef']
    # --assign_second_stage: Stage2Assigner(num_queries); --assign_first_stage: Stage1Assigner
    s2 = TASK_UTILS.build(model.train_cfg.assigner)
    s1 = TASK_UTILS.build(model.train_cfg.enc_assigner)
    for a, expected in ((s2, (flags['num_queries'], 0.6, 0.6, 0.25, 4, True)),
                        (s1, (256, 0.7, 0.3, 0.5, 4, True))):
        assert (a.sampler.num, a.pos_iou_thr, a.neg_iou_thr, a.sampler.pos_fraction, a.max_k,
                a.match_low_quality) == expected
    bb = model.backbone
    assert bb.arch == 'PE-Spatial-G14-448' and bb.patch_size == 16 and bb.img_size == 384
    assert bb.pos_embed_mode == 'tile' if c['backbone_tile_posemb'] else bb.pos_embed_mode != 'tile'
    assert bb.drop_path_rate == flags['drop_path']
    assert model.backbone_autocast == ('bfloat16' if flags['bf16'] else None)


def check_training(cfg, flags):
    c = COMMON
    assert cfg.train_cfg.max_epochs == flags['epochs']
    # torch StepLR(step_size=lr_drop): x0.1 at every multiple of lr_drop within the run
    (sched, ) = cfg.param_scheduler
    assert sched.type == 'MultiStepLR' and sched.gamma == 0.1 and sched.by_epoch
    assert sched.milestones == list(range(flags['lr_drop'], flags['epochs'], flags['lr_drop']))
    ow = cfg.optim_wrapper
    # --bf16 autocasts the backbone only: no mixed precision around the rest
    assert ow.type == 'OptimWrapper'
    opt = ow.optimizer
    if flags['sgd']:
        assert (opt.type, opt.momentum) == ('SGD', 0.9)
    else:
        assert opt.type == 'AdamW'
    assert opt.lr == flags['lr']
    assert opt.weight_decay == c['weight_decay']
    assert ow.clip_grad == dict(max_norm=c['clip_max_norm'], norm_type=2)
    paramwise = ow.get('paramwise_cfg', {})
    assert _lr_mult(paramwise, 'backbone.transformer.resblocks.3.mlp.c_fc.weight') * opt.lr == \
        flags['lr_backbone']
    for name in ('encoder.layers.0.self_attn.sampling_offsets.weight',
                 'decoder.layers.5.cross_attn.sampling_offsets.bias'):
        assert _lr_mult(paramwise, name) == c['lr_linear_proj_mult']
    assert _lr_mult(paramwise, 'bbox_head.cls_branches.0.weight') == 1.0
    # weight decay on every parameter, no layer decay (lrd_applied 1.0)
    assert flags['lrd_applied'] == 1.0
    assert ow.get('constructor', 'DefaultOptimWrapperConstructor') == \
        'DefaultOptimWrapperConstructor'
    assert not set(paramwise) - {'custom_keys'}
    assert all(set(v) <= {'lr_mult'} for v in paramwise.get('custom_keys', {}).values())
    # batch: per GPU, and the total the lr was set for
    assert cfg.train_dataloader.batch_size == flags['batch_size']
    assert cfg.auto_scale_lr.base_batch_size == flags['batch_size'] * flags['gpus']
    assert not cfg.auto_scale_lr.enable
    assert cfg.randomness.seed == c['seed']
    # class heads: --finetune drops class_embed unless --keep_class_embed
    drops = [h for h in cfg.custom_hooks if h['type'] == 'DropLoadedKeysHook']
    if flags['keep_class_embed'] is None:
        assert cfg.load_from is None and not drops
        assert cfg.model.backbone.init_cfg.checkpoint.endswith('PE-Spatial-G14-448.pt')
    else:
        assert cfg.load_from is not None and cfg.model.backbone.init_cfg is None
        dropped = [k for k in ('bbox_head.cls_branches.0.weight', 'bbox_head.cls_branches.6.bias',
                               'bbox_head.reg_branches.0.0.weight', 'backbone.conv1.weight')
                   if any(re.search(p, k) for h in drops for p in h['patterns'])]
        expected = [] if flags['keep_class_embed'] else ['bbox_head.cls_branches.0.weight',
                                                         'bbox_head.cls_branches.6.bias']
        assert dropped == expected


def check_data(cfg, flags):
    size = flags['lsj_size']
    max_size = size - 32
    assert cfg.model.data_preprocessor.pad_size_divisor == size
    assert cfg.model.data_preprocessor.pad_value == 0
    dataset = cfg.train_dataloader.dataset
    assert dataset.type == {'coco': 'CheckedCocoDataset',
                            'objects365': 'Objects365V2Dataset'}[flags['dataset']]
    assert cfg.model.bbox_head.num_classes == {'coco': 80, 'objects365': 365}[flags['dataset']]
    assert dataset.filter_cfg.filter_empty_gt is False  # the official loader keeps them
    pipe = dataset.pipeline
    assert _find(pipe, 'RandomFlip').prob == 0.5
    assert _find(pipe, 'FilterAnnotations').keep_empty is False
    multi, crop = _find(pipe, 'RandomChoice').transforms
    assert multi == [dict(type='RandomChoiceResize', keep_ratio=True,
                          scales=[(max_size, s) for s in range(480, size, 32)])]
    assert crop[0].scales == [(100000, s) for s in (400, 500, 600)]
    assert (crop[1].type, crop[1].crop_type, crop[1].crop_size) == (
        'RandomCrop', 'absolute_range', (384, 600))
    assert crop[2].scales == [(max_size, max_size)]
    assert [t['type'] for t in pipe].index('RandomFlip') < [t['type'] for t in pipe].index(
        'RandomChoice')  # flip first
    test = cfg.test_dataloader.dataset.pipeline
    assert _find(test, 'Resize').scale == (max_size, max_size)


@pytest.mark.parametrize('flags', FLAGS['stages'], ids=lambda f: osp.basename(f['config']))
def test_training_stage_equals_the_official_script(flags):
    cfg = _cfg(flags['config'])
    check_model(cfg.model, flags)
    check_training(cfg, flags)
    check_data(cfg, flags)


def test_evaluation_equals_the_official_scripts():
    e = FLAGS['eval']
    cfg = _cfg(e['config'])
    assert cfg.model.num_queries == e['plain_num_queries']
    assert _find(cfg.test_dataloader.dataset.pipeline, 'Resize').scale == (e['lsj_size'] - 32, ) * 2
    assert cfg.test_evaluator.proposal_nums == tuple(e['coco_max_dets'])
    tta = cfg.tta_model
    assert tta.type == 'DETATTAModel' and tta.num_queries == e['tta_num_queries']
    assert [list(r) for r in tta.scale_ranges] == e['tta_scale_ranges']
    for nms in (tta.view_test_cfg.soft_nms, tta.tta_cfg.nms):
        assert (nms.method, nms.iou_threshold, nms.quad_scale) == (
            e['soft_nms_method'], e['nms_thresh'], e['quad_scale'])
    assert tta.tta_cfg.max_per_img is None  # every survivor of the merge is scored
    assert tta.view_test_cfg.max_per_img is None
    views = cfg.tta_pipeline[1].transforms
    assert [t.scale for t in views[0]] == [(s, s) for s in e['tta_max_sizes']]
    assert [t.prob for t in views[1]] == [0., 1.]
    # the top-level config is the final stage (what the released weights are)
    stage4 = _cfg(FLAGS['stages'][-1]['config'])
    assert cfg.model == stage4.model and cfg.tta_model == stage4.tta_model


def test_renamed_entry_point_is_the_same_config():
    old, new = _cfg('configs/pe_spatial_detr_coco.py'), _cfg('configs/pe_spatial_deta_coco.py')
    assert old.to_dict() == new.to_dict()
