"""Segmentation / depth inference on image files for mmseg configs (used by tools/infer.py).

Writes, per image, a picture (``vis/``: label map in the dataset palette over the image, or a
colour-coded depth map under it) and the raw prediction (``pred/``: uint8 PNG of class
indices, or uint16 PNG of depth in millimetres, the NYU convention).
"""
import os
import os.path as osp
from typing import List, Optional, Sequence

import mmcv
import numpy as np
from mmengine.config import Config

# transforms that need ground truth; inference runs the test pipeline without them
_GT_TRANSFORMS = ('LoadAnnotations', 'LoadDepthAnnotation', 'CheckSegLabel', 'CheckDepthMap')


def inference_pipeline(pipeline: Sequence[dict]) -> List[dict]:
    """The test pipeline without annotation loading / checking."""
    return [t for t in pipeline if t.get('type') not in _GT_TRANSFORMS]


def init_seg_model(config, checkpoint: Optional[str], device: str = 'cpu'):
    """mmseg model from a config (path or Config) and checkpoint, ready for image files."""
    from mmseg.apis import init_model
    cfg = Config.fromfile(config) if isinstance(config, str) else config
    if 'test_pipeline' not in cfg:
        raise KeyError(f'{getattr(cfg, "filename", config)}: no `test_pipeline` to run images')
    cfg.test_pipeline = inference_pipeline(cfg.test_pipeline)
    model = init_model(cfg, checkpoint, device=device)
    if cfg.model.type != 'DepthEstimator' and not getattr(model, 'dataset_meta', None):
        model.dataset_meta = config_classes(cfg, model.decode_head.num_classes)
    return model


def config_classes(cfg: Config, num_classes: int) -> dict:
    """Classes and palette when the checkpoint has none: the test set's, else numbered."""
    from mmseg.registry import DATASETS
    ds = cfg.get('test_dataloader', {}).get('dataset', {})
    cls = DATASETS.get(ds.get('type', ''))
    full = dict(getattr(cls, 'METAINFO', {}) or {})
    names = (ds.get('metainfo') or {}).get('classes') or full.get('classes')
    if not names or len(names) != num_classes:
        names = tuple(str(i) for i in range(num_classes))
    lookup = dict(zip(full.get('classes', ()), full.get('palette', ())))
    rng = np.random.default_rng(0)
    palette = [list(lookup[n]) if n in lookup else rng.integers(0, 256, 3).tolist()
               for n in names]
    return dict(classes=tuple(names), palette=palette)


def _visualizer(model):
    from mmseg.visualization import SegLocalVisualizer
    vis = SegLocalVisualizer.get_instance(f'pe_dense_infer_{id(model)}')
    meta = getattr(model, 'dataset_meta', None) or {}
    if meta.get('classes') and meta.get('palette'):
        vis.set_dataset_meta(classes=meta['classes'], palette=meta['palette'])
    return vis


def save_prediction(sample, path: str) -> str:
    """uint8 class-index PNG (segmentation) or uint16 millimetre PNG (depth)."""
    if 'pred_depth_map' in sample:
        depth = sample.pred_depth_map.data.squeeze(0).cpu().numpy()
        out = np.clip(np.round(depth * 1000), 0, 65535).astype(np.uint16)
    else:
        labels = sample.pred_sem_seg.data.squeeze(0).cpu().numpy()
        if labels.max(initial=0) > 255:
            raise ValueError(f'{path}: {labels.max() + 1} classes do not fit an 8-bit PNG')
        out = labels.astype(np.uint8)
    mmcv.imwrite(out, path)
    return path


def infer_files(config, checkpoint: Optional[str], files: Sequence[str], out_dir: str,
                device: str = 'cpu') -> dict:
    """Run the model on ``files``; returns a summary with the written paths."""
    from mmseg.apis import inference_model
    model = init_seg_model(config, checkpoint, device)
    vis = _visualizer(model)
    written = []
    for f in files:
        sample = inference_model(model, f)
        stem = osp.splitext(osp.basename(f))[0]
        pic, raw = osp.join(out_dir, 'vis', stem + '.png'), osp.join(out_dir, 'pred', stem + '.png')
        os.makedirs(osp.dirname(pic), exist_ok=True)
        img = mmcv.imread(f, channel_order='rgb')
        vis.add_datasample(stem, img, sample, draw_gt=False, out_file=pic)
        written.append(dict(image=f, vis=pic, pred=save_prediction(sample, raw)))
    task = 'depth' if written and 'pred_depth_map' in sample else 'segmentation'
    return dict(task=task, images=len(written), out_dir=out_dir, files=written)
