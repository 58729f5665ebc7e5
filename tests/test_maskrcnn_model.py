"""Mask R-CNN parts not in MMDetection: federated sigmoid CE (LVIS), repeat-factor sampling,
and a loss step of a reduced official-recipe model (COCO and LVIS heads)."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.registry import init_default_scope

from pe_dense.datasets.repeat_factor_sampler import RepeatFactorSampler, epoch_indices, repeat_factors
from pe_dense.models.losses.federated_loss import (FederatedSigmoidCELoss, federated_classes,
                                                   lvis_fed_loss_weights)
from tests.fixtures.maskrcnn_small import build_model, small_maskrcnn_cfg



def _bce(x, t):
    return float(np.log1p(np.exp(-x)) if t else np.log1p(np.exp(x)))


def test_federated_loss_by_hand():
    # 3 RoIs, 4 classes (+ background column). Labels 1, 3 and background (4): with
    # num_fed_loss_classes=3 the three distinct labels already fill the quota, so the loss
    # covers classes {1, 3} only (the background label counts but has no column).
    logits = torch.tensor([[0.5, -1.0, 2.0, 0.0, 9.0],
                           [1.5, 0.3, -0.7, 1.2, 9.0],
                           [-2.0, 0.8, 0.1, -0.4, 9.0]])
    labels = torch.tensor([1, 3, 4])
    loss = FederatedSigmoidCELoss(4, class_weights=[1., 1., 1., 1.], num_fed_loss_classes=3)
    got = loss(logits, labels)
    want = (_bce(-1.0, 1) + _bce(0.0, 0) + _bce(0.3, 0) + _bce(1.2, 1) + _bce(0.8, 0) + _bce(-0.4, 0)) / 3
    assert float(got) == pytest.approx(want, rel=1e-6)
    # plain sigmoid CE over all 4 classes
    plain = FederatedSigmoidCELoss(4, use_fed_loss=False)(logits, labels)
    target = torch.tensor([[0, 1, 0, 0], [0, 0, 0, 1], [0, 0, 0, 0]], dtype=torch.float)
    assert float(plain) == pytest.approx(
        float(F.binary_cross_entropy_with_logits(logits[:, :4], target, reduction='sum') / 3))


def test_federated_classes_draw_negatives_by_weight_and_count_background():
    weights = torch.tensor([0., 0., 5., 0., 0., 2.])  # only classes 2 and 5 can be drawn
    g = torch.Generator().manual_seed(0)
    # labels {0, 6 (background)}: 2 present, quota 4 -> 2 negatives, necessarily {2, 5}
    got = federated_classes(torch.tensor([0, 6, 6]), 6, 4, weights, generator=g)
    assert sorted(got.tolist()) == [0, 2, 5, 6]
    # without background: 1 present, quota 3 -> the same 2 negatives
    assert sorted(federated_classes(torch.tensor([0, 0]), 6, 3, weights, generator=g).tolist()) \
        == [0, 2, 5]
    # quota already met: nothing drawn
    assert sorted(federated_classes(torch.tensor([3, 1, 3]), 6, 2, weights).tolist()) == [1, 3]


def test_lvis_weights_from_annotation_file(tmp_path):
    ann = tmp_path / 'lvis.json'
    ann.write_text(json.dumps({'categories': [{'id': 2, 'image_count': 9},
                                              {'id': 1, 'image_count': 16}]}))
    assert lvis_fed_loss_weights(str(ann), 0.5).tolist() == [4.0, 3.0]  # ordered by id
    ann.write_text(json.dumps({'categories': [{'id': 1}]}))
    with pytest.raises(ValueError, match='image_count'):
        lvis_fed_loss_weights(str(ann))
    loss = FederatedSigmoidCELoss(3, ann_file=str(tmp_path / 'missing.json'))  # read lazily
    with pytest.raises(ValueError, match='missing.json'):
        loss(torch.zeros(2, 4), torch.tensor([0, 3]))


def test_repeat_factors_by_hand():
    # 4 images; category 7 in 1 of 4 images (f = 0.25), category 8 in 3 (f = 0.75)
    cats = [[7, 8], [8], [8, 8], []]
    r = repeat_factors(cats, 1.0)
    assert r == pytest.approx([2.0, 1 / 0.75 ** 0.5, 1 / 0.75 ** 0.5, 1.0])
    factors = torch.tensor([2.0, 1.5, 1.0, 0.0 + 1.0])
    counts = np.zeros(4)
    g = torch.Generator().manual_seed(0)
    for _ in range(400):
        counts += np.bincount(epoch_indices(factors, g).numpy(), minlength=4)
    assert counts / 400 == pytest.approx([2.0, 1.5, 1.0, 1.0], abs=0.06)  # stochastic rounding


def test_repeat_factor_sampler_stream():
    class DS:
        cats = [[1], [1], [1], [2]]

        def __len__(self):
            return 4

        def get_cat_ids(self, i):
            return self.cats[i]

    s = RepeatFactorSampler(DS(), repeat_thresh=0.5, seed=3)
    first = list(__import__('itertools').islice(iter(s), 40))
    assert first == list(__import__('itertools').islice(iter(s), 40))  # seeded
    # category 2 has f = 1/4 -> r = sqrt(2): image 3 about 1.41x as often as each other image
    assert first.count(3) > max(first.count(i) for i in range(3))


@pytest.mark.parametrize('name', ['mask_rcnn_PEspatial_G_coco36ep', 'mask_rcnn_PEcore_G_lvis75ep'])
def test_reduced_model_loss_step_and_predict(name):
    from mmdet.structures import DetDataSample
    from mmdet.structures.mask import BitmapMasks
    from mmengine.structures import InstanceData
    cfg = small_maskrcnn_cfg(name)
    classes = cfg.model.roi_head.bbox_head.num_classes
    if 'lvis' in name:  # 1203 -> 20 classes: the sigmoid scores of a random model all pass 0.02
        classes = 20
        cfg.merge_from_dict({'model.roi_head.bbox_head.num_classes': classes,
                             'model.roi_head.mask_head.num_classes': classes,
                             'model.roi_head.bbox_head.loss_cls.num_classes': classes,
                             'model.roi_head.bbox_head.loss_cls.num_fed_loss_classes': 5})
        cfg.model.roi_head.bbox_head.loss_cls.ann_file = None
        cfg.model.roi_head.bbox_head.loss_cls.class_weights = [1.0] * classes
    torch.manual_seed(0)
    model = build_model(cfg.model)
    model.init_weights()
    mask = np.zeros((1, 96, 128), np.uint8)
    mask[0, 20:80, 30:90] = 1
    sample = DetDataSample(metainfo=dict(img_shape=(96, 128), ori_shape=(96, 128),
                                         scale_factor=(1.0, 1.0)))
    sample.gt_instances = InstanceData(bboxes=torch.tensor([[30., 20., 90., 80.]]),
                                       labels=torch.tensor([3]), masks=BitmapMasks(mask, 96, 128))
    data = model.data_preprocessor(dict(inputs=[torch.randint(0, 255, (3, 96, 128), dtype=torch.uint8)],
                                        data_samples=[sample]), training=True)
    assert data['inputs'].shape == (1, 3, 128, 128)  # padded to the square
    losses = model.loss(data['inputs'], data['data_samples'])
    total = sum(v.sum() if isinstance(v, torch.Tensor) else sum(x.sum() for x in v)
                for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
    total.backward()
    assert model.backbone.transformer.resblocks[0].attn.in_proj_weight.grad.abs().sum() > 0
    assert model.roi_head.bbox_head.fc_cls.out_features == classes + 1
    model.eval()
    with torch.no_grad():
        out = model.predict(data['inputs'], data['data_samples'])[0].pred_instances
    assert len(out) <= cfg.model.test_cfg.rcnn.max_per_img
    if len(out):
        assert out.scores.min() > cfg.model.test_cfg.rcnn.score_thr


def test_instance_pipeline_keeps_polygons_and_recomputes_boxes(tmp_path):
    import pe_dense.datasets  # noqa: F401  registers CheckedCocoDataset, LoadImageOrSkip
    from mmdet.registry import DATASETS
    from mmdet.structures.mask import PolygonMasks

    from pe_dense.toy.coco import make_coco
    make_coco(str(tmp_path), num_train=2, num_val=1, size=(160, 120), progress_bar=False)
    init_default_scope('mmdet')
    cfg = Config.fromfile(str(Path(__file__).parents[1] / 'configs' / '_base_' / 'datasets'
                              / 'coco_instance_lsj.py'))
    ds = cfg.train_dataloader.dataset
    ds.update(data_root=str(tmp_path), metainfo=dict(classes=('circle', 'square', 'triangle')))
    dataset = DATASETS.build(ds)
    np.random.seed(1)
    for i in range(4):
        inst = dataset[i % len(dataset)]['data_samples'].gt_instances
        assert isinstance(inst.masks, PolygonMasks)  # detectron2 keeps polygons (poly2mask off)
        if len(inst):
            assert torch.allclose(inst.bboxes.tensor, torch.as_tensor(
                inst.masks.get_bboxes(dst_type='hbox').tensor, dtype=torch.float32), atol=1e-3)


def test_pyramid_maps_are_contiguous_for_roi_align():
    """mmcv's CPU RoIAlign reads memory as NCHW: a permuted (LayerNorm2d) map gave wrong RoI
    features. Oracle: torchvision's aligned roi_align."""
    import torchvision
    from mmcv.ops import RoIAlign

    from pe_dense.models.necks.simple_fpn import SimpleFPN
    torch.manual_seed(0)
    neck = SimpleFPN(16, (4.0, 1.0), out_channels=8, num_outs=2,
                     norm_cfg=dict(type='LN2d', eps=1e-6)).eval()
    with torch.no_grad():
        feats = neck([torch.randn(1, 16, 6, 10)])
    assert all(f.is_contiguous() for f in feats)
    rois = torch.tensor([[0., 3.3, 1.2, 30.5, 20.7], [0., 10., 4., 14., 9.]])
    got = RoIAlign(output_size=7, spatial_scale=0.25, sampling_ratio=0)(feats[0], rois)
    want = torchvision.ops.roi_align(feats[0], rois, 7, 0.25, 0, True)
    assert torch.allclose(got, want, atol=1e-6)
