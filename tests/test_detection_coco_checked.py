"""CheckedCocoDataset / LoadImageOrSkip on generated broken COCO files."""
import contextlib
import json
import logging
import os.path as osp

import numpy as np
import pytest
from PIL import Image

from pe_dense.datasets.coco_checked import (CheckedCocoDataset, CocoFormatError,
                                            LoadImageOrSkip)

CLASSES = ('circle', 'square')


def _write_set(root, anns, images=None, categories=None, broken_image=False):
    (root / 'img').mkdir(parents=True, exist_ok=True)
    images = images if images is not None else [
        dict(id=1, file_name='a.jpg', width=40, height=30),
        dict(id=2, file_name='b.jpg', width=40, height=30)]
    for im in images:
        Image.fromarray(np.full((30, 40, 3), 128, np.uint8)).save(root / 'img' / im['file_name'])
    if broken_image:
        (root / 'img' / 'b.jpg').write_bytes(b'this is not a jpeg')
    coco = dict(images=images, annotations=anns,
                categories=categories or [dict(id=1, name='circle'), dict(id=3, name='square')])
    path = root / 'ann.json'
    path.write_text(json.dumps(coco))
    return path


def _ann(i, bbox, cat=1, img=1, **extra):
    return dict(id=i, image_id=img, category_id=cat, bbox=bbox, area=bbox[2] * bbox[3],
                iscrowd=0, **extra)


@contextlib.contextmanager
def _mmlogger_records():
    """Records logged to MMEngine's current logger inside the block."""
    from mmengine.logging import MMLogger
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)


def _build(root, path, **kw):
    return CheckedCocoDataset(ann_file=str(path), data_root=str(root), data_prefix=dict(img='img/'),
                              metainfo=dict(classes=CLASSES), pipeline=[], **kw)


def test_clean_file_matches_mmdet_coco(tmp_path):
    from mmdet.datasets import CocoDataset
    path = _write_set(tmp_path, [_ann(1, [2, 3, 10, 8]), _ann(2, [5, 5, 20, 20], cat=3, img=2)])
    ours = _build(tmp_path, path)
    ref = CocoDataset(ann_file=str(path), data_root=str(tmp_path), data_prefix=dict(img='img/'),
                      metainfo=dict(classes=CLASSES), pipeline=[])
    assert len(ours) == len(ref) == 2
    for i in range(2):
        assert ours.get_data_info(i)['instances'] == ref.get_data_info(i)['instances']
    assert ours.get_data_info(1)['instances'][0]['bbox_label'] == 1  # category id 3 -> label 1


def test_boxes_clipped_empty_and_nan_skipped(tmp_path):
    anns = [_ann(1, [-5, -5, 15, 15]),            # clipped to [0, 0, 10, 10]
            _ann(2, [35, 20, 20, 20]),             # clipped to [35, 20, 5, 10]
            _ann(3, [10, 10, 0, 5]),               # zero width -> skipped
            _ann(4, [50, 10, 5, 5]),               # fully outside -> clipped then empty
            _ann(5, [float('nan'), 1, 2, 2]),      # NaN -> skipped
            _ann(6, [1, 1, 5, 5])]                 # fine
    path = _write_set(tmp_path, anns)  # json writes/reads the bare NaN token
    ds = _build(tmp_path, path)
    boxes = [inst['bbox'] for inst in ds.get_data_info(0)['instances']]
    assert boxes == [[0, 0, 10, 10], [35, 20, 40, 30], [1, 1, 6, 6]]
    assert ds.repair_counts == {'clipped': 3, 'empty': 2, 'nan': 1}


def test_repair_counts_are_logged(tmp_path):
    from mmengine.logging import MMLogger
    logger = MMLogger.get_instance('pe_dense_test_checked', log_level='INFO')
    path = _write_set(tmp_path, [_ann(1, [-5, 0, 10, 10]), _ann(2, [1, 1, 0, 0])])
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger.addHandler(handler)
    try:
        _build(tmp_path, path)
    finally:
        logger.removeHandler(handler)
    msgs = [r.getMessage() for r in records]
    assert any('clipped 1 boxes' in m and 'skipped 1 zero-area' in m and 'ann.json' in m
               for m in msgs), msgs


@pytest.mark.parametrize('section,field', [('images', 'width'), ('annotations', 'bbox'),
                                           ('categories', 'name')])
def test_missing_field_names_field_and_file(tmp_path, section, field):
    path = _write_set(tmp_path, [_ann(1, [1, 1, 5, 5])])
    coco = json.loads(path.read_text())
    del coco[section][0][field]
    path.write_text(json.dumps(coco))
    with pytest.raises(CocoFormatError, match=rf"ann\.json.*{section}\[0\].*'{field}'"):
        _build(tmp_path, path)


def test_missing_section_names_it(tmp_path):
    path = _write_set(tmp_path, [])
    coco = json.loads(path.read_text())
    del coco['categories']
    path.write_text(json.dumps(coco))
    with pytest.raises(CocoFormatError, match="ann.json.*'categories'"):
        _build(tmp_path, path)


def test_unknown_category_names_id_and_annotation(tmp_path):
    path = _write_set(tmp_path, [_ann(1, [1, 1, 5, 5]), _ann(77, [1, 1, 5, 5], cat=42)])
    with pytest.raises(CocoFormatError, match='annotation id 77 has category_id 42'):
        _build(tmp_path, path)


def test_unknown_image_id_is_an_error(tmp_path):
    path = _write_set(tmp_path, [_ann(5, [1, 1, 5, 5], img=9)])
    with pytest.raises(CocoFormatError, match='annotation id 5 has image_id 9'):
        _build(tmp_path, path)


def test_undecodable_image_is_skipped_and_logged(tmp_path):
    path = _write_set(tmp_path, [_ann(1, [1, 1, 5, 5]), _ann(2, [1, 1, 5, 5], img=2)],
                      broken_image=True)
    ds = _build(tmp_path, path)
    load = LoadImageOrSkip()
    ok = load(dict(img_path=ds.get_data_info(0)['img_path']))
    assert ok['img'].shape == (30, 40, 3)
    with _mmlogger_records() as records:
        assert load(dict(img_path=ds.get_data_info(1)['img_path'])) is None
    assert any('b.jpg' in r.getMessage() and 'failed to decode' in r.getMessage()
               for r in records)


def test_training_dataset_refetches_past_broken_image(tmp_path):
    path = _write_set(tmp_path, [_ann(1, [1, 1, 5, 5]), _ann(2, [1, 1, 5, 5], img=2)],
                      broken_image=True)
    ds = CheckedCocoDataset(ann_file=str(path), data_root=str(tmp_path),
                            data_prefix=dict(img='img/'), metainfo=dict(classes=CLASSES),
                            pipeline=[dict(type='mmdet.LoadImageOrSkip')])
    for _ in range(5):  # index 1 is broken: MMEngine refetches a random valid index
        assert ds[1]['img_path'].endswith('a.jpg')


def test_filter_empty_gt_drops_images_left_without_boxes(tmp_path):
    path = _write_set(tmp_path, [_ann(1, [1, 1, 5, 5]), _ann(2, [60, 60, 5, 5], img=2)])
    ds = _build(tmp_path, path, filter_cfg=dict(filter_empty_gt=True, min_size=1))
    assert len(ds) == 1 and ds.get_data_info(0)['img_path'].endswith('a.jpg')
    assert ds.repair_counts['empty'] == 1


def test_objects365_stage_skips_missing_images_with_a_count(tmp_path):
    """The public Objects365 train file lists images absent on disk (the official run used a
    repaired file): the stage-1 loader skips each with a running count instead of crashing."""
    from mmdet.registry import TRANSFORMS
    from mmengine.config import Config
    root = osp.dirname(osp.dirname(osp.abspath(__file__)))
    cfg = Config.fromfile(osp.join(root, 'configs/deta/pe_spatial_g_o365_stage1_1024.py'))
    load = TRANSFORMS.build(cfg.train_dataloader.dataset.pipeline[0])
    assert isinstance(load, LoadImageOrSkip)
    with _mmlogger_records() as records:
        for name in ('objects365_v1_00000017.jpg', 'objects365_v2_00908726.jpg'):
            assert load(dict(img_path=str(tmp_path / name))) is None
    msgs = [r.getMessage() for r in records]
    assert any('objects365_v2_00908726.jpg' in m and '2 skipped' in m for m in msgs), msgs
