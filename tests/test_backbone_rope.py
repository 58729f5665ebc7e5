"""RoPE tables against positions and frequencies written out by hand.

The EVA rule (official DETA backbone, apps/detection/DETA_pe/models/pev1.py,
``VisionRotaryEmbeddingFast``): an N-token axis sits at ``t = j / N * 16 + 1``; per axis of
``head_dim / 2`` channels the frequencies are ``theta ** (-2i / (head_dim / 2))``; the first
half of a token's channel pairs rotates with its column, the second with its row.
The PE rule (core/vision_encoder/rope.py, ``Rope2D``): integer positions, +1 with a cls token
that sits at angle 0. Nothing below calls pe_dense to build an expected value.
"""
import math

import pytest
import torch

from pe_dense.models.backbones import PE
from pe_dense.models.backbones.rope import Rope2D

HEAD_DIM = 16                          # 8 channels (4 pairs) per axis
FREQS = [1.0, 0.1, 0.01, 0.001]        # 1e4 ** (-0/8), (-2/8), (-4/8), (-6/8)


def expected(t_col: float, t_row: float) -> torch.Tensor:
    """exp(i * angle) of the 8 channel pairs of one token: 4 column pairs, then 4 row pairs."""
    angles = [t_col * f for f in FREQS] + [t_row * f for f in FREQS]
    return torch.tensor([complex(math.cos(a), math.sin(a)) for a in angles],
                        dtype=torch.complex64)


# (grid_h, grid_w, row, col, t_row, t_col) with t = j / N * 16 + 1 worked out by hand
EVA_TOKENS = [
    (14, 14, 0, 0, 1.0, 1.0),                      # window grid (14): first token
    (14, 14, 3, 7, 4.428571428571429, 9.0),        # 3/14*16+1, 7/14*16+1
    (14, 14, 13, 1, 15.857142857142858, 2.142857142857143),
    (32, 32, 5, 31, 3.5, 16.5),                    # global grid (32): j/2 + 1
    (32, 32, 30, 4, 16.0, 3.0),
    (6, 10, 2, 5, 6.333333333333333, 9.0),         # non-square: row over 6, column over 10
    (6, 10, 5, 9, 14.333333333333334, 15.4),
]


@pytest.mark.parametrize('grid_h, grid_w, row, col, t_row, t_col', EVA_TOKENS)
def test_eva_table_at_hand_written_positions(grid_h, grid_w, row, col, t_row, t_col):
    table = Rope2D(HEAD_DIM, mode='eva')(grid_h, grid_w)
    assert table.shape == (grid_h * grid_w, HEAD_DIM // 2)
    torch.testing.assert_close(table[row * grid_w + col], expected(t_col, t_row),
                               atol=1e-5, rtol=0)


def test_pe_rule_integer_positions_and_cls_at_zero():
    table = Rope2D(HEAD_DIM, mode='pe', pos_offset=1)(3, 5, num_prefix=1)
    assert table.shape == (1 + 15, HEAD_DIM // 2)
    torch.testing.assert_close(table[0], expected(0.0, 0.0))          # cls: no rotation
    torch.testing.assert_close(table[1 + 2 * 5 + 4], expected(5.0, 3.0), atol=1e-5, rtol=0)
    table = Rope2D(HEAD_DIM, mode='pe')(3, 5)                         # no cls: from 0
    torch.testing.assert_close(table[1 * 5 + 3], expected(3.0, 1.0), atol=1e-5, rtol=0)


def test_pe_uses_window_grid_in_window_blocks_and_image_grid_in_global_blocks():
    arch = dict(patch_size=8, width=32, depth=2, heads=2, mlp_dim=64, cls_token=False,
                img_size=64)
    pe = PE(arch=arch, rope_mode='eva', window_size=4, global_attn_indexes=(1,))
    win = pe._rope_for(pe.transformer.resblocks[0], (6, 10))
    glb = pe._rope_for(pe.transformer.resblocks[1], (6, 10))
    assert win.shape == (16, HEAD_DIM // 2) and glb.shape == (60, HEAD_DIM // 2)
    # window 4: (row 1, col 3) -> t = 1/4*16+1 = 5, 3/4*16+1 = 13
    torch.testing.assert_close(win[1 * 4 + 3], expected(13.0, 5.0), atol=1e-5, rtol=0)
    torch.testing.assert_close(glb[2 * 10 + 5], expected(9.0, 6.333333333333333),
                               atol=1e-5, rtol=0)
