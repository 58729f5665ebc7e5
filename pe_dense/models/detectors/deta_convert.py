"""Official DETA_pe checkpoints (``deta_coco_1824pix.pth``) <-> pe_dense's MMDetection DETA.

The official layout is enumerated from the structure of the official model code
(``apps/detection/DETA_pe/models``): the PE tower under ``backbone.0.body.`` with its simple
FPN (``fpn1`` = the stride-8 deconvolution), ``input_proj.{l}`` (1x1 conv + GN per backbone
level, then two 3x3 stride-2 convs), the deformable transformer (``transformer.encoder`` /
``transformer.decoder`` / two-stage proposal layers), and the prediction heads stored twice
(``class_embed.k`` and ``transformer.decoder.class_embed.k`` are the same modules). RoPE tables
(``freqs_cos``/``freqs_sin``) are stored globally and per block; pe_dense recomputes them, so
they are checked for shape and dropped.

Class rows: the official heads index classes by dataset category id (COCO: 91 rows, row 0
unused, so the encoder's proposal head uses row 0 as objectness); MMDetection uses
contiguous labels, so ``class_map[i]`` names the official row of our label ``i``.
"""
import argparse
import math
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import torch
from mmengine.logging import print_log

from ..backbones.checkpoint import (CheckpointError, Layout, check_key_layout, deconv_layout,
                                    load_checkpoint_file, norm_layout as _norm,
                                    TowerSpec, weight_bias_layout, windowed_tower_layout)
from ..backbones.rope import check_stored_rope_tables, stored_rope_table

StateDict = Dict[str, torch.Tensor]
# Counters a profiler (thop) leaves in the state dict; the official loader ignores them.
PROFILING_SUFFIXES = ('total_ops', 'total_params')

# COCO 2017 category ids in the order of mmdet's CocoDataset classes.
COCO_CATEGORY_IDS = (
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25,
    27, 28, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 46, 47, 48, 49, 50, 51,
    52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 67, 70, 72, 73, 74, 75, 76, 77,
    78, 79, 80, 81, 82, 84, 85, 86, 87, 88, 89, 90)


@dataclass
class DetaSpec(TowerSpec):
    """Sizes that fix the official parameter shapes (defaults: the released Gwin384 model).

    Tower defaults: 384 / 16 = 24 for the tiled pos-emb and the windows, RoPE for 1824 px.
    """
    hidden_dim: int = 256
    ffn_dim: int = 2048
    num_heads_det: int = 8
    enc_layers: int = 6
    dec_layers: int = 6
    num_levels: int = 5
    enc_points: int = 4
    dec_points: int = 4
    num_classes: int = 91                # official rows (COCO: max category id + 1)
    extra: Dict[str, tuple] = field(default_factory=dict)

    @property
    def fpn_channels(self) -> List[int]:
        return [self.embed_dim // 2, self.embed_dim, self.embed_dim]


# --------------------------------------------------------------------------- official layout
def _linear(prefix: str, out_f: int, in_f: int) -> Layout:
    return weight_bias_layout(prefix, (out_f, in_f))


def _msdeform(prefix: str, s: DetaSpec, points: int) -> Layout:
    d, h, lv = s.hidden_dim, s.num_heads_det, s.num_levels
    return (_linear(f'{prefix}.sampling_offsets', h * lv * points * 2, d)
            + _linear(f'{prefix}.attention_weights', h * lv * points, d)
            + _linear(f'{prefix}.value_proj', d, d) + _linear(f'{prefix}.output_proj', d, d))


def _backbone_layout(s: DetaSpec) -> Layout:
    """The tower under ``backbone.0.body.``, then its stride-8 deconvolution ``fpn1``."""
    return (windowed_tower_layout(s, 'backbone.0.body.')
            + deconv_layout('backbone.0.body.fpn1.0', s.embed_dim, s.embed_dim // 2))


def _head_layout(prefix: str, s: DetaSpec) -> Layout:
    d, out = s.hidden_dim, []
    for k in range(s.dec_layers + 1):  # two-stage: the last head scores encoder proposals
        out += _linear(f'{prefix}class_embed.{k}', s.num_classes, d)
        out += (_linear(f'{prefix}bbox_embed.{k}.layers.0', d, d)
                + _linear(f'{prefix}bbox_embed.{k}.layers.1', d, d)
                + _linear(f'{prefix}bbox_embed.{k}.layers.2', 4, d))
    return out


def _detector_layout(s: DetaSpec) -> Layout:
    d, f = s.hidden_dim, s.ffn_dim
    out = []
    for i in range(s.enc_layers):
        e = f'transformer.encoder.layers.{i}'
        out += _msdeform(f'{e}.self_attn', s, s.enc_points) + _norm(f'{e}.norm1', d)
        out += _linear(f'{e}.linear1', f, d) + _linear(f'{e}.linear2', d, f) + _norm(f'{e}.norm2', d)
    for i in range(s.dec_layers):
        e = f'transformer.decoder.layers.{i}'
        out += _msdeform(f'{e}.cross_attn', s, s.dec_points) + _norm(f'{e}.norm1', d)
        out += [(f'{e}.self_attn.in_proj_weight', (3 * d, d)), (f'{e}.self_attn.in_proj_bias', (3 * d,))]
        out += _linear(f'{e}.self_attn.out_proj', d, d) + _norm(f'{e}.norm2', d)
        out += _linear(f'{e}.linear1', f, d) + _linear(f'{e}.linear2', d, f) + _norm(f'{e}.norm3', d)
    out += _head_layout('transformer.decoder.', s)
    out += [('transformer.level_embed', (s.num_levels, d))]
    out += _linear('transformer.enc_output', d, d) + _norm('transformer.enc_output_norm', d)
    out += _linear('transformer.pos_trans', 2 * d, 2 * d) + _norm('transformer.pos_trans_norm', 2 * d)
    out += _linear('transformer.pix_trans', d, d) + _norm('transformer.pix_trans_norm', d)
    out += _head_layout('', s)
    in_ch = s.fpn_channels
    for lvl in range(s.num_levels):
        k = 1 if lvl < len(in_ch) else 3
        cin = in_ch[lvl] if lvl < len(in_ch) else (in_ch[-1] if lvl == len(in_ch) else d)
        out += [(f'input_proj.{lvl}.0.weight', (d, cin, k, k)), (f'input_proj.{lvl}.0.bias', (d,))]
        out += _norm(f'input_proj.{lvl}.1', d)
    return out


def official_deta_layout(spec: Optional[DetaSpec] = None) -> 'OrderedDict[str, tuple]':
    """Every parameter/buffer name of the official DETA_pe model and its shape."""
    s = spec or DetaSpec()
    layout = OrderedDict(_detector_layout(s) + _backbone_layout(s))
    layout.update(s.extra)
    return layout


def random_official_state_dict(spec: DetaSpec, device=None, seed: int = 0) -> StateDict:
    """A random state dict in the official layout (tests); the decoder's head aliases share
    the top-level heads' values, as in a real checkpoint."""
    gen = torch.Generator().manual_seed(seed)
    layout = official_deta_layout(spec)
    if device is not None and torch.device(device).type == 'meta':
        return {k: torch.empty(shape, device='meta') for k, shape in layout.items()}
    sd = {k: torch.randn(shape, generator=gen) for k, shape in layout.items()}
    for k, shape in layout.items():
        if k.endswith(('.freqs_cos', '.freqs_sin')):
            sd[k] = official_rope_table(shape[1], math.isqrt(shape[0]), k.endswith('_sin'))
    prefix = 'transformer.decoder.'
    for k in sd:
        if k.startswith(prefix + 'class_embed.') or k.startswith(prefix + 'bbox_embed.'):
            sd[k] = sd[k[len(prefix):]]
    return sd


def official_rope_table(head_dim: int, n: int, sin: bool = False) -> torch.Tensor:
    """The official (n*n, head_dim) RoPE buffer (EVA rule over 16 positions)."""
    return stored_rope_table(head_dim, n, 16, sin)


def check_rope_tables(sd: StateDict, atol: float = 1e-4) -> None:
    """pe_dense recomputes RoPE, so the stored tables must be what it would compute."""
    check_stored_rope_tables(sd, 16, atol)


# --------------------------------------------------------------------------- renaming
_ENC_NORM = {'norm1': 'norms.0', 'norm2': 'norms.1'}
_DEC_NORM = {'norm2': 'norms.0', 'norm1': 'norms.1', 'norm3': 'norms.2'}
_FFN = {'linear1': 'ffn.layers.0.0', 'linear2': 'ffn.layers.1'}
_TOP = {
    'transformer.level_embed': 'level_embed',
    'transformer.enc_output.': 'memory_trans_fc.',
    'transformer.enc_output_norm.': 'memory_trans_norm.',
    'transformer.pos_trans.': 'pos_trans_fc.',
    'transformer.pos_trans_norm.': 'pos_trans_norm.',
    'transformer.pix_trans.': 'pix_trans_fc.',
    'transformer.pix_trans_norm.': 'pix_trans_norm.',
}
_RULES = [  # (regex on the official key, replacement); first match wins
    (r'^backbone\.0\.body\.fpn1\.0\.(weight|bias)$', r'neck.0.fpn1.0.\1'),
    (r'^backbone\.0\.body\.(.*)$', r'backbone.\1'),
    (r'^input_proj\.([0-2])\.0\.(weight|bias)$', r'neck.1.convs.\1.conv.\2'),
    (r'^input_proj\.([0-2])\.1\.(weight|bias)$', r'neck.1.convs.\1.gn.\2'),
    (r'^class_embed\.(\d+)\.(weight|bias)$', r'bbox_head.cls_branches.\1.\2'),
    (r'^bbox_embed\.(\d+)\.layers\.(\d)\.(weight|bias)$', None),  # Sequential index 0/2/4
    (r'^transformer\.encoder\.layers\.(\d+)\.self_attn\.(.*)$', r'encoder.layers.\1.self_attn.\2'),
    (r'^transformer\.decoder\.layers\.(\d+)\.cross_attn\.(.*)$', r'decoder.layers.\1.cross_attn.\2'),
    (r'^transformer\.decoder\.layers\.(\d+)\.self_attn\.(.*)$', r'decoder.layers.\1.self_attn.attn.\2'),
]


def _is_duplicate_or_buffer(key: str) -> bool:
    """Keys dropped on purpose: the decoder's aliases of the heads and the RoPE tables."""
    return (key.startswith('transformer.decoder.class_embed.')
            or key.startswith('transformer.decoder.bbox_embed.')
            or key.endswith('.freqs_cos') or key.endswith('.freqs_sin'))


def rename_official_key(key: str, num_backbone_levels: int = 3) -> str:
    """Our DETA's parameter name of one official key (dropped keys raise KeyError)."""
    if _is_duplicate_or_buffer(key):
        raise KeyError(f'{key} is an alias or a recomputed buffer, not converted')
    for off, ours in _TOP.items():
        if key == off or (off.endswith('.') and key.startswith(off)):
            return ours + key[len(off):]
    m = re.match(r'^input_proj\.(\d+)\.([01])\.(weight|bias)$', key)
    if m and int(m.group(1)) >= num_backbone_levels:
        j = int(m.group(1)) - num_backbone_levels
        return f"neck.1.extra_convs.{j}.{'conv' if m.group(2) == '0' else 'gn'}.{m.group(3)}"
    m = re.match(r'^bbox_embed\.(\d+)\.layers\.(\d)\.(weight|bias)$', key)
    if m:
        return f'bbox_head.reg_branches.{m.group(1)}.{2 * int(m.group(2))}.{m.group(3)}'
    m = re.match(r'^transformer\.(encoder|decoder)\.layers\.(\d+)\.(norm\d|linear\d)\.(.*)$', key)
    if m:
        part, idx, mod, rest = m.groups()
        table = _FFN if mod.startswith('linear') else (_ENC_NORM if part == 'encoder' else _DEC_NORM)
        return f'{part}.layers.{idx}.{table[mod]}.{rest}'
    for pattern, repl in _RULES:
        if repl is not None and re.match(pattern, key):
            return re.sub(pattern, repl, key)
    raise KeyError(f'No pe_dense name for official DETA key {key!r}')


def _check_alias(sd: StateDict, key: str, val: torch.Tensor) -> None:
    """The decoder's head copies are the top-level heads; differing values mean a corrupt file."""
    prefix = 'transformer.decoder.'
    if not key.startswith(prefix) or val.is_meta:
        return
    top = sd.get(key[len(prefix):])
    if top is not None and not torch.equal(top, val):
        raise CheckpointError(f'{key} differs from {key[len(prefix):]}; the official model shares '
                              'these modules, so the checkpoint is inconsistent')


def _select_rows(val: torch.Tensor, rows: Sequence[int], key: str) -> torch.Tensor:
    if max(rows) >= val.shape[0]:
        raise CheckpointError(f'{key}: class map asks for row {max(rows)} but the official head '
                              f'has {val.shape[0]} rows')
    return val[list(rows)]


def convert_official_deta(sd: StateDict, class_map: Optional[Sequence[int]] = None,
                          num_dec_layers: int = 6, num_backbone_levels: int = 3) -> StateDict:
    """Official DETA_pe state dict -> pe_dense DETA state dict.

    Raises ``CheckpointError`` if its RoPE tables differ from pe_dense's rule or its decoder
    head aliases differ from the top-level heads.

    ``class_map[i]`` is the official class row of our label ``i`` (``None``: keep all rows).
    The encoder's proposal head (index ``num_dec_layers``) keeps row 0 as objectness.
    """
    check_rope_tables(sd)
    out = OrderedDict()
    profiling = [k for k in sd if k.endswith(PROFILING_SUFFIXES)]
    if profiling:
        # thop's op/parameter counters; the official loader filters them out the same way
        print_log(f'DETA conversion: dropped {len(profiling)} profiling buffers '
                  f'({", ".join(PROFILING_SUFFIXES)}), e.g. {profiling[0]}', logger='current')
    for key, val in sd.items():
        if key.endswith(PROFILING_SUFFIXES):
            continue
        if _is_duplicate_or_buffer(key):
            _check_alias(sd, key, val)
            continue
        new = rename_official_key(key, num_backbone_levels)
        if key == 'backbone.0.body.positional_embedding':
            val = val.reshape(val.shape[-2], val.shape[-1])
        m = re.match(r'^class_embed\.(\d+)\.', key)
        if m and class_map is not None:
            rows = list(class_map)
            if int(m.group(1)) == num_dec_layers:
                rows = [0] + rows[1:]
            val = _select_rows(val, rows, key)
        out[new] = val
    return out


# --------------------------------------------------------------------------- files
def load_official_deta(path: str) -> StateDict:
    """The ``model`` state dict of an official DETA_pe checkpoint, read weights-only.

    The released files pickle the training ``argparse.Namespace`` next to the weights (and
    maybe optimizer / scheduler state); that class is the only addition to the allowlist.
    """
    obj = load_checkpoint_file(path, extra_safe_globals=[argparse.Namespace])
    sd = obj.get('model', obj)
    if not isinstance(sd, dict) or not any(k.startswith('backbone.0.body.') for k in sd):
        raise CheckpointError(f"{path}: no official DETA 'model' state dict (expected keys "
                              "starting with 'backbone.0.body.')")
    return {k: v for k, v in sd.items() if isinstance(v, torch.Tensor)}


def check_layout(sd: StateDict, spec: DetaSpec, path: str = 'checkpoint') -> None:
    """Raise naming the first keys / shapes that differ from the official layout of ``spec``."""
    check_key_layout(sd, official_deta_layout(spec), 'official DETA', path)


def convert_file(src: str, dst: str, class_map: Optional[Sequence[int]] = COCO_CATEGORY_IDS,
                 num_dec_layers: int = 6) -> StateDict:
    """Convert ``deta_coco_1824pix.pth`` into an MMEngine checkpoint usable as ``load_from``."""
    sd = convert_official_deta(load_official_deta(src), class_map, num_dec_layers)
    meta = {'converted_from': src, 'layout': 'pe_dense.DETA',
            'class_map': list(class_map) if class_map is not None else None}
    from ...engine.atomic_io import atomic_torch_save
    atomic_torch_save({'state_dict': sd, 'meta': meta}, dst)
    return sd


__all__ = ['DetaSpec', 'COCO_CATEGORY_IDS', 'official_deta_layout', 'random_official_state_dict',
           'official_rope_table', 'check_rope_tables',
           'rename_official_key', 'convert_official_deta', 'load_official_deta', 'check_layout',
           'convert_file']
