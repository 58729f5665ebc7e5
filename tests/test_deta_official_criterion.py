"""DETA targets and losses equal the official criterion's, whatever the annotation order.

``fixtures/deta_official_criterion.json`` holds a fixed batch (non-square images, an inner box
inside an outer box, an image without boxes, fixed predictions) and what the official
``SetCriterion`` with ``Stage1Assigner`` / ``Stage2Assigner`` (facebookresearch/
perception_models, apps/detection/DETA_pe/models/{deformable_detr,assigner}.py) returned on
it: the unweighted losses of every layer and the positive (candidate, GT) pairs of both
stages, with the outer box listed first and then second. It was computed once with Meta's
code on CPU; nothing here runs that code.

The head and assigners are built from ``configs/_base_/models/deta_pe.py``, so a changed loss
weight, assigner threshold / fraction / top-k or target normalisation fails here.
"""
import json
import os.path as osp

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.structures.bbox import bbox_cxcywh_to_xyxy, bbox_xyxy_to_cxcywh
from mmengine.config import Config
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData

import pe_dense.det  # noqa: F401  registers the detection parts

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
FIX = json.load(open(osp.join(ROOT, 'tests/fixtures/deta_official_criterion.json')))
OURS = {'loss_ce': 'loss_cls', 'loss_bbox': 'loss_bbox', 'loss_giou': 'loss_iou'}


def _head():
    model = Config.fromfile(osp.join(ROOT, 'configs/_base_/models/deta_pe.py')).model
    train_cfg = model.train_cfg.to_dict()
    # the official stage-2 sample size is the number of queries
    train_cfg['assigner']['num'] = FIX['num_queries']
    head = dict(model.bbox_head.to_dict(), num_classes=FIX['num_classes'], embed_dims=16,
                num_pred_layer=FIX['shapes']['L'] + 1, as_two_stage=True,
                train_cfg=train_cfg, test_cfg=model.test_cfg.to_dict())
    return MODELS.build(head)


def _tensor(key):
    s = FIX['shapes']
    shape = {'pred_logits': (s['L'], s['B'], s['Q'], s['C']),
             'pred_boxes': (s['L'], s['B'], s['Q'], 4),
             'init_reference': (s['B'], s['Q'], 4), 'anchors': (s['B'], s['S'], 4),
             'enc_logits': (s['B'], s['S'], s['C']), 'enc_boxes': (s['B'], s['S'], 4)}[key]
    return torch.tensor(FIX[key], dtype=torch.float32).reshape(shape)


def _gts(order):
    gts, metas = [], []
    for i, im in enumerate(FIX['images']):
        boxes, labels = im['boxes'], im['labels']
        if i == 0:
            boxes, labels = [boxes[j] for j in order], [labels[j] for j in order]
        gts.append(InstanceData(bboxes=torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
                                labels=torch.tensor(labels, dtype=torch.long)))
        metas.append(dict(img_shape=tuple(im['img_shape'])))
    return gts, metas


def _pairs(assignments):
    return [sorted(zip(p.tolist(), g.tolist())) for p, g in assignments]


@pytest.mark.parametrize('case', ['outer_first', 'inner_first'])
def test_targets_and_losses_equal_the_official_criterion(case):
    ref = FIX['cases'][case]
    head = _head()
    gts, metas = _gts(ref['gt_order'])
    targets = [head._normalised_targets(g, m) for g, m in zip(gts, metas)]
    for (xyxy, _, cxcywh), official in zip(targets, ref['targets_cxcywh']):
        official = torch.tensor(official, dtype=torch.float32).reshape(-1, 4)
        assert torch.equal(cxcywh, official)  # bit for bit: rounding decides IoU ties
        assert torch.equal(xyxy, bbox_cxcywh_to_xyxy(official))
    init_ref, anchors = _tensor('init_reference'), _tensor('anchors')
    stage2 = [head._assign(head.assigner, r, t) for r, t in zip(init_ref, targets)]
    enc_targets = [(b, torch.zeros_like(lbl), c) for b, lbl, c in targets]
    stage1 = [head._assign(head.enc_assigner, a, t) for a, t in zip(anchors, enc_targets)]
    assert _pairs(stage2) == [[tuple(p) for p in img] for img in ref['stage2_pairs']]
    assert _pairs(stage1) == [[tuple(p) for p in img] for img in ref['stage1_pairs']]

    torch.manual_seed(0)
    losses = head.loss_by_feat(_tensor('pred_logits'), _tensor('pred_boxes'),
                               _tensor('enc_logits'), _tensor('enc_boxes'), init_ref, anchors,
                               gts, metas)
    last = FIX['shapes']['L'] - 1
    expected = {}
    for name, value in ref['losses'].items():
        base, _, suffix = name.rpartition('_') if name.count('_') == 2 else (name, '', '')
        ours = OURS[base]
        key = {'': ours, 'enc': f'enc_{ours}'}.get(suffix, f'd{suffix}.{ours}')
        expected[key] = value * FIX['weights'][base]
    assert sorted(losses) == sorted(expected)
    for key, value in expected.items():
        assert float(losses[key]) == pytest.approx(value, rel=5e-7, abs=5e-7), key


def test_the_fixture_tells_the_orders_apart_only_where_it_should():
    """The official rule gives the same positives whatever the order (only GT indices are
    renumbered), and the shared best candidate stays with the outer box in both."""
    a, b = FIX['cases']['outer_first'], FIX['cases']['inner_first']
    assert a['losses'] == b['losses']
    swap = {0: 1, 1: 0}
    assert [(q, swap[g]) for q, g in b['stage2_pairs'][0]] == [tuple(p) for p in a['stage2_pairs'][0]]
    # candidate 3 is the best of both boxes; it belongs to the outer box (index 0 here)
    assert [3, 0] in a['stage2_pairs'][0]


def test_normalising_xyxy_first_would_round_differently():
    """What makes the bitwise target check above able to fail: on the fixture's boxes,
    dividing xyxy by the image size before converting gives other float32 values."""
    im, official = FIX['images'][0], FIX['cases']['outer_first']['targets_cxcywh'][0]
    h, w = im['img_shape']
    naive = bbox_xyxy_to_cxcywh(torch.tensor(im['boxes']) / torch.tensor([w, h, w, h]))
    assert not torch.equal(naive, torch.tensor(official))


def test_decoder_assigned_by_stage2_on_the_initial_references():
    """Hand-computed wiring check of ``DETAHead.loss``: the decoder's positives come from the
    stage-2 assigner (IoU >= 0.6) on the references fed to the first layer.

    Image 60 x 40 (w x h), GT pixel box [12, 8, 36, 28] = cxcywh (0.4, 0.45, 0.4, 0.5).
    Query 0 is the GT box; query 1 has the GT's left edge but width 0.26: IoU 0.26/0.4 = 0.65,
    positive for stage 2, ignored by stage 1 (0.3 <= IoU < 0.7). With zeroed branch outputs
    every layer predicts its reference, so each layer's L1 is |0.33 - 0.4| + |0.26 - 0.4|
    = 0.21 (one GT), times the configured weight. The last references (after the decoder,
    never an input of a layer) are all far from the GT and must not be used.
    """
    torch.manual_seed(0)
    head = _head()
    for branch in list(head.cls_branches) + [b[-1] for b in head.reg_branches]:
        torch.nn.init.zeros_(branch.weight)
        torch.nn.init.zeros_(branch.bias)
    layers, q = FIX['shapes']['L'], 6
    init = torch.tensor([[0.4, 0.45, 0.4, 0.5], [0.33, 0.45, 0.26, 0.5]]
                        + [[0.9, 0.1 + 0.15 * i, 0.05, 0.05] for i in range(q - 2)])
    far = torch.tensor([[0.9, 0.1 + 0.15 * i, 0.05, 0.05] for i in range(q)])
    references = [init[None]] * layers + [far[None]]
    hidden = torch.randn(layers, 1, q, 16)
    sample = DetDataSample(metainfo=dict(img_shape=(40, 60)))
    sample.gt_instances = InstanceData(bboxes=torch.tensor([[12., 8., 36., 28.]]),
                                       labels=torch.tensor([1]))
    losses = head.loss(hidden, references, None, None, None, [sample])
    expected = 0.21 * head.loss_bbox.loss_weight
    for key in ['loss_bbox'] + [f'd{i}.loss_bbox' for i in range(layers - 1)]:
        assert float(losses[key].detach()) == pytest.approx(expected, rel=1e-5), key
