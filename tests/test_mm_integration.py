"""Stock MMDetection / MMSegmentation configs with the backbone swapped for a tiny PE."""
import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from pe_dense.toy import make_toy


def tiny_pe(**kw) -> dict:
    """A fresh dict each time: merging a config pops ``_delete_`` from the dict it is given."""
    return dict(_delete_=True, type='PE', out_indices=(0, 1, 2, 3),
                arch=dict(patch_size=16, width=64, depth=4, heads=4, mlp_dim=128, img_size=64,
                          cls_token=True), **kw)


def _stock(package: str, rel: str) -> Config:
    """A config shipped inside an installed OpenMMLab package (its .mim/configs folder)."""
    import importlib
    import os
    root = os.path.dirname(importlib.import_module(package).__file__)
    cfg = Config.fromfile(os.path.join(root, '.mim', 'configs', rel))
    cfg.custom_imports = dict(imports=['pe_dense.backbone', 'pe_dense.models.necks'],
                              allow_failed_imports=False)  # PE and SimpleFPN
    from mmengine.utils import import_modules_from_strings
    import_modules_from_strings(**cfg.custom_imports)  # as Config.fromfile does for a file
    return cfg


def _one_iteration(cfg: Config, work_dir) -> Runner:
    cfg.work_dir = str(work_dir)
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=1, val_interval=1000)
    cfg.param_scheduler = []
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=1000)
    cfg.visualizer.vis_backends = [dict(type='LocalVisBackend')]
    cfg.train_dataloader.batch_size = 2
    cfg.train_dataloader.num_workers = 0
    cfg.train_dataloader.persistent_workers = False
    cfg.train_dataloader.sampler = dict(type='InfiniteSampler', shuffle=True)
    cfg.log_level = 'WARNING'
    for key in ('val_dataloader', 'val_cfg', 'val_evaluator', 'test_dataloader', 'test_cfg',
                'test_evaluator'):
        cfg[key] = None
    runner = Runner.from_cfg(cfg)
    params = {k: v.detach().clone() for k, v in runner.model.backbone.named_parameters()}
    runner.train()
    changed = [k for k, v in runner.model.backbone.named_parameters() if not torch.equal(v, params[k])]
    assert changed, 'one optimizer step must update the PE backbone'
    return runner


@pytest.mark.slow
def test_stock_upernet_with_tiny_pe_trains_one_iteration(tmp_path):
    make_toy('ade20k', str(tmp_path / 'ade'), num_train=4, num_val=2)
    cfg = _stock('mmseg', 'vit/vit_deit-s16_mln_upernet_8xb2-160k_ade20k-512x512.py')
    bn = dict(type='BN', requires_grad=True)
    cfg.merge_from_dict(dict(model=dict(
        pretrained=None,
        data_preprocessor=dict(size=(128, 128)),
        backbone=tiny_pe(),
        neck=dict(in_channels=[64] * 4, out_channels=64),
        decode_head=dict(in_channels=[64] * 4, channels=32, norm_cfg=bn),
        auxiliary_head=dict(in_channels=64, channels=32, norm_cfg=bn))))
    cfg.train_dataloader.dataset.data_root = str(tmp_path / 'ade')
    cfg.train_dataloader.dataset.pipeline = [
        dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', reduce_zero_label=True),
        dict(type='RandomCrop', crop_size=(128, 128)), dict(type='PackSegInputs')]
    cfg.optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-3))
    _one_iteration(cfg, tmp_path / 'work')


@pytest.mark.slow
def test_stock_mask_rcnn_with_tiny_pe_trains_one_iteration(tmp_path):
    make_toy('coco', str(tmp_path / 'coco'), num_train=4, num_val=2)
    cfg = _stock('mmdet', 'mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py')
    cfg.merge_from_dict(dict(model=dict(
        backbone=dict(tiny_pe(), out_indices=(-1,)),
        neck=dict(_delete_=True, type='SimpleFPN', in_channels=64, out_channels=64,
                  scale_factors=(4.0, 2.0, 1.0, 0.5), num_outs=5,
                  norm_cfg=dict(type='LN2d', requires_grad=True)),
        rpn_head=dict(in_channels=64, feat_channels=64),
        roi_head=dict(bbox_roi_extractor=dict(out_channels=64),
                      bbox_head=dict(in_channels=64, fc_out_channels=64, num_classes=3),
                      mask_roi_extractor=dict(out_channels=64),
                      mask_head=dict(in_channels=64, conv_out_channels=64, num_classes=3)))))
    ds = cfg.train_dataloader.dataset
    ds.data_root = str(tmp_path / 'coco')
    ds.metainfo = dict(classes=('circle', 'square', 'triangle'))
    ds.pipeline = [
        dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
        dict(type='Resize', scale=(128, 128), keep_ratio=True), dict(type='PackDetInputs')]
    cfg.optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-4))
    _one_iteration(cfg, tmp_path / 'work')
