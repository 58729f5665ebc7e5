"""The paper in miniature: CLIP-train a tiny PE-Core, find its best dense layer, align it
spatially to that layer + mask relations, and sweep both models' layers again.

arXiv 2504.13181 finds, in its layer-wise frozen-feature analysis, that a contrastively trained
encoder keeps its best dense features in an intermediate layer, and that spatial alignment
(section 5: self-distillation from that frozen layer plus SAM mask relations) moves them to the
last layer. Here every stage is a toy that runs on a CPU, built from the project's pieces:

1. data      ``pe_dense.toy``: captioned shapes (CLIP), ADE20k-, NYU-, DAVIS-like dense sets, and
             SA-1B-like pictures with stored instance masks;
2. core      ``configs/core/pe_core_toy.py`` through MMEngine's Runner;
3. sweep     ``pe_dense.analysis.layer_sweep`` (ridge probes, label propagation) on held-out splits;
4. align     ``configs/align/toy_align_sa1b_masks.py``: ``SpatialAligner`` with the frozen core at
             its best intermediate block as teacher and ``LoadSA1BMaskTargets`` as mask teacher
             (SAM weights are not available here: the stored masks stand in, docs/align.md);
5. sweep of the aligned student, comparison figure and table.

Departures from the two configs, and why: the CLIP training and the alignment both run at 64 px
(8x8 tokens; the toy CLIP config trains at 32 px = 4x4 tokens, too coarse for dense probes), so
each model is swept at the resolution it was trained at; schedules are set per plan (``PLANS``:
the full plan keeps the CLIP config's 800 x 64 and the alignment config's 300 steps).
"""
import json
import os
import os.path as osp
import time
from copy import deepcopy
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from .feature_cache import FeatureCache, build_source
from .layer_sweep import normalised, run_sweep
from .tasks import build_task

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CORE_CONFIG = osp.join(ROOT, 'configs', 'core', 'pe_core_toy.py')
ALIGN_CONFIG = osp.join(ROOT, 'configs', 'align', 'toy_align_sa1b_masks.py')
DENSE = ('segmentation', 'depth', 'tracking')
IMG_SIZE = 64  # train, align and sweep resolution: 8x8 tokens of patch 8

# Sizes of the two versions. ``quick`` keeps the same stages with less data and fewer steps.
PLANS = dict(
    full=dict(imagetext=dict(num_train=1536, num_val=120), core_iters=800, core_batch=64,
              ade20k=dict(num_train=96, num_val=32), nyu=dict(num_train=64, num_val=24),
              davis=dict(num_train=1, num_val=4, frames=10),
              sa1b=dict(num_train=256, num_val=8), align_iters=300),
    quick=dict(imagetext=dict(num_train=512, num_val=60), core_iters=160, core_batch=32,
               ade20k=dict(num_train=48, num_val=16), nyu=dict(num_train=32, num_val=12),
               davis=dict(num_train=1, num_val=2, frames=8),
               sa1b=dict(num_train=96, num_val=4), align_iters=120),
)


class Progress:
    """Stage names with wall-clock times, printed as they finish (and kept for the report)."""

    def __init__(self, echo: Callable[[str], None] = print):
        self.echo, self.t0, self.stages = echo, time.time(), []

    def run(self, name: str, fn, *args, **kwargs):
        self.echo(f'[miniature {time.time() - self.t0:7.1f} s] {name} ...')
        t = time.time()
        out = fn(*args, **kwargs)
        dt = time.time() - t
        self.stages.append(dict(stage=name, seconds=round(dt, 1)))
        self.echo(f'[miniature {time.time() - self.t0:7.1f} s] {name} done in {dt:.1f} s')
        return out

    @property
    def total(self) -> float:
        return time.time() - self.t0


# ---------------------------------------------------------------------------- 1. data
def make_data(root: str, plan: dict, seed: int = 0) -> Dict[str, str]:
    """All toy sets under ``root`` (deterministic in ``seed``); returns their folders."""
    from mmengine.config import Config

    from pe_dense.toy import make_ade20k, make_davis, make_imagetext, make_nyu, make_sa1b
    toy = dict(Config.fromfile(CORE_CONFIG).toy_data)
    toy.update(plan['imagetext'])
    roots = {k: osp.join(root, k) for k in ('imagetext', 'ade20k', 'nyu', 'davis', 'sa1b')}
    make_imagetext(roots['imagetext'], seed=seed, progress_bar=False, **toy)
    make_ade20k(roots['ade20k'], seed=seed, progress_bar=False, **plan['ade20k'])
    make_nyu(roots['nyu'], seed=seed, progress_bar=False, **plan['nyu'])
    make_davis(roots['davis'], seed=seed, progress_bar=False, **plan['davis'])
    make_sa1b(roots['sa1b'], seed=seed, progress_bar=False, **plan['sa1b'])
    return roots


# ---------------------------------------------------------------------------- 2. PE-Core
def core_arch() -> dict:
    """The toy CLIP vision arch at ``IMG_SIZE`` (position table for 8x8 tokens)."""
    from mmengine.config import Config
    arch = dict(Config.fromfile(CORE_CONFIG).model.vision.arch)
    return dict(arch, img_size=IMG_SIZE)


def spatial_arch() -> dict:
    """The aligned student's arch: the core's, without pooling head, with LayerScale 0.1 (as
    PE-Spatial vs PE-Core, and toy_align_tiny.py's ``tiny_spatial``)."""
    return dict(core_arch(), pool=None, out_dim=None, layer_scale=0.1, ln_post=False)


def run_tag(work_dir: str) -> str:
    """'seed0_core' for .../seed0/core: unique MMEngine logger / visualizer names per run."""
    parts = osp.normpath(work_dir).split(os.sep)
    return '_'.join(parts[-2:])


def core_config(data_root: str, work_dir: str, seed: int, iters: int, batch: int = 64):
    """configs/core/pe_core_toy.py on ``data_root`` at ``IMG_SIZE``: ``iters`` steps of
    ``batch`` pictures (the config's 800 x 64 unless the quick plan asks for less)."""
    from mmengine.config import Config
    cfg = Config.fromfile(CORE_CONFIG)
    cfg.work_dir = work_dir
    cfg.experiment_name = f'miniature_{run_tag(work_dir)}_{time.time_ns()}'
    cfg.randomness = dict(seed=seed, deterministic=False)
    cfg.model.vision.arch = core_arch()
    cfg.model.zero_shot.classnames = osp.join(data_root, 'classnames.json')
    cfg.train_dataloader.batch_size = batch
    for dl in (cfg.train_dataloader, cfg.val_dataloader, cfg.test_dataloader):
        dl.dataset.data_root = data_root
        for t in dl.dataset.pipeline:
            if t.type == 'ClipRandomResizedCrop':
                t.size = IMG_SIZE
            elif t.type == 'ClipResize':
                t.scale = IMG_SIZE
    for hook in cfg.custom_hooks:
        if hook.type == 'ProgressiveResolutionHook':
            hook.schedule = [(0, IMG_SIZE)]
    warm = min(30, iters // 4)
    cfg.param_scheduler[0].end = warm
    cfg.param_scheduler[1].update(begin=warm, end=iters)
    cfg.train_cfg.update(max_iters=iters, val_interval=iters)
    cfg.default_hooks.logger.interval = max(iters // 4, 1)
    cfg.default_hooks.checkpoint.update(interval=iters, max_keep_ckpts=1)
    cfg.visualizer.update(vis_backends=[dict(type='LocalVisBackend')], name=cfg.experiment_name)
    return cfg


def train(cfg) -> dict:
    """tools/train.py's path (crash-safe checkpoint IO, quiet runner); returns the metrics of
    the last validation (the CLIP config's zero-shot / retrieval; none for the aligner)."""
    from mmengine.hooks import Hook

    from pe_dense.engine import enable_checkpoint_io
    from pe_dense.engine.launch import build_runner, setup_train

    class KeepMetrics(Hook):
        metrics: dict = {}

        def after_val_epoch(self, runner, metrics=None):
            self.metrics = {k: float(v) for k, v in (metrics or {}).items()}

    enable_checkpoint_io()
    runner = build_runner(setup_train(cfg), verbose=False)
    keep = KeepMetrics()
    runner.register_hook(keep, 'LOWEST')
    runner.train()
    return keep.metrics


# ---------------------------------------------------------------------------- 3/5. sweeps
def build_tasks(roots: Dict[str, str], max_images: int = 0) -> list:
    """The dense tasks: probes fit on the train split, scored on the held-out split."""
    return [build_task('segmentation', roots['ade20k'], size=IMG_SIZE, max_images=max_images,
                       num_classes=150),
            build_task('depth', roots['nyu'], size=IMG_SIZE, max_images=max_images),
            build_task('tracking', roots['davis'], size=IMG_SIZE, max_images=max_images)]


def sweep(arch: dict, checkpoint: str, tasks: list, cache_dir: str) -> dict:
    """Every block of the PE ``arch`` loaded from ``checkpoint`` on ``tasks``."""
    source = build_source(arch, checkpoint=checkpoint, device='cpu')
    cache = FeatureCache(cache_dir, batch_size=16, progress=False)
    report = run_sweep(source, tasks, cache, list(range(source.num_layers)), progress=False)
    report['weights'] = checkpoint
    return report


def dense_rank(report: dict, tasks: Sequence[str] = DENSE) -> Dict[int, float]:
    """Mean over ``tasks`` of each layer's normalised score (1 = that task's best layer)."""
    per = []
    for name in tasks:
        t = report['tasks'][name]
        per.append(normalised({int(k): v for k, v in t['scores'].items()}, t['higher_is_better']))
    return {k: float(np.mean([p[k] for p in per])) for k in per[0]}


def teacher_layer(report: dict) -> int:
    """The best intermediate block (not the last) by :func:`dense_rank`; ties to the shallower.

    The paper's teacher is PE-Core-G's best intermediate layer for dense tasks (section 5);
    the last block cannot teach the last block anything new, hence intermediate only.
    """
    rank = dense_rank(report)
    inner = [k for k in rank if k < report['num_layers'] - 1]
    return min(inner, key=lambda k: (-rank[k], k))


# ---------------------------------------------------------------------------- 4. alignment
def align_config(core_ckpt: str, layer: int, sa1b_root: str, work_dir: str, seed: int,
                 iters: int):
    """configs/align/toy_align_sa1b_masks.py with this model as student init and teacher."""
    from mmengine.config import Config
    cfg = Config.fromfile(ALIGN_CONFIG)
    cfg.work_dir = work_dir
    cfg.experiment_name = f'miniature_{run_tag(work_dir)}_{time.time_ns()}'
    cfg.randomness = dict(seed=seed, deterministic=False)
    init = dict(type='Pretrained', checkpoint=core_ckpt)
    cfg.model.student.update(arch=spatial_arch(), init_cfg=init)
    cfg.model.teacher = dict(backbone=dict(type='PE', arch=core_arch(), init_cfg=init),
                             layer=layer)
    grid = IMG_SIZE // core_arch()['patch_size']
    for t in cfg.train_dataloader.dataset.pipeline:
        if t.type == 'AlignResize':
            t.size = IMG_SIZE
        elif t.type == 'LoadSA1BMaskTargets':
            t.update(grid=grid, grid_hw=(grid, grid))
    cfg.train_dataloader.dataset.data_root = sa1b_root
    cfg.val_images = osp.join(sa1b_root, 'sa_000001')
    cfg.train_cfg.max_iters = iters
    cfg.default_hooks.logger.interval = max(iters // 4, 1)
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=iters, by_epoch=False,
                                        max_keep_ckpts=1)
    cfg.visualizer.update(vis_backends=[dict(type='LocalVisBackend')], name=cfg.experiment_name)
    return cfg


# ---------------------------------------------------------------------------- comparison
def seed_row(core: dict, aligned: dict, layer: int) -> dict:
    """Per task: best layers, last-layer scores and the gain of the last layer (signed so that
    positive = better: mIoU / J&F up, RMSE down)."""
    row = dict(teacher_layer=layer, tasks={})
    last = str(core['num_layers'] - 1)
    for name in DENSE:
        c, a = core['tasks'][name], aligned['tasks'][name]
        sign = 1 if c['higher_is_better'] else -1
        row['tasks'][name] = dict(
            metric=c['metric'], higher_is_better=c['higher_is_better'],
            core_scores=c['scores'], aligned_scores=a['scores'],
            core_best_layer=c['best_layer'], aligned_best_layer=a['best_layer'],
            core_last=c['scores'][last], aligned_last=a['scores'][last],
            core_best=c['scores'][str(c['best_layer'])],
            last_gain=sign * (a['scores'][last] - c['scores'][last]))
    return row


def summarise(rows: Dict[str, dict]) -> dict:
    """Mean and per-seed values of the headline numbers, per task."""
    out = {}
    for name in DENSE:
        per = {s: r['tasks'][name] for s, r in rows.items()}
        first = next(iter(per.values()))
        out[name] = dict(
            metric=first['metric'], higher_is_better=first['higher_is_better'],
            **{k: float(np.mean([p[k] for p in per.values()]))
               for k in ('core_last', 'aligned_last', 'core_best', 'last_gain')},
            core_best_layers=[p['core_best_layer'] for p in per.values()],
            aligned_best_layers=[p['aligned_best_layer'] for p in per.values()],
            last_improved=[p['last_gain'] > 0 for p in per.values()])
    return out


def markdown_table(rows: Dict[str, dict], summary: dict) -> str:
    """The per-seed table and the mean row per task (markdown)."""
    lines = ['| task (metric) | seed | teacher block | unaligned best block | aligned best block '
             '| unaligned last | aligned last | last-layer gain |',
             '|---|---|---|---|---|---|---|---|']
    for name in DENSE:
        s = summary[name]
        arrow = '\u2191' if s['higher_is_better'] else '\u2193'
        label = f"{name} ({s['metric']} {arrow})"
        for seed, r in rows.items():
            t = r['tasks'][name]
            lines.append(f"| {label} | {seed} | {r['teacher_layer']} | {t['core_best_layer']} | "
                         f"{t['aligned_best_layer']} | {t['core_last']:.3f} | "
                         f"{t['aligned_last']:.3f} | {t['last_gain']:+.3f} |")
        lines.append(f"| {label} | mean | | | | {s['core_last']:.3f} | {s['aligned_last']:.3f} "
                     f"| {s['last_gain']:+.3f} |")
    return '\n'.join(lines) + '\n'


def plot(rows: Dict[str, dict], path: str):
    """One panel per task: score vs block, unaligned and aligned (mean line, seeds thin)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(DENSE), figsize=(4.2 * len(DENSE), 3.4), squeeze=False)
    for ax, name in zip(axes[0], DENSE):
        per = [r['tasks'][name] for r in rows.values()]
        layers = sorted(int(k) for k in per[0]['core_scores'])
        for key, label, color in (('core_scores', 'PE-Core (unaligned)', 'C0'),
                                  ('aligned_scores', 'aligned', 'C3')):
            vals = np.array([[p[key][str(k)] for k in layers] for p in per])
            for v in vals:
                ax.plot(layers, v, '-', color=color, lw=0.6, alpha=0.35)
            ax.plot(layers, vals.mean(0), '-o', color=color, ms=4, label=label)
        teachers = sorted({r['teacher_layer'] for r in rows.values()})
        for k in teachers:
            ax.axvline(k, color='0.5', ls=':', lw=1)
        arrow = '\u2191' if per[0]['higher_is_better'] else '\u2193'
        ax.set_title(f'{name} (teacher block{"s" if len(teachers) > 1 else ""} '
                     f'{", ".join(map(str, teachers))} dotted)', fontsize=9)
        ax.set_xticks(layers)
        ax.set_xlabel('layer (block index)')
        ax.set_ylabel(f"{per[0]['metric']} {arrow}")
        ax.legend(fontsize=8)
    fig.suptitle(f'toy PE: layer sweep before / after spatial alignment ({len(rows)} seed'
                 f'{"s" if len(rows) > 1 else ""}, held-out splits)', fontsize=10)
    fig.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


# ---------------------------------------------------------------------------- driver
def run(out: str, seeds: Sequence[int] = (0,), quick: bool = False, threads: int = 1,
        echo: Callable[[str], None] = print) -> dict:
    """All stages; writes ``out``/{results.json, table.md, comparison.png} and returns results."""
    import torch
    before = torch.get_num_threads()
    torch.set_num_threads(threads)  # tiny matmuls: extra threads only contend
    try:
        return _run(out, seeds, quick, threads, echo)
    finally:
        torch.set_num_threads(before)


def _run(out, seeds, quick, threads, echo) -> dict:
    plan = PLANS['quick' if quick else 'full']
    prog = Progress(echo)
    os.makedirs(out, exist_ok=True)
    roots = prog.run('1 data: toy image-text, ADE20k-, NYU-, DAVIS-, SA-1B-like sets',
                     make_data, osp.join(out, 'data'), plan)
    tasks = build_tasks(roots)
    cache = osp.join(out, 'feature_cache')
    rows, runs = {}, {}
    for seed in seeds:
        tag = f'seed{seed}'
        core_dir = osp.join(out, tag, 'core')
        cfg = core_config(roots['imagetext'], core_dir, seed, plan['core_iters'],
                          plan['core_batch'])
        core_val = prog.run(f'2 train PE-Core CLIP ({tag}, {plan["core_iters"]} iters)',
                            train, cfg)
        core_ckpt = osp.join(core_dir, f'iter_{plan["core_iters"]}.pth')
        core = prog.run(f'3 layer sweep of PE-Core ({tag})', sweep, core_arch(), core_ckpt,
                        tasks, cache)
        layer = teacher_layer(core)
        align_dir = osp.join(out, tag, 'align')
        cfg = align_config(core_ckpt, layer, roots['sa1b'], align_dir, seed, plan['align_iters'])
        prog.run(f'4 align to block {layer} + SA-1B masks ({tag}, {plan["align_iters"]} iters)',
                 train, cfg)
        student = osp.join(align_dir, 'student_official.pt')
        aligned = prog.run(f'5 layer sweep of the aligned model ({tag})', sweep, spatial_arch(),
                           student, tasks, cache)
        rows[str(seed)] = seed_row(core, aligned, layer)
        runs[str(seed)] = dict(core_checkpoint=core_ckpt, aligned_checkpoint=student,
                               core_val=core_val, core_sweep=core, aligned_sweep=aligned,
                               dense_rank=dense_rank(core))
        with open(osp.join(out, tag, 'sweeps.json'), 'w') as fh:
            json.dump(runs[str(seed)], fh, indent=2)
    summary = summarise(rows)
    results = dict(quick=quick, seeds=list(seeds), img_size=IMG_SIZE, plan=plan, threads=threads,
                   per_seed=rows, summary=summary, runs=runs, stages=prog.stages,
                   total_seconds=round(prog.total, 1))
    table = markdown_table(rows, summary)
    with open(osp.join(out, 'table.md'), 'w') as fh:
        fh.write(table)
    plot(rows, osp.join(out, 'comparison.png'))
    with open(osp.join(out, 'results.json'), 'w') as fh:
        json.dump(results, fh, indent=2)
    echo(table)
    echo(f'[miniature] total {prog.total:.0f} s; wrote {out}/results.json, table.md, '
         'comparison.png')
    return results
