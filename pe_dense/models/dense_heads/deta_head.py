"""DETA's head: Deformable DETR's prediction branches, trained with IoU-based one-to-many
assignment instead of Hungarian matching, and NMS at test time.

Training (as the official DETA_pe criterion):
* decoder layers: ``assigner`` (stage 2) matches the proposals fed to the decoder (its
  initial references, the same for every layer) to the ground truth once; every layer's
  predictions are scored against that assignment.
* encoder proposals: ``enc_assigner`` (stage 1) matches the fixed grid anchors; class
  targets are all 0 (class 0 is the objectness used to select queries).
* losses: sigmoid focal over all queries x classes (non-positives are background), L1 and
  GIoU on positives; all normalised by the number of ground-truth boxes (not positives).

Test: sigmoid scores flattened query-major, top ``pre_nms_topk``, boxes to xyxy in the
original image (not clipped), per-class NMS at ``nms_iou``, first ``max_per_img``; with
``soft_nms`` set (the official TTA's per-view setting) class-aware soft-NMS rescoring instead.
"""
from typing import Dict, List, Optional, Tuple

import torch
from mmcv.ops import batched_nms
from mmdet.models.dense_heads import DeformableDETRHead
from mmdet.models.layers import inverse_sigmoid
from mmdet.registry import MODELS, TASK_UTILS
from mmdet.structures import SampleList
from mmdet.structures.bbox import bbox_cxcywh_to_xyxy, bbox_xyxy_to_cxcywh
from mmdet.utils import InstanceList, reduce_mean
from mmengine.structures import InstanceData
from torch import Tensor

from ..layers import no_autocast
from ..task_modules.soft_nms import soft_nms

Assignment = Tuple[Tensor, Tensor]  # (query indices, GT indices) of the positives


@MODELS.register_module()
class DETAHead(DeformableDETRHead):
    """Deformable DETR head with DETA's assignment, losses and NMS post-processing.

    ``train_cfg``: ``assigner`` (stage 2, e.g. ``DETAStage2Assigner``) and
    ``enc_assigner`` (stage 1, ``DETAStage1Assigner``). ``test_cfg``: ``max_per_img``
    (100; None keeps all), ``pre_nms_topk`` (10000), ``nms_iou`` (0.7; None disables NMS),
    ``soft_nms`` (None, or ``dict(method='quad', iou_threshold=0.7, quad_scale=0.5,
    min_score=1e-3)``: rescoring soft-NMS replaces the hard NMS).
    """

    def __init__(self, *args, train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None, **kwargs):
        train_cfg = dict(train_cfg or {})
        enc_assigner = train_cfg.pop('enc_assigner', dict(type='DETAStage1Assigner'))
        if 'assigner' not in train_cfg:
            train_cfg['assigner'] = dict(type='DETAStage2Assigner')
        test_cfg = dict(dict(max_per_img=100, pre_nms_topk=10000, nms_iou=0.7), **(test_cfg or {}))
        super().__init__(*args, train_cfg=train_cfg, test_cfg=test_cfg, **kwargs)
        self.enc_assigner = TASK_UTILS.build(enc_assigner)
        if not self.loss_cls.use_sigmoid:
            raise ValueError('DETAHead: loss_cls must be a sigmoid (focal) loss')

    def forward(self, hidden_states: Tensor,
                references: List[Tensor]) -> Tuple[Tensor, Tensor]:
        """mmdet's, with scores and boxes in fp32: mmdet adds the reference to the box offsets
        in place, which keeps them in bf16 under autocast (pixel errors at 1824 px)."""
        classes, coords = [], []
        for i, hidden in enumerate(hidden_states):
            cls, reg = self.cls_branches[i](hidden), self.reg_branches[i](hidden)
            with no_autocast(hidden.device.type):
                classes.append(cls.float())
                coords.append((reg.float() + inverse_sigmoid(references[i].float())).sigmoid())
        return torch.stack(classes), torch.stack(coords)

    # ------------------------------------------------------------------ training
    def loss(self, hidden_states: Tensor, references: List[Tensor],
             enc_outputs_class: Tensor, enc_outputs_coord: Tensor, enc_anchors: Tensor,
             batch_data_samples: SampleList) -> dict:
        metas = [s.metainfo for s in batch_data_samples]
        gts = [s.gt_instances for s in batch_data_samples]
        cls_scores, bbox_preds = self(hidden_states, references)
        return self.loss_by_feat(cls_scores, bbox_preds, enc_outputs_class, enc_outputs_coord,
                                 references[0], enc_anchors, gts, metas)

    def loss_by_feat(self, all_layers_cls_scores: Tensor, all_layers_bbox_preds: Tensor,
                     enc_cls_scores: Tensor, enc_bbox_preds: Tensor, init_references: Tensor,
                     enc_anchors: Tensor, batch_gt_instances: InstanceList,
                     batch_img_metas: List[dict]) -> Dict[str, Tensor]:
        """Losses of every decoder layer (``d{i}.`` prefixed but the last) and the encoder."""
        targets = [self._normalised_targets(g, m) for g, m in zip(batch_gt_instances,
                                                                   batch_img_metas)]
        num_gts = sum(len(t[0]) for t in targets)
        avg = torch.clamp(reduce_mean(all_layers_cls_scores.new_tensor(float(num_gts))),
                          min=1).item()
        dec_assign = [self._assign(self.assigner, ref, t) for ref, t in zip(init_references,
                                                                             targets)]
        losses = {}
        last = len(all_layers_cls_scores) - 1
        for i, (cls, box) in enumerate(zip(all_layers_cls_scores, all_layers_bbox_preds)):
            prefix = '' if i == last else f'd{i}.'
            for name, val in zip(('loss_cls', 'loss_bbox', 'loss_iou'),
                                 self._layer_losses(cls, box, dec_assign, targets, avg)):
                losses[prefix + name] = val
        if enc_cls_scores is not None:
            enc_targets = [(b, torch.zeros_like(lbl), c) for b, lbl, c in targets]
            enc_assign = [self._assign(self.enc_assigner, a, t) for a, t in zip(enc_anchors,
                                                                                enc_targets)]
            for name, val in zip(('enc_loss_cls', 'enc_loss_bbox', 'enc_loss_iou'),
                                 self._layer_losses(enc_cls_scores, enc_bbox_preds, enc_assign,
                                                    enc_targets, avg)):
                losses[name] = val
        return losses

    @staticmethod
    def _normalised_targets(gt: InstanceData, meta: dict) -> Tuple[Tensor, Tensor, Tensor]:
        """GT boxes of the unpadded image as (xyxy, labels, cxcywh), in [0, 1].

        In the official order (DETA_pe ``datasets/transforms.py`` Normalize, then the
        criterion's ``box_cxcywh_to_xyxy``): pixel xyxy -> cxcywh -> / (w, h, w, h) -> xyxy.
        Rounding differs from dividing xyxy directly, and decides which of several anchors
        with mathematically equal IoU count as a GT's best (tied) candidates.
        """
        h, w = meta['img_shape']
        cxcywh = bbox_xyxy_to_cxcywh(gt.bboxes.float()) / gt.bboxes.new_tensor(
            [w, h, w, h], dtype=torch.float32)
        return bbox_cxcywh_to_xyxy(cxcywh), gt.labels, cxcywh

    @staticmethod
    def _assign(assigner, priors_cxcywh: Tensor,
                target: Tuple[Tensor, Tensor, Tensor]) -> Assignment:
        boxes, labels, _ = target
        priors = bbox_cxcywh_to_xyxy(priors_cxcywh.detach().float())
        pos, pos_gt, _ = assigner.sample(priors, boxes.float(), labels)
        return pos, pos_gt

    def _layer_losses(self, cls_scores: Tensor, bbox_preds: Tensor,
                      assignments: List[Assignment],
                      targets: List[Tuple[Tensor, Tensor, Tensor]],
                      avg: float) -> Tuple[Tensor, Tensor, Tensor]:
        """Focal / L1 / GIoU losses of one layer's (B, Q, C) scores and (B, Q, 4) boxes.

        In fp32 whatever the autocast state (mmcv's CUDA focal loss takes no bf16; bf16 ground
        truth boxes are off by pixels at 1824 px).
        """
        with no_autocast(cls_scores.device.type):
            targets = [(boxes.float(), gt_labels, cxcywh.float())
                       for boxes, gt_labels, cxcywh in targets]
            return self._layer_losses_fp32(cls_scores.float(), bbox_preds.float(), assignments,
                                           targets, avg)

    def _layer_losses_fp32(self, cls_scores: Tensor, bbox_preds: Tensor,
                           assignments: List[Assignment],
                           targets: List[Tuple[Tensor, Tensor, Tensor]],
                           avg: float) -> Tuple[Tensor, Tensor, Tensor]:
        bs, nq, _ = cls_scores.shape
        labels = cls_scores.new_full((bs, nq), self.num_classes, dtype=torch.long)
        pred, tgt = [], []
        for b, ((pos, pos_gt), (_, gt_labels, cxcywh)) in enumerate(zip(assignments, targets)):
            labels[b, pos] = gt_labels[pos_gt]
            pred.append(bbox_preds[b, pos])
            tgt.append(cxcywh[pos_gt])
        loss_cls = self.loss_cls(cls_scores.reshape(bs * nq, -1), labels.reshape(-1),
                                 avg_factor=avg)
        pred, tgt = torch.cat(pred), torch.cat(tgt)
        loss_bbox = self.loss_bbox(pred, tgt, avg_factor=avg)
        loss_iou = self.loss_iou(bbox_cxcywh_to_xyxy(pred), bbox_cxcywh_to_xyxy(tgt),
                                 avg_factor=avg)
        return loss_cls, loss_bbox, loss_iou

    # ------------------------------------------------------------------ inference
    def _predict_by_feat_single(self, cls_score: Tensor, bbox_pred: Tensor, img_meta: dict,
                                rescale: bool = True) -> InstanceData:
        num_classes = cls_score.shape[-1]
        scores = cls_score.sigmoid().flatten()  # query-major: q * C + c
        k = min(self.test_cfg.get('pre_nms_topk', 10000), scores.numel())
        scores, idx = scores.topk(k)
        labels = idx % num_classes
        h, w = img_meta['img_shape']
        boxes = bbox_cxcywh_to_xyxy(bbox_pred[idx // num_classes]) * scores.new_tensor(
            [w, h, w, h])
        if rescale:
            boxes = boxes / boxes.new_tensor(img_meta['scale_factor']).repeat(2)
        nms_iou = self.test_cfg.get('nms_iou', 0.7)
        soft = self.test_cfg.get('soft_nms')
        if soft:
            keep, scores = soft_nms(boxes, scores, labels, **soft)
            boxes, labels = boxes[keep], labels[keep]
        elif nms_iou is not None and boxes.numel():
            _, keep = batched_nms(boxes, scores, labels, dict(type='nms', iou_threshold=nms_iou))
            boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
        n = self.test_cfg.get('max_per_img', 100)
        n = len(scores) if n is None else n
        return InstanceData(bboxes=boxes[:n], scores=scores[:n], labels=labels[:n])
