"""ViTDet-style Mask R-CNN configs on PE: full-size build (meta device) and a tiny loss step."""
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

ROOT = Path(__file__).parents[1] / 'configs' / 'maskrcnn'


def _build(model_cfg):
    from mmdet.registry import MODELS
    init_default_scope('mmdet')
    return MODELS.build(model_cfg)


@pytest.mark.parametrize('name,classes,epochs,steps,dataset', [
    ('pe_spatial_g_maskrcnn_coco_36e.py', 80, 36, [32, 35], 'CheckedCocoDataset'),
    ('pe_spatial_g_maskrcnn_lvis_75e.py', 1203, 75, [67, 72], 'ClassBalancedDataset'),
])
def test_full_size_configs_build(name, classes, epochs, steps, dataset):
    cfg = Config.fromfile(str(ROOT / name))
    with torch.device('meta'):
        model = _build(cfg.model)
    assert type(model).__name__ == 'MaskRCNN'
    assert model.backbone.embed_dim == 1536 and model.backbone.patch_size == 16
    assert [i for i, b in enumerate(model.backbone.transformer.resblocks) if not b.window_size] \
        == [12, 24, 36, 49]
    assert model.neck.scale_factors == (4.0, 2.0, 1.0, 0.5) and model.neck.num_outs == 5
    assert type(model.neck.lateral_convs[0].norm).__name__ == 'LayerNorm2d'
    assert model.rpn_head.prior_generator.strides == [(4, 4), (8, 8), (16, 16), (32, 32), (64, 64)]
    assert model.roi_head.bbox_head.num_classes == classes
    assert model.roi_head.mask_head.num_classes == classes
    assert type(model.roi_head.bbox_head).__name__ == 'Shared4Conv1FCBBoxHead'
    assert cfg.train_cfg.max_epochs == epochs and cfg.param_scheduler[1]['milestones'] == steps
    assert cfg.train_dataloader.dataset.type == dataset
    assert cfg.optim_wrapper.optimizer.lr == 1e-4 and cfg.optim_wrapper.optimizer.weight_decay == 0.1
    assert cfg.optim_wrapper.paramwise_cfg.num_layers == 50
    crop = [t for t in cfg.train_pipeline if t['type'] == 'RandomCrop'][0]
    assert crop['crop_size'] == (1024, 1024)


def test_tiny_maskrcnn_loss_step():
    from mmdet.structures import DetDataSample
    from mmdet.structures.mask import BitmapMasks
    from mmengine.structures import InstanceData
    cfg = Config.fromfile(str(ROOT / 'pe_spatial_g_maskrcnn_coco_36e.py'))
    cfg.model.backbone.arch = dict(patch_size=16, width=64, depth=2, heads=4, mlp_dim=128,
                                   layer_scale=0.1, img_size=64)
    cfg.merge_from_dict({'model.backbone.patch_size': None, 'model.backbone.img_size': None,
                         'model.backbone.window_size': 4, 'model.backbone.global_attn_indexes': (1,),
                         'model.backbone.init_cfg': None, 'model.backbone.with_cp': False,
                         'model.neck.in_channels': 64, 'model.neck.out_channels': 32,
                         'model.rpn_head.in_channels': 32, 'model.rpn_head.feat_channels': 32,
                         'model.roi_head.bbox_roi_extractor.out_channels': 32,
                         'model.roi_head.mask_roi_extractor.out_channels': 32,
                         'model.roi_head.bbox_head.in_channels': 32,
                         'model.roi_head.bbox_head.conv_out_channels': 32,
                         'model.roi_head.bbox_head.fc_out_channels': 64,
                         'model.roi_head.mask_head.in_channels': 32,
                         'model.roi_head.mask_head.conv_out_channels': 32,
                         'model.data_preprocessor.batch_augments': None})
    torch.manual_seed(0)
    model = _build(cfg.model)
    model.init_weights()
    mask = np.zeros((1, 128, 128), np.uint8)
    mask[0, 20:80, 30:90] = 1
    sample = DetDataSample(metainfo=dict(img_shape=(128, 128), ori_shape=(128, 128),
                                         pad_shape=(128, 128), batch_input_shape=(128, 128),
                                         scale_factor=(1.0, 1.0)))
    sample.gt_instances = InstanceData(bboxes=torch.tensor([[30., 20., 90., 80.]]),
                                       labels=torch.tensor([3]), masks=BitmapMasks(mask, 128, 128))
    losses = model.loss(torch.randn(1, 3, 128, 128), [sample])
    assert {'loss_rpn_cls', 'loss_cls', 'loss_bbox', 'loss_mask'} <= set(losses)
    total = sum(v.sum() if isinstance(v, torch.Tensor) else sum(x.sum() for x in v)
                for k, v in losses.items() if 'loss' in k)
    total.backward()
    assert model.backbone.transformer.resblocks[0].attn.in_proj_weight.grad.abs().sum() > 0
    assert torch.isfinite(total)
