#!/usr/bin/env python
"""PE forward throughput and peak memory against timm's ``vit_pe_*`` with the same weights.

Each row runs in a fresh subprocess so its peak resident memory is its own. fp32 on CPU.
Prints a table and writes work_dirs/benchmarks/backbone.json.

    python benchmarks/backbone.py [--iters 3] [--rows t16_384 s16_384 ...] [--compile]

``--compile`` adds a ``compiled`` row per model: ``torch.compile(PE, fullgraph=True)``
(inductor; the compile time is not counted) and its speed over eager, timed in the same process
with eager and compiled batches alternating (so that load from other processes hits both).
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

import torch

ROWS = {  # name: (arch, px, batch, window_size, global blocks, compare with timm)
    't16_384': ('PE-Core-T16-384', 384, 8, 0, (), True),
    's16_384': ('PE-Core-S16-384', 384, 8, 0, (), True),
    'b16_224': ('PE-Core-B16-224', 224, 8, 0, (), True),
    'b16_1024_global': ('PE-Core-B16-224', 1024, 1, 0, (), False),
    'b16_1024_window': ('PE-Core-B16-224', 1024, 1, 14, (2, 5, 8, 11), False),
    'b16_512_window': ('PE-Core-B16-224', 512, 1, 14, (2, 5, 8, 11), False),
}


def gemm_peak_gflops(n: int = 2048, iters: int = 10) -> float:
    """The machine's fp32 matrix-multiply rate, the ceiling for a ViT forward."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    start = time.perf_counter()
    for _ in range(iters):
        torch.mm(a, b)
    return 2 * n ** 3 * iters / (time.perf_counter() - start) / 1e9


def forward_flops(s: dict, px: int, batch: int, window: int, global_idx) -> float:
    """Multiply-adds x 2 of the tower's matrix products (patch embed, blocks)."""
    grid = px // s['patch_size']
    n = grid * grid + int(s['cls_token'] and not window)
    c, m, depth = s['width'], s['mlp_dim'], s['depth']
    dense = 2 * n * (3 * c * c + c * c + 2 * c * m)
    total = 2 * n * c * 3 * s['patch_size'] ** 2
    for i in range(depth):
        keys = n if (not window or i in global_idx) else window * window
        total += dense + 4 * n * keys * c
    return total * batch


def run_row(name: str, impl: str, iters: int) -> dict:
    from pe_dense.models.backbones import PE, TIMM_NAMES
    from pe_dense.models.backbones.checkpoint import official_to_timm
    arch, px, batch, window, global_idx, _ = ROWS[name]
    torch.manual_seed(0)
    ours = PE(arch, img_size=px if window else None, window_size=window,
              global_attn_indexes=global_idx).eval()
    if impl == 'timm':
        import timm
        model = timm.create_model(TIMM_NAMES[arch], pretrained=False, dynamic_img_size=True).eval()
        model.load_state_dict(official_to_timm(ours.state_dict()))
        fwd = model.forward_features
    elif impl == 'compiled':
        model, fwd = ours, torch.compile(ours, fullgraph=True)
    else:
        model, fwd = ours, ours
    x = torch.randn(batch, 3, px, px)
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    eager_s = 0.
    with torch.inference_mode():
        fwd(x)
        if impl == 'compiled':
            ours(x)
        elapsed = 0.
        for _ in range(iters):
            if impl == 'compiled':  # eager and compiled alternate: the same load on both
                start = time.perf_counter()
                ours(x)
                eager_s += time.perf_counter() - start
            start = time.perf_counter()
            fwd(x)
            elapsed += time.perf_counter() - start
        elapsed /= iters
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    flops = forward_flops(ours.arch_settings, px, batch, window, set(global_idx))
    return dict(row=name, impl=impl, arch=arch, px=px, batch=batch, window=window,
                images_per_s=batch / elapsed, seconds_per_batch=elapsed,
                gflops_per_s=flops / elapsed / 1e9, peak_rss_mb=peak / 1024,
                forward_extra_rss_mb=(peak - base_rss) / 1024,
                **(dict(speedup_vs_eager=eager_s / iters / elapsed) if eager_s else {}))


def _subprocess(name, impl, iters):
    out = subprocess.run([sys.executable, __file__, '--child', name, impl, str(iters)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--rows', nargs='+', default=list(ROWS), choices=list(ROWS))
    p.add_argument('--iters', type=int, default=3)
    p.add_argument('--out', default='work_dirs/benchmarks/backbone.json')
    p.add_argument('--compile', action='store_true', help='also time torch.compile(PE)')
    p.add_argument('--child', nargs=3, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(run_row(args.child[0], args.child[1], int(args.child[2]))))
        return 0
    peak = gemm_peak_gflops()
    results = []
    header = (f"{'row':<18}{'impl':<9}{'img/s':>9}{'GFLOP/s':>10}{'% peak':>8}"
              f"{'fwd MB':>9}  {'vs timm / vs eager':<18}")
    print(f'fp32 GEMM peak: {peak:.1f} GFLOP/s, {torch.get_num_threads()} threads\n{header}')
    for name in args.rows:
        impls = ['pe_dense', 'timm'] if ROWS[name][5] else ['pe_dense']
        impls += ['compiled'] if args.compile else []
        row = {impl: _subprocess(name, impl, args.iters) for impl in impls}
        for impl, r in row.items():
            r['share_of_gemm_peak'] = r['gflops_per_s'] / peak
            if 'timm' in row and impl != 'compiled':
                r['speedup_vs_timm'] = r['images_per_s'] / row['timm']['images_per_s']
            results.append(r)
            speed = (f"{r['speedup_vs_timm']:.2f}x" if 'speedup_vs_timm' in r else
                     f"{r['speedup_vs_eager']:.2f}x eager" if 'speedup_vs_eager' in r else '-')
            print(f"{name:<18}{impl:<9}{r['images_per_s']:>9.2f}{r['gflops_per_s']:>10.1f}"
                  f"{100 * r['share_of_gemm_peak']:>7.0f}%{r['forward_extra_rss_mb']:>9.0f}"
                  f'  {speed:<18}')
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, 'w') as f:
        json.dump(dict(gemm_peak_gflops=peak, threads=torch.get_num_threads(), rows=results), f,
                  indent=2)
    print(f'written {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
