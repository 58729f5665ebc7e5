"""CheckSegLabel inside a real ADE20KDataset pipeline: bad label files fail with their path."""
import os
import os.path as osp

import cv2
import numpy as np
import pytest
from mmengine.registry import init_default_scope
from mmseg.registry import DATASETS

import pe_dense.seg  # noqa: F401  registers the seg components
from pe_dense.datasets.seg_checks import CheckSegLabel

PIPELINE = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='CheckSegLabel', num_classes=4),
    dict(type='PackSegInputs'),
]


def write_pair(root, name, img_hw, label):
    for sub in ('images/training', 'annotations/training'):
        os.makedirs(osp.join(root, sub), exist_ok=True)
    cv2.imwrite(osp.join(root, 'images/training', name + '.jpg'),
                np.full((*img_hw, 3), 128, np.uint8))
    cv2.imwrite(osp.join(root, 'annotations/training', name + '.png'), label)


def dataset(root):
    init_default_scope('mmseg')
    return DATASETS.build(dict(
        type='ADE20KDataset', data_root=root, pipeline=PIPELINE,
        data_prefix=dict(img_path='images/training', seg_map_path='annotations/training')))


def test_good_label_passes_and_zero_becomes_ignore(tmp_path):
    label = np.zeros((16, 20), np.uint8)
    label[4:, :] = 4  # ADE id 4 -> class 3, the last of 4
    label[8:, :5] = 1
    write_pair(str(tmp_path), 'ok', (16, 20), label)
    seg = dataset(str(tmp_path))[0]['data_samples'].gt_sem_seg.data
    assert set(seg.unique().tolist()) == {0, 3, 255}


def test_label_size_differs_from_image(tmp_path):
    write_pair(str(tmp_path), 'bad_size', (16, 20), np.ones((16, 18), np.uint8))
    with pytest.raises(ValueError, match=r'bad_size\.png.*16x18.*16x20'):
        dataset(str(tmp_path))[0]


def test_label_ids_outside_class_range(tmp_path):
    label = np.ones((16, 20), np.uint8)
    label[0, 0] = 7  # -> class 6 with only 4 classes
    write_pair(str(tmp_path), 'bad_ids', (16, 20), label)
    with pytest.raises(ValueError, match=r'bad_ids\.png.*\[6\].*outside \[0, 4\)'):
        dataset(str(tmp_path))[0]


def test_multichannel_label_and_missing_label():
    check = CheckSegLabel(num_classes=3)
    img = np.zeros((4, 4, 3), np.uint8)
    with pytest.raises(ValueError, match='single-channel'):
        check(dict(img=img, ori_shape=(4, 4), gt_seg_map=np.zeros((4, 4, 3), np.uint8),
                   seg_map_path='x.png'))
    with pytest.raises(KeyError, match='after LoadAnnotations'):
        check(dict(img=img, ori_shape=(4, 4)))
    with pytest.raises(ValueError, match='num_classes'):
        CheckSegLabel(num_classes=0)
