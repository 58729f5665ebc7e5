"""SAM 2.1 teacher throughput: batched low-res targets vs the naive predictor loop (CPU).

    python benchmarks/sam_teacher.py [--sizes t l] [--prompts 64] [--naive-batch 16]

Both ways share one image embedding (timed separately). "ours" = SAM2Teacher.mask_logits (all
prompts through prompt encoder + mask decoder in chunks, 256x256 logits kept) + resampling to
the 32x32 token grid; "naive" = SAM2ImagePredictor.predict on prompt batches (defaults:
multimask, full-resolution masks) and resampling the chosen logits afterwards. A subset of the
1024 grid prompts is timed and reported per target (one target = one prompt's map). Random
weights unless --ckpt-dir holds sam2.1_hiera_{tiny,large}.pt (speed does not depend on them).
Writes work_dirs/benchmarks/sam_teacher.json. Not a test.
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


def picture(h: int, w: int) -> np.ndarray:
    import cv2
    from skimage import data
    return cv2.resize(data.astronaut(), (w, h), interpolation=cv2.INTER_CUBIC)


def bench_size(size, args):
    ckpt = osp.join(args.ckpt_dir, CKPT_NAMES[size]) if args.ckpt_dir else None
    torch.manual_seed(0)
    teacher = SAM2Teacher(size, checkpoint=ckpt, grid=32, chunk=args.chunk)
    img = picture(args.height, args.width)
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float()
    pts = teacher.points[:args.prompts]

    t0 = time.perf_counter()
    feats = teacher.embed(x)
    embed_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    ours = resample_logits(teacher.mask_logits(feats, 0, pts), (32, 32))
    ours_s = time.perf_counter() - t0

    from sam2.sam2_image_predictor import SAM2ImagePredictor
    pred = SAM2ImagePredictor(teacher.sam)
    pred._orig_hw = [img.shape[:2]]  # reuse the embedding: only the prompt side is compared
    pred._features = feats
    pred._is_image_set = True
    img_pts = pts.numpy() / teacher.resolution * np.array([args.width, args.height])
    t0 = time.perf_counter()
    naive = []
    for start in range(0, len(img_pts), args.naive_batch):
        p = img_pts[start:start + args.naive_batch, None]
        _, iou, low = pred.predict(point_coords=p, point_labels=np.ones(p.shape[:2]),
                                   multimask_output=False, return_logits=True)
        naive.append(resample_logits(torch.from_numpy(low[:, 0]), (32, 32)))
    naive_s = time.perf_counter() - t0
    diff = (torch.cat(naive) - ours).abs().max().item()
    n = len(pts)
    return dict(size=size, prompts_timed=n, embed_seconds=embed_s,
                ours_targets_per_s=n / ours_s, naive_targets_per_s=n / naive_s,
                speedup=naive_s / ours_s, max_abs_diff=diff,
                ours_seconds_per_image_1024_prompts=embed_s + ours_s * 1024 / n,
                naive_seconds_per_image_1024_prompts=embed_s + naive_s * 1024 / n)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument('--sizes', nargs='+', default=['t', 'l'], choices=sorted(CKPT_NAMES))
    p.add_argument('--prompts', type=int, default=64, help='grid prompts timed (of 1024)')
    p.add_argument('--chunk', type=int, default=64)
    p.add_argument('--naive-batch', type=int, default=16)
    p.add_argument('--height', type=int, default=1500)  # a typical SA-1B picture
    p.add_argument('--width', type=int, default=2250)
    p.add_argument('--ckpt-dir')
    p.add_argument('--threads', type=int, default=torch.get_num_threads())
    p.add_argument('--out', default='work_dirs/benchmarks/sam_teacher.json')
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    results = []
    with torch.no_grad():
        for size in args.sizes:
            r = bench_size(size, args)
            print(json.dumps(r))
            results.append(r)
    os.makedirs(osp.dirname(args.out), exist_ok=True)
    meta = dict(device='cpu', threads=args.threads, torch=torch.__version__,
                cpu=platform.processor() or platform.machine(), image_hw=[args.height, args.width],
                load_average=os.getloadavg())
    with open(args.out, 'w') as f:
        json.dump(dict(meta=meta, results=results), f, indent=1)
    print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
