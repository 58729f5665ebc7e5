"""Perception Encoder vision tower as an MMEngine backbone.

Module names are the official ones, so ``state_dict()`` is the official checkpoint layout.
One block serves global and window attention; one RoPE module both position rules.
"""
import logging
from collections import OrderedDict
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.logging import print_log
from mmengine.model import BaseModule
from mmengine.registry import MODELS
from timm.layers import DropPath
from timm.models._features import feature_take_indices
from torch import nn
from torch.utils.checkpoint import checkpoint

from .arch import resolve_arch
from .checkpoint import adapt_to_model, load_checkpoint_file, vision_state_dict
from .pos_embed import sample_pos_embed
from .rope import Rope2D, RopeTable, apply_rope

LN_EPS = 1e-5


class LayerScale(nn.Module):

    def __init__(self, dim: int, init_value: float):
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), float(init_value)))

    def forward(self, x):
        return x * self.gamma


class Attention(nn.Module):
    """Multi-head self-attention with a fused q;k;v projection (nn.MultiheadAttention's names)."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * dim))
        self.out_proj = nn.Linear(dim, dim)
        nn.init.xavier_uniform_(self.in_proj_weight)

    def forward(self, x: torch.Tensor, rope: Optional[RopeTable]) -> torch.Tensor:
        b, n, c = x.shape
        qkv = F.linear(x, self.in_proj_weight, self.in_proj_bias)
        q, k, v = qkv.view(b, n, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4).unbind(0)
        if rope is not None:
            q, k = apply_rope(q, rope), apply_rope(k, rope)
        x = F.scaled_dot_product_attention(q, k, v)  # scale head_dim ** -0.5, as the official code
        return self.out_proj(x.transpose(1, 2).reshape(b, n, c))


def window_partition(x: torch.Tensor, hw: Tuple[int, int], size: int):
    """(B, H*W, C) -> (B*nW, size*size, C), zero-padding the grid to a multiple of ``size``."""
    b, _, c = x.shape
    h, w = hw
    x = x.view(b, h, w, c)
    ph, pw = (size - h % size) % size, (size - w % size) % size
    if ph or pw:
        x = F.pad(x, (0, 0, 0, pw, 0, ph))  # padded tokens join as keys, unmasked (official)
    hp, wp = h + ph, w + pw
    x = x.view(b, hp // size, size, wp // size, size, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, size * size, c), (hp, wp)


def window_unpartition(x: torch.Tensor, size: int, padded_hw, hw, batch: int) -> torch.Tensor:
    hp, wp = padded_hw
    h, w = hw
    x = x.view(batch, hp // size, wp // size, size, size, -1).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(batch, hp, wp, -1)[:, :h, :w].reshape(batch, h * w, -1)


class ResidualAttentionBlock(nn.Module):
    """Pre-norm block; ``window_size > 0`` attends within non-overlapping windows."""

    def __init__(self, dim: int, num_heads: int, mlp_dim: int, layer_scale: Optional[float],
                 drop_path: float = 0., window_size: int = 0):
        super().__init__()
        self.ln_1 = nn.LayerNorm(dim, eps=LN_EPS)
        self.attn = Attention(dim, num_heads)
        self.ls_1 = LayerScale(dim, layer_scale) if layer_scale is not None else nn.Identity()
        self.ln_2 = nn.LayerNorm(dim, eps=LN_EPS)
        self.mlp = nn.Sequential(OrderedDict([
            ('c_fc', nn.Linear(dim, mlp_dim)), ('gelu', nn.GELU()), ('c_proj', nn.Linear(mlp_dim, dim))]))
        self.ls_2 = LayerScale(dim, layer_scale) if layer_scale is not None else nn.Identity()
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.window_size = window_size

    def _attend(self, x, hw, rope):
        if not self.window_size:
            return self.attn(x, rope)
        windows, padded_hw = window_partition(x, hw, self.window_size)
        out = self.attn(windows, rope)
        return window_unpartition(out, self.window_size, padded_hw, hw, x.shape[0])

    def forward(self, x: torch.Tensor, hw: Tuple[int, int], rope: Optional[RopeTable]):
        x = x + self.drop_path(self.ls_1(self._attend(self.ln_1(x), hw, rope)))
        return x + self.drop_path(self.ls_2(self.mlp(self.ln_2(x))))


class Transformer(nn.Module):
    """Holds the blocks under the official ``transformer.resblocks`` names."""

    def __init__(self, blocks: List[ResidualAttentionBlock]):
        super().__init__()
        self.resblocks = nn.ModuleList(blocks)


class AttentionPooling(nn.Module):
    """One learned probe attends over all tokens, then a residual LayerNorm + MLP."""

    def __init__(self, dim: int, num_heads: int = 8, mlp_ratio: int = 4):
        super().__init__()
        self.probe = nn.Parameter(torch.randn(1, 1, dim) * dim ** -0.5)
        self.attn = nn.MultiheadAttention(dim, num_heads, batch_first=True)
        self.layernorm = nn.LayerNorm(dim, eps=LN_EPS)
        self.mlp = nn.Sequential(OrderedDict([
            ('c_fc', nn.Linear(dim, dim * mlp_ratio)), ('gelu', nn.GELU()),
            ('c_proj', nn.Linear(dim * mlp_ratio, dim))]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        probe = self.probe.expand(x.shape[0], -1, -1).to(x.dtype)
        x = self.attn(probe, x, x, need_weights=False)[0]
        return (x + self.mlp(self.layernorm(x)))[:, 0]


@MODELS.register_module()
class PE(BaseModule):
    """Perception Encoder vision tower (Core / Lang / Spatial, every released size).

    Args:
        arch: a released name (``'PE-Spatial-G14-448'``) or a dict of settings.
        img_size: pretraining size override; the pos-emb grid is ``img_size // patch_size``.
        patch_size: patch override; checkpoint kernels are resized bicubically on load.
        out_indices: blocks whose tokens are returned as NCHW maps (negatives allowed).
        out_cls_token: also return each tapped block's cls token (B, C), after the maps
            (DINOv2-style linear probes concatenate it to the patch tokens).
        with_embedding: also return the pooled, projected image embedding (last).
        final_norm: apply ``ln_post`` to the last block's output.
        pos_embed_mode: ``'resample'`` (official towers) or ``'tile'`` (official DETA).
        rope_mode: ``'pe'`` (official towers) or ``'eva'`` (official DETA / Mask R-CNN).
        rope_pt_seq_len: the ``'eva'`` rule's pretraining range (DETA 16, Mask R-CNN 32).
        window_size, global_attn_indexes: window attention everywhere except the listed blocks.
        pad_to_patch: zero-pad inputs to a multiple of the patch (else raise).
        frozen_stages: freeze the stem and the first ``frozen_stages`` blocks (-1: none).
        frozen: freeze everything and stay in eval mode (frozen-feature probes).
        with_cp: activation checkpointing per block while training.
        depth: keep only the first ``depth`` blocks (None: the arch's). For smoke runs of the
            real configs on new hardware (``--cfg-options model.backbone.depth=4``); weights of
            the dropped blocks are not used.
    """

    def __init__(self,
                 arch: Union[str, dict] = 'PE-Spatial-B16-512',
                 img_size: Optional[int] = None,
                 patch_size: Optional[int] = None,
                 out_indices: Sequence[int] = (-1,),
                 out_cls_token: bool = False,
                 with_embedding: bool = False,
                 final_norm: bool = False,
                 pos_embed_mode: str = 'resample',
                 rope_mode: str = 'pe',
                 rope_pt_seq_len: int = 16,
                 window_size: int = 0,
                 global_attn_indexes: Sequence[int] = (),
                 pad_to_patch: bool = True,
                 drop_path_rate: float = 0.,
                 layer_scale_init: Optional[float] = None,
                 frozen_stages: int = -1,
                 frozen: bool = False,
                 with_cp: bool = False,
                 init_cfg: Optional[dict] = None,
                 depth: Optional[int] = None):
        super().__init__(init_cfg=init_cfg)
        s = resolve_arch(arch)
        if depth is not None:
            if not 0 < depth <= s['depth']:
                raise ValueError(f'PE: depth must be in [1, {s["depth"]}] for {arch}, got {depth}')
            s = dict(s, depth=depth)
        self.arch_settings = s
        self.patch_size = patch_size or s['patch_size']
        self.embed_dim = width = s['width']
        self.depth = s['depth']
        self.num_heads = s['heads']
        self.out_dim = s['out_dim']
        self.has_cls = s['cls_token']
        self.grid = (img_size or s['img_size']) // self.patch_size
        self.window_size = window_size
        if window_size and self.has_cls:
            print_log('PE: window attention runs without the cls token (ViTDet/DETA style)',
                      logger='current', level=logging.INFO)
        self.num_prefix_tokens = int(self.has_cls and not window_size)
        self._out_indices_spec = tuple(out_indices)
        self.out_indices = self._normalise_indices(out_indices)
        if out_cls_token and not self.num_prefix_tokens:
            raise ValueError(f'out_cls_token=True needs a cls token: arch {arch} has none'
                             + (' (window attention drops it)' if self.has_cls else ''))
        self.out_cls_token = out_cls_token
        self.with_embedding = with_embedding
        if with_embedding and s['pool'] != 'attn':
            raise ValueError(f'with_embedding=True needs an attention-pooled arch; {arch} has none')
        if final_norm and not s['ln_post']:
            raise ValueError(f'final_norm=True needs ln_post, which arch {arch} does not have')
        self.final_norm = final_norm
        self.pos_embed_mode = pos_embed_mode
        self.pad_to_patch = pad_to_patch
        self.frozen_stages = frozen_stages
        self.frozen = frozen
        self.with_cp = with_cp

        self.conv1 = nn.Conv2d(3, width, self.patch_size, self.patch_size, bias=False)
        scale = width ** -0.5
        if self.has_cls:
            self.class_embedding = nn.Parameter(scale * torch.randn(width))
        self.positional_embedding = nn.Parameter(
            scale * torch.randn(int(self.has_cls) + self.grid ** 2, width))
        self.ln_pre = nn.LayerNorm(width, eps=LN_EPS)
        layer_scale = layer_scale_init if layer_scale_init is not None else s['layer_scale']
        drop = [drop_path_rate * i / max(self.depth - 1, 1) for i in range(self.depth)]
        global_idx = {i % self.depth for i in global_attn_indexes}
        self.transformer = Transformer([
            ResidualAttentionBlock(width, self.num_heads, s['mlp_dim'], layer_scale, drop[i],
                                   0 if i in global_idx else window_size)
            for i in range(self.depth)])
        if s['ln_post']:
            self.ln_post = nn.LayerNorm(width, eps=LN_EPS)
        if s['pool'] == 'attn':
            self.attn_pool = AttentionPooling(width)
        if s['out_dim']:
            self.proj = nn.Parameter(scale * torch.randn(width, s['out_dim']))
        self.rope = Rope2D(width // self.num_heads, mode=rope_mode, pos_offset=int(self.has_cls),
                           pt_seq_len=rope_pt_seq_len)
        self._init_linear()
        self._freeze()

    # ------------------------------------------------------------------ construction
    def _normalise_indices(self, indices: Sequence[int]) -> Tuple[int, ...]:
        out = []
        for i in indices:
            if not -self.depth <= i < self.depth:
                raise IndexError(f'out index {i} outside a {self.depth}-block PE')
            out.append(i % self.depth)
        return tuple(out)

    def _init_linear(self):
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def _stem_params(self):
        yield from self.conv1.parameters()
        yield from self.ln_pre.parameters()
        yield self.positional_embedding
        if self.has_cls:
            yield self.class_embedding

    def _freeze(self):
        if self.frozen:
            self.requires_grad_(False)
            self.eval()
            return
        if self.frozen_stages >= 0:
            for p in self._stem_params():
                p.requires_grad_(False)
            for blk in self.transformer.resblocks[:self.frozen_stages]:
                blk.requires_grad_(False)
                blk.eval()

    def train(self, mode: bool = True):
        super().train(mode and not self.frozen)
        if mode and not self.frozen and self.frozen_stages > 0:
            for blk in self.transformer.resblocks[:self.frozen_stages]:
                blk.eval()
        return self

    # ------------------------------------------------------------------ weights
    def init_weights(self):
        cfg = self.init_cfg
        if isinstance(cfg, dict) and cfg.get('type') == 'Pretrained':
            self.load_pretrained(cfg['checkpoint'])
            self._is_init = True
        else:
            super().init_weights()

    def load_pretrained(self, path: str, strict: bool = False):
        """Load official / timm / safetensors / pe_dense weights, resampling pos-emb and kernel."""
        sd = vision_state_dict(load_checkpoint_file(path))
        sd = adapt_to_model(sd, self.state_dict(), int(self.has_cls))
        missing, unexpected = self.load_state_dict(sd, strict=strict)
        print_log(f'PE: loaded {path}; missing keys: {missing or "none"}; '
                  f'unexpected keys: {unexpected or "none"}', logger='current',
                  level=logging.WARNING if (missing or unexpected) else logging.INFO)
        return missing, unexpected

    # ------------------------------------------------------------------ forward
    def _patchify(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        p = self.patch_size
        if h < p or w < p:
            raise ValueError(f'PE: input {h}x{w} is smaller than one {p}x{p} patch')
        ph, pw = (p - h % p) % p, (p - w % p) % p
        if ph or pw:
            if not self.pad_to_patch:
                raise ValueError(f'PE: input {h}x{w} is not divisible by the patch size {p} '
                                 '(set pad_to_patch=True to zero-pad bottom/right)')
            x = F.pad(x, (0, pw, 0, ph))
        return self.conv1(x)

    def _rope_for(self, blk: ResidualAttentionBlock, hw) -> RopeTable:
        if blk.window_size:
            return self.rope(blk.window_size, blk.window_size, 0)
        return self.rope(hw[0], hw[1], self.num_prefix_tokens)

    def forward_tokens(self, x: torch.Tensor, indices: Sequence[int] = (-1,),
                       token_mask: Optional[torch.Tensor] = None,
                       mask_token: Optional[torch.Tensor] = None):
        """Tokens (B, prefix + H*W, C) after each block in ``indices``, and the grid (H, W).

        Only the blocks up to the deepest index run. ``token_mask`` (B, H*W) marks patch tokens
        replaced by ``mask_token`` before the position embedding (MaskFeat-style training).
        """
        indices = self._normalise_indices(indices)
        x = self._patchify(x)
        b, _, gh, gw = x.shape
        x = x.flatten(2).transpose(1, 2)
        if token_mask is not None:
            x = torch.where(token_mask[..., None], mask_token.to(x.dtype), x)
        pos = sample_pos_embed(self.positional_embedding, int(self.has_cls), (gh, gw),
                               self.pos_embed_mode)
        if self.num_prefix_tokens:
            x = torch.cat([self.class_embedding.expand(b, 1, -1).to(x.dtype), x], dim=1)
        else:
            pos = pos[int(self.has_cls):]
        x = self.ln_pre(x + pos.to(x.dtype))
        outs = {}
        for i, blk in enumerate(self.transformer.resblocks[:max(indices) + 1]):
            rope = self._rope_for(blk, (gh, gw))
            if self.with_cp and self.training and x.requires_grad:
                x = checkpoint(blk, x, (gh, gw), rope, use_reentrant=False)
            else:
                x = blk(x, (gh, gw), rope)
            if i in indices:
                outs[i] = x
        return [outs[i] for i in indices], (gh, gw)

    def to_map(self, tokens: torch.Tensor, hw) -> torch.Tensor:
        """(B, prefix + H*W, C) -> (B, C, H, W)."""
        x = tokens[:, self.num_prefix_tokens:]
        return x.transpose(1, 2).reshape(x.shape[0], -1, *hw)

    def pool(self, tokens: torch.Tensor) -> torch.Tensor:
        """Image embedding from last-block tokens: ln_post, attention pool, projection."""
        if not hasattr(self, 'attn_pool'):
            raise ValueError('This PE arch has no attention pooling head')
        x = self.ln_post(tokens) if hasattr(self, 'ln_post') else tokens
        x = self.attn_pool(x)
        return x @ self.proj if hasattr(self, 'proj') else x

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        last = self.depth - 1
        indices = tuple(self.out_indices) + ((last,) if self.with_embedding else ())
        tokens, hw = self.forward_tokens(x, indices)
        outs = []
        for i, t in zip(self.out_indices, tokens):
            if self.final_norm and i == last:
                t = self.ln_post(t)
            outs.append(self.to_map(t, hw))
        if self.out_cls_token:
            outs += [t[:, 0] for t in tokens[:len(self.out_indices)]]
        if self.with_embedding:
            outs.append(self.pool(tokens[-1]))
        return tuple(outs)

    def forward_intermediates(self, x: torch.Tensor,
                              indices: Optional[Union[int, Sequence[int]]] = None,
                              return_prefix_tokens: bool = False, norm: bool = False,
                              stop_early: bool = False, output_fmt: str = 'NCHW',
                              intermediates_only: bool = False):
        """timm's ``forward_intermediates`` contract (``timm.models.eva.Eva``, the ``vit_pe_*``).

        ``indices``: None for every block, an int n for the last n, or a list (negatives from
        the end). ``norm`` applies ``ln_post`` (timm's ``norm``; identity without one) to each
        intermediate; the final tokens always get it. Intermediates hold patch tokens only,
        ``(B, C, H, W)`` or ``(B, H*W, C)``, paired with their ``(B, prefix, C)`` prefix tokens
        when ``return_prefix_tokens``. Blocks after the last index run only when the final
        tokens are asked for without ``stop_early`` (as in timm, the final output is then the
        last *run* block's tokens).
        """
        if output_fmt not in ('NCHW', 'NLC'):
            raise ValueError(f"output_fmt must be 'NCHW' or 'NLC', got {output_fmt!r}")
        take, max_index = feature_take_indices(self.depth, indices)
        last = max_index if stop_early or intermediates_only else self.depth - 1
        tokens, hw = self.forward_tokens(x, take + [last])
        final = tokens.pop()
        if norm:
            tokens = [self._post_norm(t) for t in tokens]
        k = self.num_prefix_tokens
        inter = [self.to_map(t, hw) if output_fmt == 'NCHW' else t[:, k:] for t in tokens]
        if return_prefix_tokens:
            inter = list(zip(inter, [t[:, :k] for t in tokens]))
        if intermediates_only:
            return inter
        return self._post_norm(final), inter

    def _post_norm(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.ln_post(tokens) if hasattr(self, 'ln_post') else tokens

    def prune_intermediate_layers(self, indices: Union[int, Sequence[int]] = 1,
                                  prune_norm: bool = False, prune_head: bool = True) -> List[int]:
        """Drop the blocks after the deepest of ``indices`` (timm's contract) and, optionally,
        ``ln_post`` and the pooling head. ``out_indices`` are re-read against the new depth
        (``-1`` is then the last kept block)."""
        take, max_index = feature_take_indices(self.depth, indices)
        lost = [i for i in self._out_indices_spec if not -max_index - 1 <= i <= max_index]
        if lost:
            raise IndexError(f'prune_intermediate_layers({indices}) keeps {max_index + 1} blocks: '
                             f'out_indices {lost} would point past them')
        self.transformer.resblocks = self.transformer.resblocks[:max_index + 1]
        self.depth = max_index + 1
        self.out_indices = self._normalise_indices(self._out_indices_spec)
        if prune_norm and hasattr(self, 'ln_post'):
            del self.ln_post
            self.final_norm = False
        if prune_head:
            for name in ('attn_pool', 'proj'):
                if hasattr(self, name):
                    delattr(self, name)
            self.with_embedding = False
        return take
