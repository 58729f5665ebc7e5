"""Which layer? Score every (or every k-th) layer of a frozen model on several tasks.

Features come from a :class:`FeatureCache` (one model pass per image list for all layers,
reused across tasks and runs); each layer is scored by the tasks' closed-form probes. The
result is a JSON-able dict and a plot in the style of the paper's layer-wise figures.
"""
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence

import numpy as np
from tqdm import tqdm

from .feature_cache import FeatureCache, FeatureSource
from .tasks import Task


def sweep_layers(num_layers: int, every: int = 1, layers: Optional[Sequence[int]] = None
                 ) -> List[int]:
    """Explicit ``layers`` (negatives allowed), else every ``every``-th block plus the last."""
    if layers:
        bad = [k for k in layers if not -num_layers <= k < num_layers]
        if bad:
            raise IndexError(f'layers {bad} outside a {num_layers}-layer model')
        return sorted({k % num_layers for k in layers})
    if every < 1:
        raise ValueError(f'every must be >= 1, got {every}')
    return sorted(set(range(every - 1, num_layers, every)) | {num_layers - 1})


def best_layer(scores: Dict[int, float], higher_is_better: bool) -> int:
    """Layer with the best score; ties go to the shallower (cheaper) layer."""
    key = (lambda k: (-scores[k], k)) if higher_is_better else (lambda k: (scores[k], k))
    return min(scores, key=key)


def run_sweep(source: FeatureSource, tasks: Sequence[Task], cache: FeatureCache,
              layers: Sequence[int], progress: bool = True) -> dict:
    """Score ``layers`` of ``source`` on every task; returns the report dict."""
    if not tasks:
        raise ValueError('run_sweep: no tasks given')
    layers = source.check_layers(layers)
    report = dict(model=source.name, fingerprint=cache.model_key(source),
                  num_layers=source.num_layers, layers=list(layers), tasks={})
    for task in tasks:
        maps = {g: cache.get(source, paths, size, layers)
                for g, (paths, size) in task.groups(source.patch_size).items()}
        scores = {}
        for k in tqdm(layers, desc=f'{task.name} probes', disable=not progress, leave=False):
            scores[k] = task.score({g: m[k] for g, m in maps.items()})
        report['tasks'][task.name] = dict(
            metric=task.metric, higher_is_better=task.higher_is_better,
            scores={str(k): v for k, v in scores.items()},
            best_layer=best_layer(scores, task.higher_is_better))
    report['cache'] = dict(hits=cache.hits, misses=cache.misses)
    return report


def normalised(scores: Dict[int, float], higher_is_better: bool) -> Dict[int, float]:
    """Scores mapped to [0, 1], 1 = best layer, so tasks with different units share an axis."""
    vals = np.array(list(scores.values()), dtype=float)
    lo, hi = vals.min(), vals.max()
    out = {k: (v - lo) / (hi - lo) if hi > lo else 1.0 for k, v in scores.items()}
    return out if higher_is_better else {k: 1 - v for k, v in out.items()}


def plot_sweep(report: dict, path: str):
    """Left: normalised score vs layer, one line per task; right: raw scores per task."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    tasks = report['tasks']
    fig, axes = plt.subplots(1, 1 + len(tasks), figsize=(4.2 * (1 + len(tasks)), 3.4),
                             squeeze=False)
    axes = axes[0]
    for i, (name, t) in enumerate(tasks.items()):
        scores = {int(k): v for k, v in t['scores'].items()}
        xs = sorted(scores)
        norm = normalised(scores, t['higher_is_better'])
        color = f'C{i}'
        axes[0].plot(xs, [norm[k] for k in xs], '-o', ms=3, color=color, label=name)
        axes[0].plot([t['best_layer']], [norm[t['best_layer']]], '*', ms=14, color=color,
                     mec='k')
        ax = axes[i + 1]
        ax.plot(xs, [scores[k] for k in xs], '-o', ms=3, color=color)
        ax.axvline(t['best_layer'], color=color, ls='--', lw=1)
        ax.set_title(f"{name}: best layer {t['best_layer']}", fontsize=9)
        arrow = '\u2191' if t['higher_is_better'] else '\u2193'
        ax.set_xlabel('layer (block index)')
        ax.set_ylabel(f"{t['metric']} {arrow}")
    axes[0].set_xlabel('layer (block index)')
    axes[0].set_ylabel('normalised score (1 = best layer)')
    axes[0].set_title(report['model'], fontsize=9)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def write_report(report: dict, out_dir: str) -> Dict[str, str]:
    """``sweep.json`` and ``sweep.png`` in ``out_dir``; returns their paths."""
    os.makedirs(out_dir, exist_ok=True)
    paths = dict(json=osp.join(out_dir, 'sweep.json'), plot=osp.join(out_dir, 'sweep.png'))
    with open(paths['json'], 'w') as fh:
        json.dump(report, fh, indent=2)
    plot_sweep(report, paths['plot'])
    return paths
