#!/usr/bin/env python
"""DETA test-time-augmentation post-processing speed: batched soft-NMS vs the official loop.

1. soft-NMS alone on 2k / 8k / 16k clustered boxes of 80 classes: ours
   (``pe_dense.models.task_modules.soft_nms``) against a transcription of the official
   sequential loop (perception_models apps/detection/DETA_pe/models/utils_softnms.py, kept in
   tests/fixtures/official_soft_nms.py), outputs checked identical, ratio printed.
2. The whole TTA of the final COCO config (4 scales x 2 flips = 8 views, per-view top-2000
   quad soft-NMS, size filter, merge) on a reduced model: the toy DETA backbone and transformer
   with the COCO head (900 queries, 80 classes), test scales divided by 4. Seconds per image of
   the whole test step and of the soft-NMS post-processing in it, with the official loop
   ("before") and ours ("after").

Prints tables and writes work_dirs/benchmarks/tta.json. Not a test.

    python benchmarks/tta.py [--sizes 2000 8000 16000] [--repeats 3] [--images 2]
"""
import argparse
import json
import os
import os.path as osp
import sys
import time

import torch

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)

from tests.fixtures.official_soft_nms import clustered_boxes, official_soft_nms  # noqa: E402

QUAD = dict(method='quad', iou_threshold=0.7, quad_scale=0.5, min_score=1e-3)


def best_of(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def bench_soft_nms(sizes, repeats):
    from pe_dense.models.task_modules.soft_nms import soft_nms
    rows = []
    for n in sizes:
        boxes, scores, labels = clustered_boxes(n, num_classes=80, seed=n)
        ours, (keep, new) = best_of(lambda: soft_nms(boxes, scores, labels, **QUAD), repeats)
        official, (ref_keep, ref_new) = best_of(
            lambda: official_soft_nms(boxes, scores, labels, **QUAD), max(1, repeats // 2))
        same = torch.equal(keep, ref_keep) and torch.equal(new, ref_new)
        rows.append(dict(boxes=n, kept=len(keep), official_s=official, ours_s=ours,
                         ratio=official / ours, identical=same))
        print(f'{n:>6} boxes  kept {len(keep):>6}  official {official:8.3f} s  '
              f'ours {ours:7.3f} s  x{official / ours:6.1f}  identical={same}')
    return rows


def build_tta(scales):
    """The final config's TTA model and pipeline around the reduced DETA."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmdet.registry import MODELS
    cfg = Config.fromfile(osp.join(ROOT, 'configs/demo/pe_deta_toy.py'))
    final = Config.fromfile(osp.join(ROOT, 'configs/deta/pe_spatial_g_coco_stage4_1824.py'))
    init_default_scope('mmdet')
    import pe_dense.det  # noqa: F401  registers DETA, its head and the TTA model
    module = cfg.model
    module.num_queries = 900
    module.bbox_head.num_classes = 80
    module.train_cfg.assigner.num = 900
    ratio = scales[0] / final.tta_scales[0]
    tta = dict(final.tta_model, module=module,
               scale_ranges=[(lo * ratio, hi) for lo, hi in final.tta_model.scale_ranges])
    model = MODELS.build(tta)
    model.module.init_weights()
    pipeline = final.tta_pipeline
    pipeline[1]['transforms'][0] = [dict(type='Resize', scale=(s, s), keep_ratio=True)
                                    for s in scales]
    return model.eval(), cfg, pipeline


def bench_tta(images, scales):
    import pe_dense.models.dense_heads.deta_head as head_mod
    import pe_dense.models.detectors.deta_tta as tta_mod
    from mmcv.transforms import Compose
    from pe_dense.models.task_modules.soft_nms import soft_nms
    from pe_dense.toy.coco import make_coco

    data = osp.join(ROOT, 'work_dirs/benchmarks/tta_toy_coco')
    if not osp.isdir(data):
        make_coco(data, num_train=1, num_val=max(images, 1), progress_bar=False)
    model, cfg, pipeline = build_tta(scales)
    pipeline = Compose(pipeline)
    val = json.load(open(osp.join(data, 'annotations/instances_val2017.json')))
    inputs = []
    for im in val['images'][:images]:
        out = pipeline(dict(img_path=osp.join(data, 'val2017', im['file_name']), img_id=im['id'],
                            instances=[]))
        inputs.append(dict(inputs=[[x] for x in out['inputs']],
                           data_samples=[[x] for x in out['data_samples']]))

    result = {}
    for name, fn in (('before', official_soft_nms), ('after', soft_nms)):
        spent = [0.0]

        def timed(*a, _fn=fn, **kw):
            start = time.perf_counter()
            out = _fn(*a, **kw)
            spent[0] += time.perf_counter() - start
            return out
        head_mod.soft_nms, tta_mod.soft_nms = timed, timed
        torch.manual_seed(0)
        start, boxes = time.perf_counter(), []
        with torch.no_grad():
            for batch in inputs:
                boxes.append(model.test_step(batch)[0].pred_instances.bboxes)
        total = time.perf_counter() - start
        result[name] = dict(total_s_per_image=total / len(inputs),
                            soft_nms_s_per_image=spent[0] / len(inputs))
        result[name + '_boxes'] = boxes
        print(f'{name:>6}: {total / len(inputs):7.3f} s/image in all, '
              f'{spent[0] / len(inputs):7.3f} s/image in soft-NMS')
    head_mod.soft_nms, tta_mod.soft_nms = soft_nms, soft_nms
    same = all(torch.equal(a, b) for a, b in zip(result.pop('before_boxes'),
                                                 result.pop('after_boxes')))
    result.update(views=2 * len(scales), scales=list(scales), images=len(inputs),
                  identical=same)
    print(f'identical detections: {same}')
    return result


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--sizes', type=int, nargs='*', default=[2000, 8000, 16000])
    p.add_argument('--repeats', type=int, default=3)
    p.add_argument('--images', type=int, default=2)
    p.add_argument('--scales', type=int, nargs='+', default=[448, 432, 384, 336])
    p.add_argument('--threads', type=int, default=1, help='torch threads (post-processing '
                   'is a chain of small ops: more threads only add overhead)')
    p.add_argument('--out', default=osp.join(ROOT, 'work_dirs/benchmarks/tta.json'))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    result = dict(threads=torch.get_num_threads(),
                  soft_nms=bench_soft_nms(args.sizes, args.repeats))
    if args.images:
        result['tta'] = bench_tta(args.images, args.scales)
    os.makedirs(osp.dirname(args.out), exist_ok=True)
    with open(args.out, 'w') as f:
        json.dump(result, f, indent=2)
    print(f'written to {args.out}')
    return result


if __name__ == '__main__':
    sys.exit(main() and 0)
