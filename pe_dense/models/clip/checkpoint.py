"""Whole-CLIP checkpoints: the official layout <-> PECLIP's module names.

Official PE-Core CLIP files hold the vision tower under ``visual.``, the text tower at the top
level (``token_embedding``, ``positional_embedding``, ``transformer.resblocks.*``, ``ln_final``,
``text_projection``) and ``logit_scale``. PECLIP keeps the text tower under ``text.``.
RoPE frequency tables (``*rope*freqs``) are constants our towers recompute; they are kept aside
on load and written back on export so a round trip is exact.
"""
from typing import Dict, Tuple

import torch

from ..backbones.checkpoint import CheckpointError, _unwrap

StateDict = Dict[str, torch.Tensor]
TEXT_TOP = ('token_embedding.', 'positional_embedding', 'transformer.', 'ln_final.',
            'text_projection')


def official_to_clip(obj: dict) -> Tuple[StateDict, StateDict]:
    """(PECLIP state dict, derived constants) from an official whole-CLIP checkpoint object."""
    sd = _unwrap(obj)
    sd = {k[len('module.'):] if k.startswith('module.') else k: v for k, v in sd.items()
          if isinstance(v, torch.Tensor)}
    if not any(k.startswith('visual.') for k in sd):
        raise CheckpointError('Not a whole-CLIP checkpoint: no "visual." keys (a vision-only '
                              'file loads into the PE backbone instead)')
    out, derived, unknown = {}, {}, []
    for key, val in sd.items():
        if 'rope' in key:
            derived[key] = val
        elif key.startswith('visual.') or key == 'logit_scale':
            out[key] = val
        elif key.startswith(TEXT_TOP):
            out['text.' + key] = val
        else:
            unknown.append(key)
    if unknown:
        raise CheckpointError(f'Unknown keys in a whole-CLIP checkpoint: {unknown[:8]}')
    return out, derived


def clip_to_official(sd: StateDict, derived: StateDict = None) -> StateDict:
    """Official whole-CLIP layout from a PECLIP state dict (training-only extras dropped)."""
    out = {}
    for key, val in sd.items():
        if key.startswith('visual.') or key == 'logit_scale':
            out[key] = val
        elif key.startswith('text.'):
            out[key[len('text.'):]] = val
    out.update(derived or {})
    return out
