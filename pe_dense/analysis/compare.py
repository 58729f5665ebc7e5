"""How do two checkpoints' layers relate? Linear CKA and token cosine similarity per layer.

Linear CKA (Kornblith et al., 2019) between token matrices X (N, C1) and Y (N, C2), both
centred over tokens: ``||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F)``. It is invariant to
orthogonal transforms and isotropic scaling, so it compares models of different widths.
Token cosine (same width only) is the mean cosine between the two models' tokens at the
same position of the same image - sensitive to the basis, so it says whether one model is a
fine-tuned continuation of the other (e.g. PE-Spatial vs PE-Core).
"""
import json
import os
import os.path as osp
from typing import Dict, Sequence

import numpy as np
import torch
import torch.nn.functional as F


def tokens_of(maps) -> torch.Tensor:
    """(N, C, h, w) -> (N*h*w, C) float64."""
    m = torch.from_numpy(np.array(maps, dtype=np.float64))
    return m.permute(0, 2, 3, 1).reshape(-1, m.shape[1])


def linear_cka(x: torch.Tensor, y: torch.Tensor) -> float:
    """Linear CKA of two (N, C) token matrices (same N, same token order)."""
    if x.shape[0] != y.shape[0]:
        raise ValueError(f'linear_cka: {x.shape[0]} vs {y.shape[0]} tokens (inputs must be '
                         'the same images at the same token grid)')
    x = x.double() - x.double().mean(0)
    y = y.double() - y.double().mean(0)
    num = (y.T @ x).pow(2).sum()
    den = torch.linalg.norm(x.T @ x) * torch.linalg.norm(y.T @ y)
    return float(num / den) if den > 0 else float('nan')


def token_cosine(x: torch.Tensor, y: torch.Tensor) -> float:
    """Mean cosine between corresponding tokens (needs equal widths)."""
    if x.shape != y.shape:
        raise ValueError(f'token_cosine: token shapes {tuple(x.shape)} vs {tuple(y.shape)} '
                         '(needs the same width and grid)')
    return float(F.cosine_similarity(x.double(), y.double(), dim=1).mean())


def compare_layers(maps_a: Dict[int, np.ndarray], maps_b: Dict[int, np.ndarray],
                   names: Sequence[str] = ('A', 'B')) -> dict:
    """CKA of every layer pair, and the same-index diagonal of CKA / token cosine."""
    la, lb = sorted(maps_a), sorted(maps_b)
    ta = {k: tokens_of(maps_a[k]) for k in la}
    tb = {k: tokens_of(maps_b[k]) for k in lb}
    cka = [[linear_cka(ta[i], tb[j]) for j in lb] for i in la]
    common = [k for k in la if k in tb]
    same_width = all(ta[k].shape == tb[k].shape for k in common)
    cos = {str(k): token_cosine(ta[k], tb[k]) for k in common} if same_width else None
    return dict(models=list(names), layers_a=la, layers_b=lb, cka=cka,
                cka_diagonal={str(k): cka[la.index(k)][lb.index(k)] for k in common},
                token_cosine=cos)


def plot_comparison(result: dict, path: str):
    """Heat map of CKA (rows: model A layers, columns: model B) and the diagonal curves."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    a, b = result['models']
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(9, 3.8))
    im = ax0.imshow(np.array(result['cka']), origin='lower', vmin=0, vmax=1, cmap='magma',
                    aspect='auto')
    ax0.set_xticks(range(len(result['layers_b'])), result['layers_b'], fontsize=7)
    ax0.set_yticks(range(len(result['layers_a'])), result['layers_a'], fontsize=7)
    ax0.set_xlabel(f'{b} layer')
    ax0.set_ylabel(f'{a} layer')
    ax0.set_title('linear CKA', fontsize=9)
    fig.colorbar(im, ax=ax0)
    diag = result['cka_diagonal']
    ax1.plot([int(k) for k in diag], list(diag.values()), '-o', ms=3, label='linear CKA')
    if result['token_cosine'] is not None:
        cos = result['token_cosine']
        ax1.plot([int(k) for k in cos], list(cos.values()), '-s', ms=3, label='token cosine')
    ax1.set_xlabel('layer (same index in both)')
    ax1.set_ylabel('similarity')
    ax1.set_ylim(min([-0.05, *(result['token_cosine'] or {}).values()]), 1.05)
    ax1.set_title(f'{a} vs {b}', fontsize=9)
    ax1.legend(fontsize=8)
    fig.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def write_comparison(result: dict, out_dir: str) -> Dict[str, str]:
    os.makedirs(out_dir, exist_ok=True)
    paths = dict(json=osp.join(out_dir, 'compare.json'), plot=osp.join(out_dir, 'compare.png'))
    with open(paths['json'], 'w') as fh:
        json.dump(result, fh, indent=2)
    plot_comparison(result, paths['plot'])
    return paths
