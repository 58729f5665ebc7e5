"""One place for every foreign layout of PE weights: official ``.pt``, timm, safetensors.

The backbone's own parameter names are the official vision-tower names, so the official
layout needs no renaming; timm's layout is converted both ways. Files are read with
``torch.load(weights_only=True)``: a checkpoint is untrusted input. The official detectors'
tower key layout (shared by the DETA and Mask R-CNN converters) and its check live here too.
"""
import math
import os
import pickle
import re
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Tuple

import torch

from .pos_embed import grid_of, resize_patch_kernel, resize_pos_embed

StateDict = Dict[str, torch.Tensor]


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not fit the model; the message says why."""


# --------------------------------------------------------------------------- reading files
def load_checkpoint_file(path: str, extra_safe_globals: Iterable = ()) -> dict:
    """Read a ``.pt``/``.pth``/``.bin`` or ``.safetensors`` file safely, naming the file on failure.

    ``path`` may also be a checkpoint name (``hf://``, ``hf-hub:``, ``timm/``, http(s)), see hub.py.
    """
    from .hub import resolve_checkpoint
    path = resolve_checkpoint(path)
    if not os.path.isfile(path):
        raise CheckpointError(f'Checkpoint file not found: {path}')
    if path.endswith('.safetensors'):
        from safetensors import SafetensorError
        from safetensors.torch import load_file
        try:
            return load_file(path, device='cpu')
        except (SafetensorError, OSError, ValueError) as err:
            raise CheckpointError(f'{path} is not a readable safetensors file: {err}') from err
    try:
        # Only the extras not yet allowed are added for this call, and only they are removed
        # afterwards: the process-wide allowlist (pe_dense.engine.safe_checkpoint) stays intact.
        # MMEngine's training-state classes are allowed for this call too, so a pe_dense
        # checkpoint loads without switching on the process-wide allowlist.
        from pe_dense.engine.safe_checkpoint import mmengine_safe_globals, supports_named_allowlist
        if supports_named_allowlist():
            extra_safe_globals = [*extra_safe_globals, *mmengine_safe_globals()]
        allowed = set(map(_global_key, torch.serialization.get_safe_globals()))
        extras = [g for g in extra_safe_globals if _global_key(g) not in allowed]
        with torch.serialization.safe_globals(extras):
            obj = torch.load(path, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError as err:
        raise CheckpointError(f'{path}: {refusal_message(err)}') from err
    except Exception as err:  # torch raises many types for truncated / foreign files
        raise CheckpointError(f'{path} is not a readable PyTorch checkpoint (truncated or not a '
                              f'checkpoint?): {str(err).splitlines()[0]}') from err
    if not isinstance(obj, dict):
        raise CheckpointError(f'{path} holds a {type(obj).__name__}, not a state dict')
    return obj


_REFUSED_GLOBAL = re.compile(r"GLOBAL ([\w\.]+)|got <class '([\w\.]+)'>")
_ANSI = re.compile(r'\x1b\[[0-9;]*m')


def refused_global(err: Exception) -> Optional[str]:
    """The class or function torch's weights-only unpickler refused, from its message."""
    found = _REFUSED_GLOBAL.search(str(err))
    return next((g for g in found.groups() if g), None) if found else None


def refusal_message(err: Exception) -> str:
    """What was refused and what to do, instead of torch's generic advice (with ANSI codes)."""
    what = refused_global(err)
    if what is None:  # no global named (e.g. an unsupported pickle opcode): torch's own reason
        text = _ANSI.sub('', str(err))
        reason = text.split('WeightsUnpickler error:', 1)[-1].split('Check the documentation')[0]
        return (f"refused by torch.load(weights_only=True): {' '.join(reason.split())} "
                '(not a file written by torch.save, or written with pickled objects)')
    head = (f'refused to unpickle {what}: checkpoints are read with torch.load(weights_only=True) '
            'and may hold only tensors and plain containers (a checkpoint is untrusted input).')
    if 'is blocked' in str(err):  # torch never allows this module (os, subprocess, ...)
        return head + f' torch blocks {what} outright: do not load this file.'
    return head + (f' If you trust this file, allow the class first with '
                   f'torch.serialization.add_safe_globals([{what}]), or re-save only its tensors.')


def _global_key(entry):
    """Allowlist entries are objects or (object, 'pickled.name') pairs."""
    return entry if not isinstance(entry, tuple) else entry[1]


def _unwrap(obj: dict) -> StateDict:
    """Strip the containers training code wraps weights in."""
    for key in ('state_dict', 'model', 'module', 'weights', 'model_ema'):
        if key in obj and isinstance(obj[key], dict):
            return _unwrap(obj[key])
    return obj


def _strip_prefix(sd: StateDict, prefix: str) -> StateDict:
    return {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}


def vision_state_dict(obj: dict) -> StateDict:
    """Official-layout vision weights from any supported checkpoint object."""
    sd = _unwrap(obj)
    sd = {k[len('module.'):] if k.startswith('module.') else k: v for k, v in sd.items()}
    for prefix in ('visual.', 'backbone.'):
        if any(k.startswith(prefix) for k in sd):
            sd = _strip_prefix(sd, prefix)
    tensors = {k: v for k, v in sd.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise CheckpointError('The checkpoint holds no tensors')
    if is_timm_layout(tensors):
        tensors = timm_to_official(tensors)
    return tensors


# --------------------------------------------------------------------------- timm layout
_BLOCK_RULES = [  # (official suffix, timm suffix) inside a block
    ('ln_1.', 'norm1.'), ('ln_2.', 'norm2.'),
    ('attn.in_proj_weight', 'attn.qkv.weight'), ('attn.in_proj_bias', 'attn.qkv.bias'),
    ('attn.out_proj.', 'attn.proj.'), ('ls_1.gamma', 'gamma_1'), ('ls_2.gamma', 'gamma_2'),
    ('mlp.c_fc.', 'mlp.fc1.'), ('mlp.c_proj.', 'mlp.fc2.'),
]
_TOP_RULES = [
    ('conv1.', 'patch_embed.proj.'), ('ln_pre.', 'norm_pre.'), ('ln_post.', 'norm.'),
    ('attn_pool.probe', 'attn_pool.latent'), ('attn_pool.attn.out_proj.', 'attn_pool.proj.'),
    ('attn_pool.layernorm.', 'attn_pool.norm.'), ('attn_pool.mlp.c_fc.', 'attn_pool.mlp.fc1.'),
    ('attn_pool.mlp.c_proj.', 'attn_pool.mlp.fc2.'),
]


def is_timm_layout(sd: StateDict) -> bool:
    return 'patch_embed.proj.weight' in sd


def _rename(key: str, to_timm: bool) -> Optional[str]:
    src_block, dst_block = ('transformer.resblocks.', 'blocks.')[::1 if to_timm else -1]
    if key.startswith(src_block):
        idx, rest = key[len(src_block):].split('.', 1)
        for off, tim in _BLOCK_RULES:
            src, dst = (off, tim) if to_timm else (tim, off)
            if rest.startswith(src):
                return f'{dst_block}{idx}.{dst}{rest[len(src):]}'
        return None
    for off, tim in _TOP_RULES:
        src, dst = (off, tim) if to_timm else (tim, off)
        if key.startswith(src):
            return dst + key[len(src):]
    return None


def timm_to_official(sd: StateDict) -> StateDict:
    """timm ``vit_pe_*`` weights in the official layout (exact inverse of official_to_timm)."""
    out = {}
    for key, val in sd.items():
        if key == 'cls_token':
            out['class_embedding'] = val.reshape(-1)
        elif key == 'pos_embed':
            out['positional_embedding'] = val.reshape(val.shape[-2], val.shape[-1])
        elif key == 'head.weight':
            out['proj'] = val.t().contiguous()
        elif key == 'head.bias':
            if val.abs().max() > 0:
                raise CheckpointError('timm head.bias is non-zero; the official layout has no '
                                      'projection bias')
        elif key in ('attn_pool.q.weight', 'attn_pool.q.bias'):
            kind = key.rsplit('.', 1)[1]
            kv = sd[f'attn_pool.kv.{kind}']
            out[f'attn_pool.attn.in_proj_{kind}'] = torch.cat([val, kv])
        elif key.startswith('attn_pool.kv.'):
            continue
        else:
            new = _rename(key, to_timm=False)
            if new is None:
                raise CheckpointError(f'Unknown key in a timm PE checkpoint: {key} '
                                      f'{tuple(val.shape)}')
            out[new] = val
    return out


def official_to_timm(sd: StateDict) -> StateDict:
    """Official vision weights in timm's ``vit_pe_*`` layout."""
    out = {}
    for key, val in sd.items():
        if key == 'class_embedding':
            out['cls_token'] = val.reshape(1, 1, -1)
        elif key == 'positional_embedding':
            out['pos_embed'] = val[None]
        elif key == 'proj':
            out['head.weight'] = val.t().contiguous()
            out['head.bias'] = val.new_zeros(val.shape[1])
        elif key.startswith('attn_pool.attn.in_proj_'):
            kind = key.rsplit('_', 1)[1]
            dim = val.shape[0] // 3
            out[f'attn_pool.q.{kind}'] = val[:dim]
            out[f'attn_pool.kv.{kind}'] = val[dim:]
        else:
            new = _rename(key, to_timm=True)
            if new is None:
                raise CheckpointError(f'Unknown key in an official PE checkpoint: {key}')
            out[new] = val
    return out


# --------------------------------------------------------------------------- fitting a model
def adapt_to_model(sd: StateDict, model_sd: StateDict, num_prefix: int,
                   pos_interpolation: str = 'bilinear') -> StateDict:
    """Resample what can be resampled (pos-emb grid, patch kernel); reject other shape mismatches."""
    sd = dict(sd)
    pos = sd.get('positional_embedding')
    target = model_sd.get('positional_embedding')
    if pos is not None and target is not None and pos.shape != target.shape:
        src_prefix = pos.shape[0] - math.isqrt(pos.shape[0]) ** 2
        if src_prefix != num_prefix:
            raise CheckpointError(
                f'positional_embedding: checkpoint {tuple(pos.shape)} has {src_prefix} cls row(s), '
                f'model {tuple(target.shape)} expects {num_prefix}')
        new_grid = grid_of(target.shape[0], num_prefix)
        sd['positional_embedding'] = resize_pos_embed(pos, num_prefix, new_grid, pos_interpolation)
    kernel = sd.get('conv1.weight')
    target = model_sd.get('conv1.weight')
    if kernel is not None and target is not None and kernel.shape[-1] != target.shape[-1] \
            and kernel.shape[:2] == target.shape[:2]:
        sd['conv1.weight'] = resize_patch_kernel(kernel, target.shape[-1])
    bad = [f'{k}: checkpoint {tuple(v.shape)} vs model {tuple(model_sd[k].shape)}'
           for k, v in sd.items() if k in model_sd and v.shape != model_sd[k].shape]
    if bad:
        raise CheckpointError('Checkpoint does not fit this PE (another size?): ' + '; '.join(bad[:8])
                              + (f' (+{len(bad) - 8} more)' if len(bad) > 8 else ''))
    return sd


# --------------------------------------------------------------------------- writing files
def save_state_dict(sd: StateDict, path: str, layout: str = 'official') -> None:
    """Write vision weights as ``official`` (bare dict), ``timm`` or ``pe_dense`` (MMEngine style)."""
    if layout == 'timm':
        sd = official_to_timm(sd)
    elif layout == 'pe_dense':
        sd = {'state_dict': sd, 'meta': {'layout': 'pe_dense'}}
    elif layout != 'official':
        raise ValueError(f"layout must be 'official', 'timm' or 'pe_dense', got {layout!r}")
    from ...engine.atomic_io import atomic_path
    with atomic_path(path) as tmp:
        if path.endswith('.safetensors'):
            from safetensors.torch import save_file
            flat = sd['state_dict'] if layout == 'pe_dense' else sd
            save_file({k: v.contiguous() for k, v in flat.items()}, tmp)
        else:
            torch.save(sd, tmp)


def convert_file(src: str, dst: str, to: str = 'pe_dense') -> StateDict:
    """Convert an official / timm / safetensors / pe_dense PE checkpoint into another layout."""
    sd = vision_state_dict(load_checkpoint_file(src))
    save_state_dict(sd, dst, layout=to)
    return sd


__all__ = ['CheckpointError', 'load_checkpoint_file', 'refused_global', 'refusal_message', 'vision_state_dict', 'is_timm_layout',
           'timm_to_official', 'official_to_timm', 'adapt_to_model', 'save_state_dict',
           'convert_file', 'check_key_layout', 'weight_bias_layout', 'norm_layout',
           'deconv_layout', 'windowed_tower_layout', 'TowerSpec']


def check_key_layout(sd: StateDict, layout: Dict[str, tuple], what: str,
                     path: str = 'checkpoint') -> None:
    """Raise naming the first keys / shapes of ``sd`` that differ from ``layout``."""
    missing = [k for k in layout if k not in sd]
    extra = [k for k in sd if k not in layout]
    wrong = [f'{k}: {tuple(sd[k].shape)} != {layout[k]}' for k in layout
             if k in sd and tuple(sd[k].shape) != tuple(layout[k])]
    if missing or extra or wrong:
        raise CheckpointError(f'{path} does not match the {what} layout: missing '
                              f'{missing[:5]}, unexpected {extra[:5]}, shape {wrong[:5]}')


# --------------------------------------------------------------------------- official key layouts
Layout = List[Tuple[str, tuple]]


def weight_bias_layout(prefix: str, weight: tuple, bias: bool = True) -> Layout:
    """``prefix.weight`` of shape ``weight`` and (if ``bias``) ``prefix.bias`` of ``weight[0]``."""
    return [(f'{prefix}.weight', weight)] + ([(f'{prefix}.bias', (weight[0],))] if bias else [])


def norm_layout(prefix: str, dim: int) -> Layout:
    """A LayerNorm / GroupNorm: ``prefix.weight`` and ``prefix.bias``, both ``(dim,)``."""
    return [(f'{prefix}.weight', (dim,)), (f'{prefix}.bias', (dim,))]


def deconv_layout(prefix: str, cin: int, cout: int) -> Layout:
    """``ConvTranspose2d(cin, cout, 2, stride=2)``: weight (cin, cout, 2, 2), bias (cout,)."""
    return [(f'{prefix}.weight', (cin, cout, 2, 2)), (f'{prefix}.bias', (cout,))]


@dataclass
class TowerSpec:
    """Sizes of an official windowed detection tower (defaults: the released G towers).

    Detection converters subclass it with their heads' sizes and their own grid defaults.
    """
    embed_dim: int = 1536
    depth: int = 50
    num_heads: int = 16
    mlp_dim: int = 8960
    patch_size: int = 16
    pos_grid: int = 24                   # the stored absolute pos-emb grid
    window_size: int = 24
    global_attn_indexes: Tuple[int, ...] = (12, 24, 36, 49)
    img_size: int = 1824                 # global RoPE tables are sized for img_size / patch
    layer_scale: bool = True             # PE-Spatial (LayerScale); PE-Core towers: False


def windowed_tower_layout(spec, prefix: str) -> Layout:
    """The official detection towers' keys and shapes, in their state-dict order.

    DETA_pe's ``PEv1_simpleFPN`` and detectron2's ``PEv1_det`` (``apps/detection/DETA_pe/
    models/pev1.py``, ``apps/detection/detectron2_pe/modeling/backbone/pev1_det.py``) build
    the same tower: a ``(1, N, C)`` position embedding, shared window / global RoPE modules
    whose tables are stored once globally and again under every block, and LayerScale when
    ``init_values`` is set. ``spec`` is a :class:`TowerSpec`; ``prefix`` ends with a dot. Global RoPE tables have ``(img_size / patch_size)^2`` rows, window ones
    ``window_size^2`` (every block is global when ``window_size`` is 0).
    """
    c, hd = spec.embed_dim, spec.embed_dim // spec.num_heads
    win = (spec.window_size ** 2, hd)
    glb = ((spec.img_size // spec.patch_size) ** 2, hd)
    out = [(f'{prefix}positional_embedding', (1, spec.pos_grid ** 2, c)),
           (f'{prefix}conv1.weight', (c, 3, spec.patch_size, spec.patch_size))]
    out += norm_layout(f'{prefix}ln_pre', c)
    for name, tab in (('rope_win', win), ('rope_glb', glb)):
        out += [(f'{prefix}{name}.freqs_cos', tab), (f'{prefix}{name}.freqs_sin', tab)]
    for i in range(spec.depth):
        b = f'{prefix}transformer.resblocks.{i}'
        tab = glb if (i in spec.global_attn_indexes or not spec.window_size) else win
        out += [(f'{b}.attn.in_proj_weight', (3 * c, c)), (f'{b}.attn.in_proj_bias', (3 * c,))]
        out += weight_bias_layout(f'{b}.attn.out_proj', (c, c))
        out += [(f'{b}.attn.rope.freqs_cos', tab), (f'{b}.attn.rope.freqs_sin', tab)]
        out += [(f'{b}.ls_1.gamma', (c,))] if spec.layer_scale else []
        out += norm_layout(f'{b}.ln_1', c)
        out += weight_bias_layout(f'{b}.mlp.c_fc', (spec.mlp_dim, c))
        out += weight_bias_layout(f'{b}.mlp.c_proj', (c, spec.mlp_dim))
        out += norm_layout(f'{b}.ln_2', c)
        out += [(f'{b}.ls_2.gamma', (c,))] if spec.layer_scale else []
    return out
