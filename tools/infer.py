#!/usr/bin/env python
"""Run a pe_dense config + checkpoint on image files or folders.

  tools/infer.py CONFIG CHECKPOINT INPUT [INPUT ...] --out-dir DIR [--score-thr 0.3]
      [--ann-file instances.json] [--device cpu] [--batch-size 1] [--cfg-options k=v ...]

Detection configs (default_scope 'mmdet') write DIR/vis/<image> pictures with boxes and
DIR/detections.json, a COCO results list ({image_id, category_id, bbox [x, y, w, h], score}
plus file_name / category_name). With --ann-file, image and category ids come from that COCO
file (so the JSON can be scored with pycocotools); otherwise images are numbered in input
order and category_id is the model's label index; an input image missing from that file stops
the run before the model is built (pycocotools refuses results for images it does not know,
as MMDetection's CocoMetric does). Segmentation and depth configs
(default_scope 'mmseg') write DIR/vis/<image> colour pictures and DIR/pred/<image>.png (uint8
class ids, or uint16 depth in millimetres). The task is chosen by the config's default_scope:
add a runner to RUNNERS to support another library.
"""
import argparse
import json
import os
import os.path as osp
from typing import Callable, Dict, List, Tuple

from mmengine.config import DictAction

from pe_dense.engine.console import add_verbose_flag, quiet_console

IMG_EXTS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')


def collect_images(inputs: List[str]) -> List[str]:
    """Image files named directly or found (recursively, sorted) in the given folders."""
    files = []
    for item in inputs:
        if osp.isdir(item):
            found = sorted(osp.join(root, f) for root, _, names in os.walk(item)
                           for f in names if f.lower().endswith(IMG_EXTS))
            if not found:
                raise FileNotFoundError(f'No images ({", ".join(IMG_EXTS)}) under folder {item}')
            files += found
        elif osp.isfile(item):
            files.append(item)
        else:
            raise FileNotFoundError(f'Input {item} is neither an image file nor a folder')
    return files


def _config_classes(cfg) -> tuple:
    """Class names the config's test set declares explicitly (metainfo), else ()."""
    ds = cfg.get('test_dataloader', {}).get('dataset', {})
    return tuple((ds.get('metainfo') or {}).get('classes') or ())


def _coco_ids(ann_file: str, classes: tuple):
    with open(ann_file) as f:
        coco = json.load(f)
    for field in ('images', 'categories'):
        if field not in coco:
            raise KeyError(f"{ann_file}: missing field '{field}'")
    images = {im['file_name']: im['id'] for im in coco['images']}
    images.update({osp.basename(k): v for k, v in list(images.items())})
    by_name = {c['name']: c['id'] for c in coco['categories']}
    missing = [c for c in classes if c not in by_name]
    if missing:
        raise KeyError(f'{ann_file}: categories {missing} of the model are not in the file')
    return images, [by_name[c] for c in classes]


def readable_images(files: List[str]) -> Tuple[List[str], List[str]]:
    """Split ``files`` into decodable images and skipped ones (each logged with its reason)."""
    from mmengine.logging import print_log

    from pe_dense.datasets.robust_loading import ImageLoadError, read_image
    good, bad = [], []
    for path in files:
        try:
            read_image(path)
        except ImageLoadError as e:
            bad.append(path)
            print_log(f'skipping {e} ({len(bad)} skipped)', logger='current', level=30)
        else:
            good.append(path)
    if not good:
        raise ValueError(f'none of the {len(files)} input images could be decoded')
    return good, bad


def check_ann_file(ann_file: str, files: List[str]) -> None:
    """Every input image must be in the COCO file whose ids the JSON will use."""
    with open(ann_file) as f:
        coco = json.load(f)
    if 'images' not in coco:
        raise KeyError(f"{ann_file}: missing field 'images'")
    known = {osp.basename(im['file_name']) for im in coco['images']}
    missing = [f for f in files if osp.basename(f) not in known]
    if missing:
        raise SystemExit(f'infer: {len(missing)} of {len(files)} input images are not in '
                         f'--ann-file {ann_file} (first: {missing[0]}); give only images of '
                         'that file, or drop --ann-file to number the images in input order')


def inferencer_config(cfg):
    """The config with its robust loader renamed: DetInferencer swaps the step called
    LoadImageFromFile for its own loader (paths and arrays) and refuses a pipeline without it;
    the files were already checked by :func:`readable_images`. The visualizer keeps no
    backends: it only draws into --out-dir (a TensorBoard backend without save_dir warns)."""
    if 'visualizer' in cfg:
        cfg.visualizer.vis_backends = None
    pipeline = cfg.test_dataloader.dataset.pipeline
    for step in pipeline:
        if step.get('type') in ('LoadImageRobust', 'LoadImageOrSkip'):
            step.clear()
            step.update(type='LoadImageFromFile')
    return cfg


def infer_mmdet(args, files: List[str]) -> dict:
    from mmdet.apis import DetInferencer
    files, skipped = readable_images(files)
    inferencer = DetInferencer(model=inferencer_config(args.cfg), weights=args.checkpoint,
                               device=args.device, show_progress=False)
    if args.checkpoint is None:  # untrained: the config's own initialisation (init_cfg)
        inferencer.model.init_weights()
    classes = _config_classes(inferencer.cfg)
    if classes and tuple(inferencer.model.dataset_meta.get('classes', ())) != classes:
        # checkpoints without dataset_meta make DetInferencer fall back to COCO names
        meta = dict(inferencer.model.dataset_meta, classes=classes)
        meta.pop('palette', None)
        inferencer.model.dataset_meta = meta
        inferencer.visualizer.dataset_meta = meta
    classes = tuple(inferencer.model.dataset_meta['classes'])
    out = inferencer(files, batch_size=args.batch_size, out_dir=args.out_dir, no_save_pred=True,
                     pred_score_thr=args.score_thr, return_datasamples=True)
    img_ids, cat_ids = ({}, list(range(len(classes))))
    if args.ann_file:
        img_ids, cat_ids = _coco_ids(args.ann_file, classes)
    dets = []
    for idx, (path, sample) in enumerate(zip(files, out['predictions'])):
        name = osp.basename(path)
        inst = sample.pred_instances
        for box, score, label in zip(inst.bboxes.tolist(), inst.scores.tolist(),
                                     inst.labels.tolist()):
            if score < args.score_thr:
                continue
            x1, y1, x2, y2 = box
            dets.append(dict(image_id=img_ids.get(name, idx), file_name=name,
                             category_id=cat_ids[label], category_name=classes[label],
                             bbox=[round(v, 2) for v in (x1, y1, x2 - x1, y2 - y1)],
                             score=round(score, 5)))
    path = osp.join(args.out_dir, 'detections.json')
    with open(path, 'w') as f:
        json.dump(dets, f)
    return dict(images=len(files), skipped=skipped, detections=len(dets), json=path,
                vis_dir=osp.join(args.out_dir, 'vis'))


def infer_mmseg(args, files: List[str]) -> dict:
    """Segmentation / depth: palette pictures + PNG label maps or 16-bit depth in mm."""
    import torch

    from pe_dense.apis.seg_infer import infer_files
    device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    return infer_files(args.cfg, args.checkpoint, files, args.out_dir, device=device)


RUNNERS: Dict[str, Callable] = {'mmdet': infer_mmdet, 'mmseg': infer_mmseg}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('config')
    p.add_argument('checkpoint', help="weights file or name (hf://ORG/REPO:FILE, hf-hub:ORG/REPO, "
                                      "URL), or 'none' for the config's initialisation "
                                      '(init_weights: random heads, init_cfg backbones)')
    p.add_argument('inputs', nargs='+', help='image files and/or folders')
    p.add_argument('--out-dir', required=True)
    p.add_argument('--score-thr', type=float, default=0.3)
    p.add_argument('--ann-file', help='COCO file giving image and category ids')
    p.add_argument('--device', default=None, help='default: cuda if available, else cpu')
    p.add_argument('--batch-size', type=int, default=1)
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='override config keys, e.g. model.backbone.img_size=224')
    add_verbose_flag(p)
    return p.parse_args(argv)


def main(argv=None) -> dict:
    from mmengine.config import Config
    from pe_dense.engine import enable_checkpoint_io
    from pe_dense.models.backbones.hub import is_checkpoint_name
    args = parse_args(argv)
    quiet_console(args.verbose)
    enable_checkpoint_io()  # allowlisted loading; the inferencers may read weights by name
    if args.checkpoint.lower() == 'none':
        args.checkpoint = None
    elif not osp.isfile(args.checkpoint) and not is_checkpoint_name(args.checkpoint):
        raise FileNotFoundError(f'Checkpoint not found: {args.checkpoint}')
    args.cfg = Config.fromfile(args.config)
    if args.cfg_options:
        args.cfg.merge_from_dict(args.cfg_options)
    scope = args.cfg.get('default_scope')
    if scope not in RUNNERS:
        raise ValueError(f'{args.config}: default_scope {scope!r} has no inference runner '
                         f'(supported: {sorted(RUNNERS)})')
    files = collect_images(args.inputs)
    if args.ann_file:
        check_ann_file(args.ann_file, files)
    os.makedirs(args.out_dir, exist_ok=True)
    summary = RUNNERS[scope](args, files)
    print(json.dumps(summary))
    return summary


if __name__ == '__main__':
    main()
