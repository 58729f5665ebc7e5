"""2D rotary position embedding of PE, in both position rules the released code uses.

``'pe'``: integer grid coordinates (starting at 1 when the tower was trained with a cls
token, which then sits at (0, 0) with no rotation), as in the PE-Core/Lang/Spatial towers.
``'eva'``: coordinates of an N-token axis squeezed into the ``pt_seq_len``-position pretraining
range, ``arange(N) / N * pt_seq_len + 1``, as in the official DETA (16) and Mask R-CNN (32)
backbones (EVA-02 style).
Half of every head's channels rotate with x (column), the other half with y (row); channel
pairs (2i, 2i+1) rotate together.
"""
import math
from typing import Dict

import torch
from torch import nn

RopeTable = torch.Tensor  # complex (tokens, head_dim / 2): exp(i * angle) per channel pair


class Rope2D(nn.Module):
    """Builds unit complex tables of shape (tokens, head_dim / 2), one angle per channel pair."""

    def __init__(self, head_dim: int, mode: str = 'pe', theta: float = 10000.,
                 pos_offset: int = 0, pt_seq_len: int = 16):
        super().__init__()
        if mode not in ('pe', 'eva'):
            raise ValueError(f"rope_mode must be 'pe' or 'eva', got {mode!r}")
        if head_dim % 4:
            raise ValueError(f'2D RoPE needs head_dim divisible by 4, got {head_dim}')
        axis_dim = head_dim // 2
        freqs = 1.0 / theta ** (torch.arange(0, axis_dim, 2).float() / axis_dim)
        self.register_buffer('freqs', freqs, persistent=False)
        self.mode = mode
        self.pos_offset = pos_offset
        self.pt_seq_len = pt_seq_len
        self._cache: Dict[tuple, RopeTable] = {}  # least recently used first
        self.cache_size = 8  # grid sizes kept (training has 1-2; each G table at 1824 px ~5 MB)

    def _axis_angles(self, n: int, device) -> torch.Tensor:
        pos = torch.arange(n, device=device, dtype=torch.float32)
        if self.mode == 'eva':
            pos = pos / n * self.pt_seq_len + 1
        else:
            pos = pos + self.pos_offset
        return pos[:, None] * self.freqs.to(device)[None, :]

    def forward(self, grid_h: int, grid_w: int, num_prefix: int = 0) -> RopeTable:
        key = (grid_h, grid_w, num_prefix, self.freqs.device)
        if key not in self._cache:
            device = self.freqs.device
            ax = self._axis_angles(grid_w, device)[None, :, :].expand(grid_h, -1, -1)
            ay = self._axis_angles(grid_h, device)[:, None, :].expand(-1, grid_w, -1)
            angles = torch.cat([ax, ay], dim=-1).reshape(grid_h * grid_w, -1)
            if num_prefix:
                angles = torch.cat([angles.new_zeros(num_prefix, angles.shape[1]), angles])
            self._cache[key] = torch.polar(torch.ones_like(angles), angles)
            while len(self._cache) > self.cache_size:  # variable-size inference: bounded
                self._cache.pop(next(iter(self._cache)))
        else:
            self._cache[key] = self._cache.pop(key)  # most recently used last
        return self._cache[key]

    def _apply(self, fn, recurse=True):
        self._cache.clear()  # tables follow the module to its new device / dtype
        return super()._apply(fn, recurse)


def apply_rope(x: torch.Tensor, table: RopeTable) -> torch.Tensor:
    """Rotate channel pairs of ``x`` (..., tokens, head_dim) in fp32, return x's dtype.

    A pair (2i, 2i+1) is one complex number, so the rotation is a single complex product:
    an order of magnitude faster on CPU than the cos/sin formulation.
    """
    pairs = torch.view_as_complex(x.float().unflatten(-1, (-1, 2)))
    return torch.view_as_real(pairs * table).flatten(-2).to(x.dtype)


def stored_rope_table(head_dim: int, n: int, pt_seq_len: int = 16, sin: bool = False) -> torch.Tensor:
    """The (n*n, head_dim) ``freqs_cos`` / ``freqs_sin`` buffer the official detection backbones
    (DETA, Mask R-CNN) store: EVA-rule angles, each channel pair's angle written twice
    (interleaved), x (column) half first."""
    table = Rope2D(head_dim, mode='eva', pt_seq_len=pt_seq_len)(n, n)
    return (table.imag if sin else table.real).repeat_interleave(2, dim=-1)


def check_stored_rope_tables(sd: Dict[str, torch.Tensor], pt_seq_len: int = 16,
                             atol: float = 1e-4) -> None:
    """pe_dense recomputes RoPE, so every stored table must be what it would compute."""
    from .checkpoint import CheckpointError
    for key, val in sd.items():
        if not key.endswith(('.freqs_cos', '.freqs_sin')) or val.is_meta:
            continue
        n = math.isqrt(val.shape[0])
        if n * n != val.shape[0]:
            raise CheckpointError(f'{key}: {val.shape[0]} positions is not a square grid')
        ref = stored_rope_table(val.shape[1], n, pt_seq_len, key.endswith('_sin'))
        if val.shape != ref.shape or not torch.allclose(val.float(), ref, atol=atol):
            raise CheckpointError(
                f'{key} does not follow the EVA RoPE rule pe_dense uses (positions '
                f'arange(N)/N*{pt_seq_len}+1, theta 1e4, N={n})')
