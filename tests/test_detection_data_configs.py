"""Detection dataset configs: LSJ train pipeline, official test resize, dataset wiring."""
from pathlib import Path

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope

from pe_dense.toy.coco import make_coco

CFG = Path(__file__).parents[1] / 'configs' / '_base_' / 'datasets'


@pytest.fixture(scope='module')
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp('toy_coco')
    make_coco(str(root), num_train=4, num_val=2, size=(160, 120), progress_bar=False)
    return root


def _dataset(cfg_name, toy, split, **over):
    import pe_dense.datasets.coco_checked  # noqa: F401  registers CheckedCocoDataset
    from mmdet.registry import DATASETS
    init_default_scope('mmdet')
    cfg = Config.fromfile(str(CFG / cfg_name))
    ds = cfg[f'{split}_dataloader'].dataset
    ds.update(data_root=str(toy), metainfo=dict(classes=('circle', 'square', 'triangle')),
              ann_file=f'annotations/instances_{"train" if split == "train" else "val"}2017.json',
              data_prefix=dict(img='train2017/' if split == 'train' else 'val2017/'), **over)
    return cfg, DATASETS.build(ds)


def test_lsj_train_pipeline_crops_to_square_and_keeps_boxes_inside(toy):
    cfg, ds = _dataset('coco_detection_lsj.py', toy, 'train')
    assert cfg.image_size == 1024 and ds.__class__.__name__ == 'CheckedCocoDataset'
    types = [t['type'] for t in cfg.train_pipeline]
    assert types == ['LoadImageOrSkip', 'LoadAnnotations', 'RandomFlip', 'RandomResize',
                     'RandomCrop', 'FilterAnnotations', 'PackDetInputs']
    assert cfg.train_pipeline[3]['ratio_range'] == (0.1, 2.0)
    assert cfg.train_pipeline[4]['allow_negative_crop'] is True
    np.random.seed(0)
    sizes = set()
    for i in range(8):
        out = ds[i % len(ds)]
        h, w = out['inputs'].shape[-2:]
        assert h <= 1024 and w <= 1024
        sizes.add((h, w))
        boxes = out['data_samples'].gt_instances.bboxes.tensor
        if len(boxes):
            assert boxes[:, 0].min() >= 0 and boxes[:, 2].max() <= w
            assert boxes[:, 1].min() >= 0 and boxes[:, 3].max() <= h
    assert len(sizes) > 1  # the jitter changes the scale


def test_official_test_resize(toy):
    cfg, ds = _dataset('coco_detection_lsj.py', toy, 'val')
    out = ds[0]
    h, w = out['inputs'].shape[-2:]
    assert max(h, w) == 1024 - 32       # long edge capped at size - 32
    assert abs(w / h - 160 / 120) < 0.01
    assert out['data_samples'].ori_shape == (120, 160)


def test_instance_and_lvis_and_o365_configs():
    init_default_scope('mmdet')
    inst = Config.fromfile(str(CFG / 'coco_instance_lsj.py'))
    assert inst.train_dataloader.dataset.pipeline[1]['with_mask'] is True
    assert inst.val_evaluator.metric == ['bbox', 'segm']
    lvis = Config.fromfile(str(CFG / 'lvis_v1_instance_lsj.py'))
    assert lvis.train_dataloader.sampler == dict(type='RepeatFactorSampler', repeat_thresh=1e-3)
    assert lvis.train_dataloader.dataset.type == 'LVISV1Dataset'
    assert lvis.train_dataloader.dataset.pipeline[1]['with_mask'] is True
    assert lvis.val_evaluator.type == 'LVISMetric'
    o365 = Config.fromfile(str(CFG / 'objects365v2_deta_aug.py'))
    assert o365.train_dataloader.dataset.type == 'Objects365V2Dataset'
    assert o365.train_dataloader.dataset.ann_file == 'annotations/zhiyuan_objv2_train.json'
    assert o365.val_evaluator.ann_file.endswith('zhiyuan_objv2_val.json')
    assert o365.train_dataloader.dataset.filter_cfg.filter_empty_gt is False
    from mmdet.datasets import Objects365V2Dataset
    assert len(Objects365V2Dataset.METAINFO['classes']) == 365


def test_official_deta_augmentation_config(toy):
    cfg, ds = _dataset('coco_detection_deta_aug.py', toy, 'train')
    choice = cfg.train_pipeline[3]
    assert choice['type'] == 'RandomChoice' and len(choice['transforms']) == 2
    short = [s for _, s in choice['transforms'][0][0]['scales']]
    assert short[0] == 480 and short[-1] == 1824 - 32 and len(short) == 42
    assert choice['transforms'][1][1]['crop_size'] == (384, 600)
    np.random.seed(1)
    for i in range(6):
        out = ds[i % len(ds)]
        h, w = out['inputs'].shape[-2:]
        assert max(h, w) <= 1824 - 32 and min(h, w) >= 384  # both branches end up large
