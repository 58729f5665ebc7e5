"""DETA test-time augmentation merge: quad soft-NMS, flip-back and per-scale size filter."""
import pytest
import torch
from mmcv.ops import nms as mmcv_nms
from mmengine.config import ConfigDict
from mmengine.model import BaseModel
from mmengine.structures import InstanceData
from mmdet.structures import DetDataSample

from pe_dense.models.detectors.deta_tta import DETATTAModel, soft_nms


def test_quad_decay_and_class_awareness():
    boxes = torch.tensor([[0., 0., 10., 10.], [0., 0., 10., 9.], [0., 0., 10., 9.5], [50., 50., 60., 60.]])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6])
    labels = torch.tensor([0, 0, 1, 0])
    keep, new = soft_nms(boxes, scores, labels, iou_threshold=0.7, method='quad', quad_scale=0.5)
    assert keep.tolist() == [0, 2, 3, 1]            # box 1 decayed below the others
    assert new[1] == pytest.approx(0.7)              # other class: untouched
    assert new[3] == pytest.approx(0.8 * (1 - 0.9) ** 0.5, rel=1e-5)  # IoU(0,1) = 0.9


def test_below_threshold_untouched_and_pruning():
    boxes = torch.tensor([[0., 0., 10., 10.], [5., 0., 15., 10.]])  # IoU 1/3
    keep, new = soft_nms(boxes, torch.tensor([0.9, 0.5]), torch.zeros(2, dtype=torch.long))
    assert new.tolist() == pytest.approx([0.9, 0.5])
    keep, _ = soft_nms(boxes[:1].repeat(2, 1), torch.tensor([0.9, 0.002]),
                       torch.zeros(2, dtype=torch.long), min_score=1e-3)
    assert keep.tolist() == [0]  # 0.002 * 0 -> pruned


def test_hard_method_equals_mmcv_nms():
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(40, 2, generator=g) * 50
    boxes = torch.cat([xy, xy + 5 + torch.rand(40, 2, generator=g) * 20], 1)
    scores = torch.rand(40, generator=g)
    keep, _ = soft_nms(boxes, scores, torch.zeros(40, dtype=torch.long), 0.5, method='hard', min_score=0)
    _, ref = mmcv_nms(boxes, scores, 0.5)
    assert keep.tolist() == ref.tolist()


def test_bad_method_named():
    with pytest.raises(ValueError, match='cubic'):
        soft_nms(torch.zeros(1, 4), torch.ones(1), torch.zeros(1, dtype=torch.long), method='cubic')


def _sample(boxes, scores, flip):
    s = DetDataSample(metainfo=dict(ori_shape=(100, 200), flip=flip,
                                    flip_direction='horizontal' if flip else None))
    s.pred_instances = InstanceData(bboxes=torch.tensor(boxes), scores=torch.tensor(scores),
                                    labels=torch.zeros(len(scores), dtype=torch.long))
    return s


class _Model(BaseModel):
    def forward(self, *args, **kwargs):
        raise NotImplementedError('only the merge is exercised here')


def test_merge_flips_back_filters_small_boxes_at_small_scales():
    tta = DETATTAModel(module=_Model(), scale_ranges=[(0, 1e4), (20, 1e4)],
                       tta_cfg=ConfigDict(nms=dict(type='soft_nms', method='quad', iou_threshold=0.7,
                                                   quad_scale=0.5, min_score=1e-3), max_per_img=10))
    views = [
        _sample([[10., 10., 50., 50.]], [0.9], flip=False),     # scale 0
        _sample([[150., 10., 190., 50.]], [0.8], flip=True),    # same box seen flipped: IoU 1
        _sample([[100., 60., 110., 70.]], [0.7], flip=False),   # 10 px side at scale 1: dropped
        _sample([[0., 60., 60., 99.]], [0.6], flip=True),       # kept, flips back to 140..200
    ]
    merged = tta.merge_preds([views])[0].pred_instances
    assert merged.bboxes.tolist() == [[10., 10., 50., 50.], [140., 60., 200., 99.]]
    assert merged.scores.tolist() == pytest.approx([0.9, 0.6])


def test_missing_scale_range_is_named():
    tta = DETATTAModel(module=_Model(), scale_ranges=[(0, 1e4)],
                       tta_cfg=ConfigDict(nms=dict(type='soft_nms'), max_per_img=10))
    views = [_sample([[0., 0., 5., 5.]], [0.5], flip=False)] * 3
    with pytest.raises(ValueError, match=r'scale_ranges\[1\]'):
        tta.merge_preds([views])


def test_tta_config_runs_with_the_toy_deta(tmp_path):
    """What `tools/test.py CONFIG CKPT --tta` does, with the final config's TTA at toy sizes."""
    from pathlib import Path

    from mmengine.config import Config
    from mmengine.runner import Runner

    from pe_dense.toy.coco import make_coco
    root = Path(__file__).parents[1] / 'configs'
    data = tmp_path / 'toy'
    make_coco(str(data), num_train=1, num_val=1, size=128, progress_bar=False)
    cfg = Config.fromfile(str(root / 'demo' / 'pe_deta_toy.py'))
    final = Config.fromfile(str(root / 'pe_spatial_detr_coco.py'))
    tta_pipeline = final.tta_pipeline
    tta_pipeline[1]['transforms'][0] = [dict(type='Resize', scale=(s, s), keep_ratio=True)
                                        for s in (112,)]  # 1 scale x 2 flips: CPU time
    assert final.tta_model.num_queries == 2000
    tta_q = round(2000 / 900 * cfg.model.num_queries)  # the official ratio at toy size
    tta_model = dict(final.tta_model, scale_ranges=[(8, 1e4)], num_queries=tta_q)
    tta_model['module'] = cfg.model
    cfg.model = tta_model
    ds = cfg.test_dataloader.dataset
    ds.update(data_root=str(data) + '/', pipeline=tta_pipeline)
    cfg.test_evaluator.ann_file = str(data / 'annotations' / 'instances_val2017.json')
    cfg.custom_imports = final.custom_imports
    cfg.work_dir = str(tmp_path / 'work')
    cfg.test_dataloader.batch_size = 1
    runner = Runner.from_cfg(cfg)
    assert type(runner.model).__name__ == 'DETATTAModel'
    view_cfg = runner.model.module.bbox_head.test_cfg
    assert view_cfg['soft_nms']['method'] == 'quad' and view_cfg['max_per_img'] is None
    assert view_cfg['pre_nms_topk'] == 2000
    assert runner.model.module.num_queries == tta_q
    metrics = runner.test()
    assert 'coco/bbox_mAP' in metrics


def test_head_soft_nms_per_view_keeps_every_survivor_of_the_top_scores():
    """The official TTA's per-view post-processing: top-k scores, quad soft-NMS, no cap."""
    from mmdet.registry import MODELS
    from mmdet.structures.bbox import bbox_cxcywh_to_xyxy
    from mmdet.utils import register_all_modules

    import pe_dense.det  # noqa: F401  registers the det components
    register_all_modules(init_default_scope=False)
    soft = dict(method='quad', iou_threshold=0.7, quad_scale=0.5, min_score=1e-3)
    head = MODELS.build(dict(type='DETAHead', num_classes=3, embed_dims=16,
                             loss_cls=dict(type='FocalLoss', use_sigmoid=True),
                             test_cfg=dict(pre_nms_topk=50, max_per_img=None, soft_nms=soft)))
    torch.manual_seed(0)
    q = 120
    logits = torch.randn(q, 3) * 3
    centre = torch.rand(q, 2) * 0.5 + 0.25
    boxes = torch.cat([centre, torch.full((q, 2), 0.2)], 1)  # many overlaps
    meta = dict(img_shape=(100, 200), scale_factor=(2.0, 2.0))
    out = head._predict_by_feat_single(logits, boxes, meta, rescale=True)

    scores, idx = logits.sigmoid().flatten().topk(50)
    xyxy = bbox_cxcywh_to_xyxy(boxes[idx // 3]) * torch.tensor([200., 100., 200., 100.]) / 2
    keep, rescored = soft_nms(xyxy, scores, idx % 3, **soft)
    assert len(out.scores) == len(keep) > 0
    torch.testing.assert_close(out.scores, rescored)
    torch.testing.assert_close(out.bboxes, xyxy[keep])
    assert (out.labels == (idx % 3)[keep]).all()
    assert (out.scores[1:] <= out.scores[:-1]).all()

    head.test_cfg.update(soft_nms=None, max_per_img=10)  # plain testing: hard NMS, first 10
    assert len(head._predict_by_feat_single(logits, boxes, meta).scores) == 10
