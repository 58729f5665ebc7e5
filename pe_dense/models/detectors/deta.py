"""DETA ("NMS strikes back"): two-stage Deformable DETR with box refinement, IoU-based
one-to-many assignment (in :class:`~pe_dense.models.dense_heads.DETAHead`) and NMS.

On top of MMDetection's ``DeformableDETR`` the official DETA_pe model changes how the
decoder's queries are made from the encoder's proposals (official
``apps/detection/DETA_pe/models/deformable_transformer.py``):

* query selection: per feature level, the top ``pre_nms_topk`` proposals by objectness
  (see :func:`select_queries` for the official quirk of small levels), NMS per level
  (IoU 0.9, boxes clamped to [0, 1], raw logits as scores), then the first
  ``num_queries // num_levels`` survivors of each level in NMS order, padded with the
  first survivors not yet taken. Keeping every level represented is what lets one-to-many
  training work without the decoder collapsing onto the largest objects.
* ``pix_trans``: the selected (transformed, zero-padded) encoder features go through a
  linear + LayerNorm and are added to the query target, which otherwise comes only from
  the sine embedding of the proposal box (MMDetection's two-stage queries have no content).

Proposal generation itself (grid anchors, validity (0.01, 0.99), +inf and zeroed memory on
padding / invalid anchors) is MMDetection's ``gen_encoder_output_proposals``, identical to
the official one. The fixed anchors are passed on to the head: DETA's first-stage
assignment measures IoU against them.
"""
from typing import Dict, Optional, Tuple

import torch
from mmdet.models.detectors import DeformableDETR
from mmdet.registry import MODELS
from mmdet.structures.bbox import bbox_cxcywh_to_xyxy
from torch import Tensor, nn
from torchvision.ops import batched_nms  # the official code's NMS (same tie order)

from ..layers.deform_attn import fp32_deformable_attention


def level_ids_of(spatial_shapes: Tensor) -> Tensor:
    """Feature level of each flattened encoder position."""
    counts = spatial_shapes.prod(1)
    return torch.repeat_interleave(torch.arange(len(counts), device=counts.device), counts)


def select_queries(logits: Tensor, boxes: Tensor, level_ids: Tensor, num_queries: int,
                   pre_nms_topk: int = 1000, nms_iou: float = 0.9) -> Tensor:
    """Indices of ``num_queries`` proposals of one image, balanced over levels (DETA).

    As the official ``DeformableTransformer.forward`` (``assign_first_stage`` branch): for
    each level, a top-``pre_nms_topk`` over ALL positions of ``sigmoid(logits)`` with the
    other levels' scores zeroed -- a level with fewer positions than ``pre_nms_topk`` thus
    also brings in zero-score positions of other levels, which then take part in their own
    level's NMS --, NMS per level on the raw logits, a plain top-k if fewer than
    ``num_queries`` survive, the first ``num_queries // num_levels`` of each level in NMS
    order, and padding with the first survivors not yet taken.

    Args:
        logits: (S,) objectness logits; boxes: (S, 4) xyxy in [0, 1]; level_ids: (S,).
    """
    num_levels = int(level_ids.max()) + 1
    if logits.numel() < num_queries:
        raise ValueError(f'DETA: num_queries={num_queries} exceeds the {logits.numel()} encoder '
                         'positions; use larger inputs or fewer queries')
    k = min(pre_nms_topk, logits.numel())
    prob = logits.sigmoid()
    pre = torch.cat([(prob * (level_ids == lvl)).topk(k).indices for lvl in range(num_levels)])
    keep = pre[batched_nms(boxes[pre], logits[pre], level_ids[pre], nms_iou)]
    if keep.numel() < num_queries:  # too few survivors: plain top-k (official fallback)
        keep = logits.topk(num_queries).indices
    per_level = num_queries // num_levels
    lvl = level_ids[keep]
    onehot = lvl[None] == torch.arange(num_levels, device=lvl.device)[:, None]  # (L, K)
    take = (onehot & (onehot.cumsum(1) <= per_level)).any(0)
    missing = num_queries - int(take.sum())
    if missing > 0:
        take[torch.nonzero(~take).squeeze(1)[:missing]] = True
    return keep[take]


@MODELS.register_module()
class DETA(DeformableDETR):
    """Deformable DETR, two-stage with box refinement, with DETA's query selection.

    Args:
        query_selection: ``dict(pre_nms_topk=1000, nms_iou=0.9)`` of the per-level NMS.
        backbone_autocast: None (fp32) or a dtype name, e.g. ``'bfloat16'``: the backbone and
            the first neck module (the simple FPN, part of the official backbone) run under
            ``torch.autocast`` and their outputs are cast back to fp32, so the rest of the
            neck, the transformer, heads and losses stay fp32 -- what the official ``--bf16``
            does (``apps/detection/DETA_pe/models/backbone.py``, ``PEv1Backbone.forward``).
        Other arguments: MMDetection's ``DeformableDETR`` (``as_two_stage`` and
        ``with_box_refine`` are always True).
    """

    def __init__(self, *args, query_selection: dict = None, as_two_stage: bool = True,
                 with_box_refine: bool = True, backbone_autocast: Optional[str] = None,
                 **kwargs):
        if not (as_two_stage and with_box_refine):
            raise ValueError('DETA is two-stage with box refinement: as_two_stage and '
                             'with_box_refine must be True')
        self.query_selection = dict(pre_nms_topk=1000, nms_iou=0.9)
        unknown = set(query_selection or {}) - set(self.query_selection)
        if unknown:
            raise KeyError(f'DETA query_selection: unknown keys {sorted(unknown)} '
                           f'(allowed: {sorted(self.query_selection)})')
        self.query_selection.update(query_selection or {})
        if backbone_autocast is not None and not isinstance(
                getattr(torch, str(backbone_autocast), None), torch.dtype):
            raise ValueError(f'DETA backbone_autocast: {backbone_autocast!r} is not a torch dtype '
                             "name (e.g. 'bfloat16')")
        self.backbone_autocast = backbone_autocast
        super().__init__(*args, as_two_stage=True, with_box_refine=True, **kwargs)

    def extract_feat(self, batch_inputs: Tensor) -> Tuple[Tensor]:
        if self.backbone_autocast is None:
            return super().extract_feat(batch_inputs)
        dtype = getattr(torch, self.backbone_autocast)
        fpn, *rest = self.neck
        with torch.autocast(batch_inputs.device.type, dtype=dtype):
            feats = fpn(self.backbone(batch_inputs.to(dtype)))
        feats = tuple(f.float() for f in feats)
        for module in rest:
            feats = module(feats)
        return feats

    def _init_layers(self) -> None:
        super()._init_layers()
        # mmdet allocates level_embed uninitialised (torch.Tensor) and fills it only in
        # init_weights; a model used before init_weights would read whatever memory held.
        nn.init.normal_(self.level_embed)
        self.pix_trans_fc = nn.Linear(self.embed_dims, self.embed_dims)
        self.pix_trans_norm = nn.LayerNorm(self.embed_dims)
        fp32_deformable_attention(self)  # mmcv's CUDA kernel takes no bf16

    def init_weights(self) -> None:
        super().init_weights()
        nn.init.xavier_uniform_(self.pix_trans_fc.weight)
        nn.init.zeros_(self.pix_trans_fc.bias)

    def pre_decoder(self, memory: Tensor, memory_mask: Tensor,
                    spatial_shapes: Tensor) -> Tuple[Dict, Dict]:
        bs, _, c = memory.shape
        output_memory, output_proposals = self.gen_encoder_output_proposals(
            memory, memory_mask, spatial_shapes)
        head = self.decoder.num_layers
        enc_outputs_class = self.bbox_head.cls_branches[head](output_memory)
        # fp32 addition: a bf16 offset + proposal rounds the boxes (pixels at 1824 px)
        enc_coord_unact = (self.bbox_head.reg_branches[head](output_memory).float()
                           + output_proposals.float())
        objectness = enc_outputs_class[..., 0]
        boxes = bbox_cxcywh_to_xyxy(enc_coord_unact.detach().sigmoid().float()).clamp(0, 1)
        level_ids = level_ids_of(spatial_shapes)
        with torch.no_grad():
            topk = torch.stack([
                select_queries(objectness[b].detach().float(), boxes[b], level_ids,
                               self.num_queries, **self.query_selection)
                for b in range(bs)])
        topk_coords_unact = torch.gather(
            enc_coord_unact, 1, topk[..., None].expand(-1, -1, 4)).detach()
        reference_points = topk_coords_unact.sigmoid()
        pos_trans_out = self.pos_trans_norm(
            self.pos_trans_fc(self.get_proposal_pos_embed(topk_coords_unact, c // 2)))
        query_pos, query = torch.split(pos_trans_out, c, dim=2)
        topk_feats = torch.gather(output_memory, 1, topk[..., None].expand(-1, -1, c)).detach()
        query = query + self.pix_trans_norm(self.pix_trans_fc(topk_feats))
        decoder_inputs_dict = dict(query=query, query_pos=query_pos, memory=memory,
                                   reference_points=reference_points)
        head_inputs_dict = dict(
            enc_outputs_class=enc_outputs_class,
            enc_outputs_coord=enc_coord_unact.sigmoid(),
            enc_anchors=output_proposals.sigmoid()) if self.training else dict()
        return decoder_inputs_dict, head_inputs_dict
