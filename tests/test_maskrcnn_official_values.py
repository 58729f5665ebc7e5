"""The four Mask R-CNN configs carry every value of the official detectron2 LazyConfigs.

The oracle is ``fixtures/maskrcnn_official_values.json``, transcribed by hand from the official
files; ``_ours`` reads the same quantities from our config (and from the model it builds on the
meta device), so changing any value in a config, base config or module default fails here.
"""
import json
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

ROOT = Path(__file__).parents[1]
OFFICIAL = json.loads((ROOT / 'tests' / 'fixtures' / 'maskrcnn_official_values.json').read_text())
NAMES = [k for k in OFFICIAL if not k.startswith('_')]
INIT = {'pe_spatial_G14_16patch.pth': 'checkpoints/PE-Spatial-G14-448.pt',  # same weights,
        'pe_core_G14_448_16patch.pt': 'checkpoints/PE-Core-G14-448.pt'}     # kernel 14 -> 16 on load


def _step(pipeline, name):
    steps = [t for t in pipeline if t['type'] == name]
    assert len(steps) == 1, f'{name} in {[t["type"] for t in pipeline]}'
    return steps[0]


def _ours(cfg, model):
    """Our config's value of every official key (model on the meta device)."""
    m, bb = cfg.model, model.backbone
    blocks = bb.transformer.resblocks
    dp = m.data_preprocessor
    rpn, roi = m.rpn_head, m.roi_head
    tr, te = m.train_cfg, m.test_cfg
    loss_cls = roi.bbox_head.loss_cls
    fed = loss_cls.type == 'FederatedSigmoidCELoss'
    opt, pw = cfg.optim_wrapper, cfg.optim_wrapper.paramwise_cfg
    warm, steps = cfg.param_scheduler
    train_pipe = cfg.train_dataloader.dataset.pipeline
    test_pipe = cfg.test_dataloader.dataset.pipeline
    crop, resize = _step(train_pipe, 'RandomCrop'), _step(train_pipe, 'RandomResize')
    test_resize = _step(test_pipe, 'Resize')
    ev = cfg.test_evaluator
    neck = model.neck
    ls = blocks[0].ls_1
    lvis = cfg.train_dataloader.dataset.type == 'LVISV1Dataset'
    global_idx = [i for i, b in enumerate(blocks) if b.window_size == 0]
    return {
        'pixel_mean': [int(v) for v in dp.mean], 'pixel_std': [int(v) for v in dp.std],
        'input_format': 'RGB' if dp.bgr_to_rgb else 'BGR',
        'img_size': dp.pad_size_divisor, 'patch_size': bb.patch_size, 'embed_dim': bb.embed_dim,
        'depth': bb.depth, 'num_heads': bb.num_heads,
        'mlp_ratio_times_dim': blocks[0].mlp.c_fc.out_features,
        'drop_path_rate': blocks[-1].drop_path.drop_prob,
        'pretrain_img_size': bb.grid * bb.patch_size,
        'window_size': max(b.window_size for b in blocks),
        'pt_hw_seq_len': bb.rope.pt_seq_len if bb.rope.mode == 'eva' else None,
        'global_block_indexes': global_idx,
        'tile_posemb': bb.pos_embed_mode == 'tile',
        'use_abs_pos': bb.positional_embedding is not None,
        'pretrain_use_cls_token': bool(bb.has_cls),
        'use_act_checkpoint': bb.with_cp,
        'qkv_bias': blocks[0].attn.in_proj_bias is not None,
        'init_values': m.backbone.arch.layer_scale if hasattr(ls, 'gamma') else None,
        'fpn_out_channels': neck.out_channels,
        'fpn_scale_factors': list(neck.scale_factors),
        'fpn_top_block': 'LastLevelMaxPool' if neck.num_outs == len(neck.scale_factors) + 1 else None,
        'fpn_norm': 'LN' if (type(neck.lateral_convs[0].norm).__name__ == 'LayerNorm2d'
                             and neck.lateral_convs[0].norm.eps == 1e-6
                             and neck.fpn1[1].eps == 1e-6) else None,
        'square_pad': dp.pad_size_divisor,
        'rpn_num_convs': rpn.num_convs,
        'anchor_sizes': [int(s * rpn.anchor_generator.scales[0])
                         for s in rpn.anchor_generator.strides],
        'anchor_aspect_ratios': rpn.anchor_generator.ratios,
        'anchor_strides': rpn.anchor_generator.strides,
        'anchor_offset': float(model.rpn_head.prior_generator.center_offset),
        'rpn_iou_thresholds': [tr.rpn.assigner.neg_iou_thr, tr.rpn.assigner.pos_iou_thr],
        'rpn_allow_low_quality_matches': (tr.rpn.assigner.match_low_quality
                                          and tr.rpn.assigner.min_pos_iou == 0.0),
        'rpn_box_weights': [1 / s for s in rpn.bbox_coder.target_stds],
        'rpn_batch_size_per_image': tr.rpn.sampler.num,
        'rpn_positive_fraction': tr.rpn.sampler.pos_fraction,
        'rpn_pre_nms_topk': [tr.rpn_proposal.nms_pre, te.rpn.nms_pre],
        'rpn_post_nms_topk': [tr.rpn_proposal.max_per_img, te.rpn.max_per_img],
        'rpn_nms_thresh': te.rpn.nms.iou_threshold if te.rpn.nms.iou_threshold
        == tr.rpn_proposal.nms.iou_threshold else None,
        'roi_batch_size_per_image': tr.rcnn.sampler.num,
        'roi_positive_fraction': tr.rcnn.sampler.pos_fraction,
        'roi_iou_threshold': tr.rcnn.assigner.pos_iou_thr if tr.rcnn.assigner.pos_iou_thr
        == tr.rcnn.assigner.neg_iou_thr else None,
        'roi_allow_low_quality_matches': tr.rcnn.assigner.match_low_quality,
        'box_in_strides': roi.bbox_roi_extractor.featmap_strides,
        'box_pooler_size': roi.bbox_roi_extractor.roi_layer.output_size,
        'mask_pooler_size': roi.mask_roi_extractor.roi_layer.output_size,
        'pooler_sampling_ratio': roi.bbox_roi_extractor.roi_layer.sampling_ratio,
        'pooler_type': 'ROIAlignV2' if model.roi_head.bbox_roi_extractor.roi_layers[0].aligned
        and model.roi_head.mask_roi_extractor.roi_layers[0].aligned else 'ROIAlign',
        'box_head_conv_dims': [c.conv.out_channels for c in model.roi_head.bbox_head.shared_convs],
        'box_head_fc_dims': [f.out_features for f in model.roi_head.bbox_head.shared_fcs],
        'box_head_conv_norm': 'LN' if roi.bbox_head.norm_cfg == dict(type='LN2d', eps=1e-6) else None,
        'mask_head_conv_dims': len(model.roi_head.mask_head.convs),
        'mask_head_conv_norm': 'LN' if roi.mask_head.norm_cfg == dict(type='LN2d', eps=1e-6) else None,
        'box_reg_weights': [round(1 / s) for s in roi.bbox_head.bbox_coder.target_stds],
        'smooth_l1_beta': 0.0 if roi.bbox_head.loss_bbox.type == 'L1Loss' else None,
        'optimizer': opt.optimizer.type, 'lr': opt.optimizer.lr,
        'betas': list(opt.optimizer.betas), 'weight_decay': opt.optimizer.weight_decay,
        'weight_decay_norm': None if pw.decay_all_params else 0.0,
        'overrides': dict(pw.get('custom_keys', {})),
        'lr_decay_rate': pw.layer_decay_rate, 'lr_decay_num_layers': pw.num_layers,
        'amp': opt.type == 'AmpOptimWrapper' and opt.get('dtype') in (None, 'float16'),
        'total_batch_size': cfg.auto_scale_lr.base_batch_size,  # 1 image x 64 GPUs
        'lr_values': [1.0, steps['gamma'], round(steps['gamma'] ** 2, 12)],
        'warmup_iters': warm['end'], 'warmup_factor': warm['start_factor'],
        'checkpoint_period': cfg.default_hooks.checkpoint.interval,
        'log_period': cfg.default_hooks.logger.interval,
        'train_flip': 'horizontal' if _step(train_pipe, 'RandomFlip').get(
            'direction', 'horizontal') == 'horizontal' else None,
        'train_resize_scale': list(resize['ratio_range']) if resize['scale'] == (1024, 1024) else None,
        'train_crop': crop['crop_size'][0] if crop['crop_size'] == (1024, 1024) else None,
        'train_crop_pad': False if 'Pad' not in [t['type'] for t in train_pipe] else True,
        'recompute_boxes': crop['recompute_bbox'],
        'filter_empty': cfg.train_dataloader.dataset.filter_cfg.filter_empty_gt,
        'test_short_edge': min(test_resize['scale']), 'test_max_size': max(test_resize['scale']),
        'num_workers': cfg.train_dataloader.num_workers,
        'num_classes': roi.bbox_head.num_classes if roi.bbox_head.num_classes
        == roi.mask_head.num_classes else None,
        'test_score_thresh': te.rcnn.score_thr, 'test_topk_per_image': te.rcnn.max_per_img,
        'use_sigmoid_ce': fed, 'use_fed_loss': fed and loss_cls.get('use_fed_loss', True),
        **({'fed_loss_freq_weight_power': loss_cls.freq_weight_power,
            'fed_loss_num_classes': loss_cls.num_fed_loss_classes} if fed else {}),
        'train_dataset': ('lvis_v1_train' if lvis and cfg.train_dataloader.dataset.ann_file
                          == 'annotations/lvis_v1_train.json' else 'coco_2017_train'
                          if cfg.train_dataloader.dataset.ann_file
                          == 'annotations/instances_train2017.json' else None),
        'test_dataset': ('lvis_v1_val' if ev.get('ann_file', '').endswith('lvis_v1_val.json')
                         else 'coco_2017_val' if ev.ann_file.endswith('instances_val2017.json')
                         else None),
        'evaluator': {'CocoMetric': 'COCOEvaluator', 'LVISMetric': 'LVISEvaluator'}[ev.type],
        'eval_iou_types': list(ev.metric),
        'eval_period': cfg.train_cfg.val_interval,
        'repeat_thresh': cfg.train_dataloader.sampler.get('repeat_thresh'),
        'max_dets_per_image': 300 if ev.type == 'LVISMetric' else 100,  # the metrics' fixed limits
        'max_iter': cfg.train_cfg.max_iters, 'milestones': steps['milestones'],
        'init_checkpoint': m.backbone.init_cfg.checkpoint,
    }


@pytest.fixture(scope='module', params=NAMES)
def built(request):
    from mmdet.registry import MODELS
    init_default_scope('mmdet')
    cfg = Config.fromfile(str(ROOT / 'configs' / 'maskrcnn' / f'{request.param}.py'))
    with torch.device('meta'):  # 1.9 B parameters, no memory
        model = MODELS.build(cfg.model)
    return request.param, cfg, model


def test_every_official_value(built):
    name, cfg, model = built
    official = dict(OFFICIAL[name])
    official.pop('source')
    official['init_checkpoint'] = INIT[official['init_checkpoint']]
    ours = _ours(cfg, model)
    assert sorted(ours) == sorted(official)
    wrong = {k: (ours[k], official[k]) for k in official if ours[k] != official[k]}
    assert not wrong, f'{name}: (ours, official) differ: {wrong}'


def test_structure_follows_pev1_det(built):
    """Per-block facts the summary values above cannot show."""
    name, cfg, model = built
    bb = model.backbone
    blocks = bb.transformer.resblocks
    assert [b.window_size for b in blocks] == [0 if i in (12, 24, 36, 49) else 32 for i in range(50)]
    assert [b.drop_path.drop_prob for b in blocks[1:]] == pytest.approx(
        [0.5 * i / 49 for i in range(1, 50)])  # torch.linspace(0, 0.5, 50)
    assert all(b.ln_1.eps == 1e-5 and b.ln_2.eps == 1e-5 for b in blocks) and bb.ln_pre.eps == 1e-5
    assert bb.positional_embedding.shape == (1024, 1536) and not hasattr(bb, 'class_embedding')
    assert not hasattr(bb, 'ln_post') and not hasattr(bb, 'attn_pool') and not bb.final_norm
    assert bb.conv1.bias is None and bb.conv1.kernel_size == (16, 16)
    has_ls = OFFICIAL[name]['init_values'] is not None
    assert all(hasattr(b.ls_1, 'gamma') == has_ls for b in blocks)
    assert type(model.rpn_head.loss_bbox).__name__ == 'L1Loss'
    assert cfg.train_dataloader.batch_size == 1 and not cfg.auto_scale_lr.enable
    n = sum(p.numel() for p in model.parameters())
    assert 1.88e9 < n < 1.92e9, n
