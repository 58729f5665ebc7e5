"""Official PE Mask R-CNN checkpoints (detectron2) -> pe_dense's MMDetection Mask R-CNN.

Two official layouts:

* the released detectors (``mask_rcnn_PE*_G_*.pth`` on facebook/PE-Detection): detectron2's
  ``GeneralizedRCNN`` with ``SimpleFeaturePyramid(net=PEv1_det)``, i.e. ``backbone.net.*`` (the
  PE tower under its official names plus RoPE tables), ``backbone.simfp_{2..5}.*`` (the
  pyramid: samplers, then a 1x1 and a 3x3 conv with LayerNorm ``.norm``),
  ``proposal_generator.rpn_head.*`` and ``roi_heads.{box_head,box_predictor,mask_head}.*``;
* the backbone-only files the configs start from (``pev1_rc2_*_d2.pt``, written by
  ``apps/detection/tools/convert_d2.py``): ``{'model': tower}`` with a patch-16 kernel and a
  ``(1, N, C)`` position embedding.

Every official key is either renamed or dropped on purpose (RoPE tables, which pe_dense
recomputes and which are checked against its rule first; the LVIS federated-loss weights,
recomputed from the annotations; the tower's unused pooling head); any other key is an error
naming it. Class order needs no map: detectron2 and mmdet both sort COCO / LVIS category ids.
"""
import math
import re
from collections import OrderedDict
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import torch

from ..backbones.checkpoint import (CheckpointError, Layout, check_key_layout, load_checkpoint_file,
                                    deconv_layout as _deconv, norm_layout as _norm,
                                    TowerSpec, weight_bias_layout as _wb, windowed_tower_layout)
from ..backbones.rope import check_stored_rope_tables, stored_rope_table

StateDict = Dict[str, torch.Tensor]


@dataclass
class MaskRCNNSpec(TowerSpec):
    """Sizes that fix the official parameter shapes (defaults: the released G models)."""
    pos_grid: int = 32                    # pretrain_img_size 512 / patch 16
    window_size: int = 32
    img_size: int = 1024                  # global RoPE tables: (img_size / patch)^2 rows
    rope_pt_seq_len: int = 32
    fpn_dim: int = 256
    box_convs: int = 4
    mask_convs: int = 4
    fc_dim: int = 1024
    num_anchors: int = 3
    num_classes: int = 80
    fed_loss: bool = False                # LVIS: the predictor stores its class weights


# --------------------------------------------------------------------------- official layout
def _conv_ln(prefix: str, cin: int, cout: int, k: int) -> Layout:
    """detectron2 ``Conv2d(..., bias=False, norm=LN)``."""
    return [(f'{prefix}.weight', (cout, cin, k, k))] + _norm(f'{prefix}.norm', cout)


def tower_layout(s: MaskRCNNSpec, prefix: str = 'backbone.net.') -> Layout:
    """PEv1_det's parameters and RoPE buffers."""
    return windowed_tower_layout(s, prefix)


def _pyramid_layout(s: MaskRCNNSpec) -> Layout:
    c, f = s.embed_dim, s.fpn_dim
    p = 'backbone.simfp_'
    out = _deconv(f'{p}2.0', c, c // 2) + _norm(f'{p}2.1', c // 2)
    out += _deconv(f'{p}2.3', c // 2, c // 4)
    out += _conv_ln(f'{p}2.4', c // 4, f, 1) + _conv_ln(f'{p}2.5', f, f, 3)
    out += _deconv(f'{p}3.0', c, c // 2)
    out += _conv_ln(f'{p}3.1', c // 2, f, 1) + _conv_ln(f'{p}3.2', f, f, 3)
    out += _conv_ln(f'{p}4.0', c, f, 1) + _conv_ln(f'{p}4.1', f, f, 3)
    out += _conv_ln(f'{p}5.1', c, f, 1) + _conv_ln(f'{p}5.2', f, f, 3)
    return out


def _heads_layout(s: MaskRCNNSpec) -> Layout:
    f, k = s.fpn_dim, s.num_classes
    r = 'proposal_generator.rpn_head'
    out = _wb(f'{r}.conv.conv0', (f, f, 3, 3)) + _wb(f'{r}.conv.conv1', (f, f, 3, 3))
    out += _wb(f'{r}.objectness_logits', (s.num_anchors, f, 1, 1))
    out += _wb(f'{r}.anchor_deltas', (4 * s.num_anchors, f, 1, 1))
    for i in range(1, s.box_convs + 1):
        out += _conv_ln(f'roi_heads.box_head.conv{i}', f, f, 3)
    out += _wb('roi_heads.box_head.fc1', (s.fc_dim, f * 7 * 7))
    if s.fed_loss:
        out += [('roi_heads.box_predictor.fed_loss_cls_weights', (k,))]
    out += _wb('roi_heads.box_predictor.cls_score', (k + 1, s.fc_dim))
    out += _wb('roi_heads.box_predictor.bbox_pred', (4 * k, s.fc_dim))
    for i in range(1, s.mask_convs + 1):
        out += _conv_ln(f'roi_heads.mask_head.mask_fcn{i}', f, f, 3)
    out += _deconv('roi_heads.mask_head.deconv', f, f)
    out += _wb('roi_heads.mask_head.predictor', (k, f, 1, 1))
    return out


def official_maskrcnn_layout(spec: Optional[MaskRCNNSpec] = None) -> 'OrderedDict[str, tuple]':
    """Every state-dict key of the official detector and its shape."""
    s = spec or MaskRCNNSpec()
    return OrderedDict(_pyramid_layout(s) + tower_layout(s) + _heads_layout(s))


def official_rope_table(head_dim: int, n: int, pt_seq_len: int = 32,
                        sin: bool = False) -> torch.Tensor:
    """PEv1_det's (n*n, head_dim) ``freqs_cos``/``freqs_sin`` (EVA rule over 32 positions)."""
    return stored_rope_table(head_dim, n, pt_seq_len, sin)


def random_official_state_dict(spec: MaskRCNNSpec, device=None, seed: int = 0) -> StateDict:
    """A random state dict in the official layout (real RoPE tables), for tests."""
    layout = official_maskrcnn_layout(spec)
    if device is not None and torch.device(device).type == 'meta':
        return {k: torch.empty(shape, device='meta') for k, shape in layout.items()}
    gen = torch.Generator().manual_seed(seed)
    sd = {k: torch.randn(shape, generator=gen) * 0.05 for k, shape in layout.items()}
    for k, shape in layout.items():
        if k.endswith(('.freqs_cos', '.freqs_sin')):
            sd[k] = official_rope_table(shape[1], math.isqrt(shape[0]), spec.rope_pt_seq_len,
                                        k.endswith('_sin'))
    return sd


def check_layout(sd: StateDict, spec: MaskRCNNSpec, path: str = 'checkpoint') -> None:
    """Raise naming the keys / shapes that differ from the official layout of ``spec``."""
    check_key_layout(sd, official_maskrcnn_layout(spec), 'official Mask R-CNN', path)


# --------------------------------------------------------------------------- renaming
_FPN_LEVEL = {  # detectron2 stage -> (our level, index of its 1x1 conv in the Sequential)
    2: (0, 4), 3: (1, 1), 4: (2, 0), 5: (3, 1)}
_SAMPLER = {'backbone.simfp_2.0.': 'neck.fpn1.0.', 'backbone.simfp_2.1.': 'neck.fpn1.1.',
            'backbone.simfp_2.3.': 'neck.fpn1.3.', 'backbone.simfp_3.0.': 'neck.fpn2.0.'}
_HEADS = [
    (r'^proposal_generator\.rpn_head\.conv\.conv(\d)\.(weight|bias)$', r'rpn_head.rpn_conv.\1.conv.\2'),
    (r'^proposal_generator\.rpn_head\.objectness_logits\.', 'rpn_head.rpn_cls.'),
    (r'^proposal_generator\.rpn_head\.anchor_deltas\.', 'rpn_head.rpn_reg.'),
    (r'^roi_heads\.box_head\.fc1\.', 'roi_head.bbox_head.shared_fcs.0.'),
    (r'^roi_heads\.box_predictor\.cls_score\.', 'roi_head.bbox_head.fc_cls.'),
    (r'^roi_heads\.box_predictor\.bbox_pred\.', 'roi_head.bbox_head.fc_reg.'),
    (r'^roi_heads\.mask_head\.deconv\.', 'roi_head.mask_head.upsample.'),
    (r'^roi_heads\.mask_head\.predictor\.', 'roi_head.mask_head.conv_logits.'),
]
_DROPPED = ('.freqs_cos', '.freqs_sin', 'roi_heads.box_predictor.fed_loss_cls_weights')


def _conv_norm(rest: str, base: str) -> str:
    """``weight`` -> ``base.conv.weight``; ``norm.x`` -> ``base.ln.x`` (mmcv ConvModule + LN2d)."""
    return f'{base}.conv.{rest}' if not rest.startswith('norm.') else f'{base}.ln.{rest[5:]}'


def rename_official_key(key: str) -> str:
    """Our Mask R-CNN's name of one official key; keys dropped on purpose raise KeyError."""
    if key.endswith(_DROPPED):
        raise KeyError(f'{key} is recomputed by pe_dense, not converted')
    if key.startswith('backbone.net.'):
        return 'backbone.' + key[len('backbone.net.'):]
    for off, ours in _SAMPLER.items():
        if key.startswith(off):
            return ours + key[len(off):]
    m = re.match(r'^backbone\.simfp_(\d)\.(\d)\.(.+)$', key)
    if m and int(m.group(1)) in _FPN_LEVEL:
        level, lateral = _FPN_LEVEL[int(m.group(1))]
        idx = int(m.group(2))
        if idx in (lateral, lateral + 1):
            group = 'lateral_convs' if idx == lateral else 'fpn_convs'
            return _conv_norm(m.group(3), f'neck.{group}.{level}')
    m = re.match(r'^roi_heads\.(box_head\.conv|mask_head\.mask_fcn)(\d+)\.(.+)$', key)
    if m:
        head = 'bbox_head.shared_convs' if m.group(1).startswith('box') else 'mask_head.convs'
        return _conv_norm(m.group(3), f'roi_head.{head}.{int(m.group(2)) - 1}')
    for pattern, repl in _HEADS:
        if re.match(pattern, key):
            return re.sub(pattern, repl, key)
    raise CheckpointError(f'Unknown key in an official Mask R-CNN checkpoint: {key!r}')


def convert_official_maskrcnn(sd: StateDict, rope_pt_seq_len: int = 32) -> StateDict:
    """Official detector state dict -> pe_dense Mask R-CNN state dict."""
    check_stored_rope_tables(sd, rope_pt_seq_len)
    out = OrderedDict()
    for key, val in sd.items():
        if key in ('pixel_mean', 'pixel_std'):  # non-persistent in detectron2; tolerated
            if not val.is_meta and not torch.allclose(val.flatten().float(), torch.full((3,), 127.)):
                raise CheckpointError(f'{key} = {val.flatten().tolist()}; the configs use 127')
            continue
        if key.endswith(_DROPPED):
            continue
        new = rename_official_key(key)
        if key == 'backbone.net.positional_embedding':
            val = val.reshape(val.shape[-2], val.shape[-1])
        out[new] = val
    return out


_TOWER_UNUSED = ('ln_post.', 'proj', 'attn_pool.', 'class_embedding')


def convert_official_backbone(sd: StateDict) -> StateDict:
    """``pev1_rc2_*_d2.pt`` tower -> the PE tower state dict ``init_cfg.checkpoint`` reads.

    The pooling head (``ln_post``, ``attn_pool``, ``proj``; PE-Core) and a cls embedding are
    not used by the detector (``pretrain_use_cls_token=False``) and are dropped.
    """
    out = OrderedDict()
    for key, val in sd.items():
        if key.startswith(_TOWER_UNUSED):
            continue
        if not (key in ('conv1.weight', 'positional_embedding') or key.startswith(
                ('ln_pre.', 'transformer.resblocks.'))):
            raise CheckpointError(f'Unknown key in an official PE backbone checkpoint: {key!r}')
        if key == 'positional_embedding':
            val = val.reshape(val.shape[-2], val.shape[-1])
        out[key] = val
    if 'conv1.weight' not in out:
        raise CheckpointError('The backbone checkpoint has no conv1.weight (not a PE tower?)')
    return out


# --------------------------------------------------------------------------- files
def load_official(path: str) -> Tuple[str, StateDict]:
    """``('detector' | 'backbone', state dict)`` of an official file, read weights-only."""
    obj = load_checkpoint_file(path)
    sd = obj.get('model', obj)
    if not isinstance(sd, dict):
        raise CheckpointError(f"{path}: 'model' is a {type(sd).__name__}, not a state dict")
    sd = {k: v for k, v in sd.items() if isinstance(v, torch.Tensor)}
    if any(k.startswith('backbone.net.') for k in sd):
        return 'detector', sd
    if 'conv1.weight' in sd or any(k.startswith('transformer.resblocks.') for k in sd):
        return 'backbone', sd
    raise CheckpointError(f"{path}: neither an official Mask R-CNN (keys 'backbone.net.*') nor "
                          "a PE backbone (keys 'conv1.weight', 'transformer.resblocks.*')")


def convert_file(src: str, dst: str, rope_pt_seq_len: int = 32) -> StateDict:
    """Convert either official layout; the result is an MMEngine checkpoint (detector:
    ``load_from`` / ``tools/test.py``; backbone: ``model.backbone.init_cfg.checkpoint``)."""
    kind, sd = load_official(src)
    if kind == 'detector':
        sd = convert_official_maskrcnn(sd, rope_pt_seq_len)
    else:
        sd = convert_official_backbone(sd)
    from ...engine.atomic_io import atomic_torch_save
    atomic_torch_save({'state_dict': sd, 'meta': {'converted_from': src,
                                                  'layout': f'pe_dense.MaskRCNN.{kind}'}}, dst)
    return sd


__all__ = ['MaskRCNNSpec', 'official_maskrcnn_layout', 'tower_layout', 'official_rope_table',
           'random_official_state_dict', 'check_layout',
           'rename_official_key', 'convert_official_maskrcnn', 'convert_official_backbone',
           'load_official', 'convert_file']
