"""SAM 2.1 teacher throughput: factorised decoder vs the naive SAM2ImagePredictor path (CPU).

    OMP_NUM_THREADS=1 python benchmarks/sam_teacher.py [--sizes t l] [--prompts 32]
        [--naive-batches 16 4] [--threads 1] [--compile] [--rounds 2]

Both ways share one image embedding (timed once: it is the same SAM image encoder). "ours" =
SAM2Teacher.mask_logits (exact factorised mask decoder, ``chunk`` prompts per call, 256x256
logits kept) + resampling to the 32x32 token grid; "naive" = SAM2ImagePredictor.predict on
prompt batches of each --naive-batches size (single-mask output, full-resolution masks as
the predictor computes them) + resampling of its low-res logits. Ours (eager, and compiled
with --compile; its one-off compilation is timed apart) and naive alternate for --rounds
rounds on the same prompts so that machine load affects both alike. A subset of the 1024 grid
prompts is timed; per-image figures are embedding + 1024 x the per-prompt time. Random
weights unless --ckpt-dir holds sam2.1_hiera_*.pt (speed does not depend on them).
Prints a table and writes work_dirs/benchmarks/sam_teacher.json. Not a test.
"""
import argparse
import json
import os
import os.path as osp
import platform
import time

import numpy as np
import torch

from pe_dense.models.teachers import SAM2Teacher, resample_logits

CKPT_NAMES = {'t': 'sam2.1_hiera_tiny.pt', 's': 'sam2.1_hiera_small.pt',
              'b+': 'sam2.1_hiera_base_plus.pt', 'l': 'sam2.1_hiera_large.pt'}
PROMPTS_PER_IMAGE = 1024


def picture(h: int, w: int) -> np.ndarray:
    import cv2
    from skimage import data
    return cv2.resize(data.astronaut(), (w, h), interpolation=cv2.INTER_CUBIC)


def bench_size(size, args):
    ckpt = osp.join(args.ckpt_dir, CKPT_NAMES[size]) if args.ckpt_dir else None
    torch.manual_seed(0)
    teacher = SAM2Teacher(size, checkpoint=ckpt, grid=32, chunk=args.chunk, compile=args.compile)
    fd = teacher._factorised
    img = picture(args.height, args.width)
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float()
    pts = teacher.points[:args.prompts]
    n = len(pts)

    t0 = time.perf_counter()
    feats = teacher.embed(x)
    embed_s = time.perf_counter() - t0

    variants = ['eager'] + (['compiled'] if args.compile else [])
    compile_s = None
    if args.compile:  # first call compiles (once per process and chunk size)
        t0 = time.perf_counter()
        teacher.mask_logits(feats, 0, pts[:args.chunk])
        compile_s = time.perf_counter() - t0
        if not fd.compile:
            raise RuntimeError('torch.compile failed (see the warning); nothing to compare')

    def ours_run(variant):
        fd.compile = variant == 'compiled'
        t0 = time.perf_counter()
        out = resample_logits(teacher.mask_logits(feats, 0, pts), (32, 32))
        return out, time.perf_counter() - t0

    from sam2.sam2_image_predictor import SAM2ImagePredictor
    pred = SAM2ImagePredictor(teacher.sam)
    pred._orig_hw = [img.shape[:2]]  # reuse the embedding: only the prompt side is compared
    pred._features = feats
    pred._is_image_set = True
    img_pts = pts.numpy() / teacher.resolution * np.array([args.width, args.height])

    def naive_run(nb):
        t0 = time.perf_counter()
        naive = []
        for start in range(0, n, nb):
            p = img_pts[start:start + nb, None]
            _, _, low = pred.predict(point_coords=p, point_labels=np.ones(p.shape[:2]),
                                     multimask_output=False, return_logits=True)
            naive.append(resample_logits(torch.from_numpy(low[:, 0]), (32, 32)))
        return torch.cat(naive), time.perf_counter() - t0

    # rounds of ours (each variant) then naive, one right after the other: load hits both
    t_ours = {v: 0.0 for v in variants}
    t_naive = {nb: 0.0 for nb in args.naive_batches}
    diff = {}
    for _ in range(args.rounds):
        outs = {}
        for v in variants:
            outs[v], dt = ours_run(v)
            t_ours[v] += dt
        for nb in args.naive_batches:
            naive, dt = naive_run(nb)
            t_naive[nb] += dt
            for v in variants:
                diff[(v, nb)] = (naive - outs[v]).abs().max().item()
    k = n * args.rounds
    r = dict(size=size, prompts_timed=n, rounds=args.rounds, embed_seconds=embed_s,
             compile_seconds=compile_s, ours={})
    for v in variants:
        per_image = embed_s + t_ours[v] * PROMPTS_PER_IMAGE / k
        r['ours'][v] = dict(ms_per_prompt=1e3 * t_ours[v] / k, seconds_per_image=per_image,
                            naive={})
        for nb in args.naive_batches:
            naive_image = embed_s + t_naive[nb] * PROMPTS_PER_IMAGE / k
            r['ours'][v]['naive'][str(nb)] = dict(
                ms_per_prompt=1e3 * t_naive[nb] / k, seconds_per_image=naive_image,
                decoder_speedup=t_naive[nb] / t_ours[v],
                per_image_speedup=naive_image / per_image, max_abs_diff=diff[(v, nb)])
    return r


def table(results) -> str:
    rows = ['| size | embed s | ours | ours ms/prompt | naive batch | naive ms/prompt | decoder x '
            '| s/image ours | s/image naive | per-image x | max abs diff |',
            '|---|---|---|---|---|---|---|---|---|---|---|']
    for r in results:
        for variant, o in r['ours'].items():
            for nb, v in o['naive'].items():
                rows.append(f"| {r['size']} | {r['embed_seconds']:.1f} | {variant} | "
                            f"{o['ms_per_prompt']:.1f} | {nb} | {v['ms_per_prompt']:.1f} | "
                            f"{v['decoder_speedup']:.1f} | {o['seconds_per_image']:.1f} | "
                            f"{v['seconds_per_image']:.1f} | {v['per_image_speedup']:.1f} | "
                            f"{v['max_abs_diff']:.1e} |")
    return '\n'.join(rows)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument('--sizes', nargs='+', default=['t', 'l'], choices=sorted(CKPT_NAMES))
    p.add_argument('--prompts', type=int, default=32, help='grid prompts timed (of 1024)')
    p.add_argument('--chunk', type=int, default=4)
    p.add_argument('--naive-batches', type=int, nargs='+', default=[16, 4])
    p.add_argument('--rounds', type=int, default=2,
                   help='alternations of ours and naive on the timed prompts')
    p.add_argument('--compile', action='store_true',
                   help='also time SAM2Teacher(compile=True) (compile time reported apart)')
    p.add_argument('--height', type=int, default=1024)
    p.add_argument('--width', type=int, default=1024)
    p.add_argument('--ckpt-dir')
    p.add_argument('--threads', type=int, default=torch.get_num_threads())
    p.add_argument('--out', default='work_dirs/benchmarks/sam_teacher.json')
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    results = []
    load_before = os.getloadavg()
    with torch.no_grad():
        for size in args.sizes:
            results.append(bench_size(size, args))
            print(json.dumps(results[-1]), flush=True)
    print(table(results))
    os.makedirs(osp.dirname(args.out), exist_ok=True)
    meta = dict(device='cpu', threads=args.threads, torch=torch.__version__,
                cpu=platform.processor() or platform.machine(), image_hw=[args.height, args.width],
                prompts_per_image=PROMPTS_PER_IMAGE, chunk=args.chunk, rounds=args.rounds,
                load_average_before=load_before, load_average_after=os.getloadavg())
    with open(args.out, 'w') as f:
        json.dump(dict(meta=meta, results=results, table=table(results)), f, indent=1)
    print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
