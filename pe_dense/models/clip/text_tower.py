"""PE-Core text tower: a causal CLIP text transformer in the official checkpoint layout.

Parameter names follow the official whole-CLIP checkpoints (``token_embedding``,
``positional_embedding``, ``transformer.resblocks.{i}.{ln_1, attn.in_proj_weight, attn.out_proj,
ln_2, mlp.c_fc, mlp.c_proj}``, ``ln_final``, ``text_projection``), so ``state_dict()`` is the
official text layout without renaming.
"""
from collections import OrderedDict
from typing import Union

import torch
from mmengine.model import BaseModule
from mmengine.registry import MODELS
from torch import nn

LN_EPS = 1e-5
VOCAB_SIZE = 49408  # the CLIP BPE vocabulary shipped with open_clip

# Official text configs (`PE_TEXT_CONFIG`, core/vision_encoder/config.py): context, width,
# layers, heads, output dim.
TEXT_CONFIGS = {
    'PE-Core-G14-448': dict(context_length=72, width=1280, layers=24, heads=20, output_dim=1280),
    'PE-Core-L14-336': dict(context_length=32, width=1024, layers=24, heads=16, output_dim=1024),
    'PE-Core-B16-224': dict(context_length=32, width=1024, layers=24, heads=16, output_dim=1024),
    'PE-Core-S16-384': dict(context_length=32, width=512, layers=12, heads=8, output_dim=512),
    'PE-Core-T16-384': dict(context_length=32, width=512, layers=12, heads=8, output_dim=512),
}
_KEYS = ('context_length', 'width', 'layers', 'heads', 'output_dim')


def resolve_text_arch(arch: Union[str, dict]) -> dict:
    """Settings of a released text tower, or a complete custom dict (``vocab_size`` optional)."""
    if isinstance(arch, str):
        if arch not in TEXT_CONFIGS:
            raise KeyError(f'Unknown PE text arch {arch!r}; known: {sorted(TEXT_CONFIGS)} '
                           f'or a dict with keys {_KEYS}')
        return dict(TEXT_CONFIGS[arch], vocab_size=VOCAB_SIZE, mlp_ratio=4.0)
    if not isinstance(arch, dict):
        raise TypeError(f'text arch must be a name or a dict, got {type(arch).__name__}')
    s = dict(dict(vocab_size=VOCAB_SIZE, mlp_ratio=4.0), **arch)
    missing = [k for k in _KEYS if k not in s]
    unknown = set(s) - set(_KEYS) - {'vocab_size', 'mlp_ratio'}
    if missing or unknown:
        raise KeyError(f'Custom text arch: missing keys {missing}, unknown keys {sorted(unknown)}')
    if s['width'] % s['heads']:
        raise ValueError(f"Custom text arch: width {s['width']} not divisible by heads {s['heads']}")
    return s


class TextBlock(nn.Module):
    """Pre-norm block with ``nn.MultiheadAttention`` (packed in_proj, as the checkpoints store it)."""

    def __init__(self, width: int, heads: int, mlp_dim: int):
        super().__init__()
        self.ln_1 = nn.LayerNorm(width, eps=LN_EPS)
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.ln_2 = nn.LayerNorm(width, eps=LN_EPS)
        self.mlp = nn.Sequential(OrderedDict([
            ('c_fc', nn.Linear(width, mlp_dim)), ('gelu', nn.GELU()),
            ('c_proj', nn.Linear(mlp_dim, width))]))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.ln_1(x)
        x = x + self.attn(h, h, h, attn_mask=mask, need_weights=False)[0]
        return x + self.mlp(self.ln_2(x))


class TextTransformer(nn.Module):
    """Holds the blocks under the official ``transformer.resblocks`` names."""

    def __init__(self, width: int, layers: int, heads: int, mlp_dim: int):
        super().__init__()
        self.resblocks = nn.ModuleList(TextBlock(width, heads, mlp_dim) for _ in range(layers))


@MODELS.register_module()
class PETextTower(BaseModule):
    """Causal text transformer pooled at the EOT token (the highest id, found by argmax)."""

    def __init__(self, arch: Union[str, dict] = 'PE-Core-B16-224', init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        s = resolve_text_arch(arch)
        self.arch_settings = s
        self.context_length = s['context_length']
        self.vocab_size = s['vocab_size']
        self.width = width = s['width']
        self.output_dim = s['output_dim']
        self.token_embedding = nn.Embedding(s['vocab_size'], width)
        self.positional_embedding = nn.Parameter(torch.empty(self.context_length, width))
        self.transformer = TextTransformer(width, s['layers'], s['heads'],
                                           int(width * s['mlp_ratio']))
        self.ln_final = nn.LayerNorm(width, eps=LN_EPS)
        self.text_projection = nn.Parameter(torch.empty(width, self.output_dim))
        mask = torch.full((self.context_length, self.context_length), float('-inf')).triu_(1)
        self.register_buffer('attn_mask', mask, persistent=False)
        self._reset_parameters(s['layers'])

    def _reset_parameters(self, layers: int):
        """CLIP's init: small embeddings, depth-scaled projections (training from scratch)."""
        w = self.width
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.positional_embedding, std=0.01)
        proj_std, attn_std, fc_std = (w ** -0.5) * ((2 * layers) ** -0.5), w ** -0.5, (2 * w) ** -0.5
        for blk in self.transformer.resblocks:
            nn.init.normal_(blk.attn.in_proj_weight, std=attn_std)
            nn.init.normal_(blk.attn.out_proj.weight, std=proj_std)
            nn.init.normal_(blk.mlp.c_fc.weight, std=fc_std)
            nn.init.normal_(blk.mlp.c_proj.weight, std=proj_std)
        nn.init.normal_(self.text_projection, std=w ** -0.5)

    def forward(self, text: torch.Tensor) -> torch.Tensor:
        """(B, L) token ids, L <= context length -> (B, output_dim) unnormalised embeddings."""
        if text.ndim != 2:
            raise ValueError(f'text tokens must be (B, L), got shape {tuple(text.shape)}')
        n = text.shape[1]
        if n > self.context_length:
            raise ValueError(f'{n} tokens exceed the text context length {self.context_length}; '
                             'tokenize with the model context length')
        x = self.token_embedding(text) + self.positional_embedding[:n]
        mask = self.attn_mask[:n, :n].to(x.dtype)
        for blk in self.transformer.resblocks:
            x = blk(x, mask)
        x = self.ln_final(x)
        pooled = x[torch.arange(x.shape[0], device=x.device), text.argmax(dim=-1)]
        return pooled @ self.text_projection
