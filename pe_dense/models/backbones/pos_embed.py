"""Absolute position embeddings and patch kernels at sizes other than the pretraining one."""
import math

import torch
import torch.nn.functional as F


def grid_of(num_positions: int, num_prefix: int) -> int:
    """Side of the square grid a (prefix + grid^2)-row embedding was trained on."""
    side = math.isqrt(num_positions - num_prefix)
    if side * side != num_positions - num_prefix:
        raise ValueError(f'Position embedding with {num_positions} rows and {num_prefix} prefix '
                         'rows is not a square grid')
    return side


def sample_pos_embed(pos_embed: torch.Tensor, num_prefix: int, grid_hw, mode: str = 'resample',
                     interpolation: str = 'bilinear') -> torch.Tensor:
    """Position rows for a (grid_h, grid_w) token grid, prefix rows first.

    ``'resample'`` follows the official towers: bilinear, align_corners False. ``'tile'``
    follows the official DETA backbone (PE-G, no cls token): token (i, j) takes row
    (i % g, j % g) of the g x g grid. Either way the prefix (cls) rows are kept unchanged in
    front, so towers with a cls token tile their patch grid too.
    """
    prefix, grid = pos_embed[:num_prefix], pos_embed[num_prefix:]
    side = grid_of(pos_embed.shape[0], num_prefix)
    gh, gw = grid_hw
    grid = grid.reshape(side, side, -1)
    if mode == 'tile':
        rows = torch.arange(gh, device=grid.device) % side
        cols = torch.arange(gw, device=grid.device) % side
        return torch.cat([prefix, grid[rows][:, cols].reshape(gh * gw, -1)])
    if mode != 'resample':
        raise ValueError(f"pos_embed_mode must be 'resample' or 'tile', got {mode!r}")
    if (gh, gw) != (side, side):
        grid = F.interpolate(grid.permute(2, 0, 1)[None], size=(gh, gw), mode=interpolation,
                             align_corners=False)[0].permute(1, 2, 0)
    return torch.cat([prefix, grid.reshape(gh * gw, -1)])


def resize_pos_embed(pos_embed: torch.Tensor, num_prefix: int, new_grid: int,
                     interpolation: str = 'bilinear') -> torch.Tensor:
    """A checkpoint's embedding resampled to another square pretraining grid."""
    return sample_pos_embed(pos_embed, num_prefix, (new_grid, new_grid), 'resample', interpolation)


def resize_patch_kernel(weight: torch.Tensor, new_size: int) -> torch.Tensor:
    """Bicubic resize of a patch-embedding kernel, as the official detection backbone does (14 -> 16)."""
    if weight.shape[-1] == new_size and weight.shape[-2] == new_size:
        return weight
    return F.interpolate(weight.float(), size=(new_size, new_size), mode='bicubic',
                         align_corners=False).to(weight.dtype)
