"""Toy datasets: written in real formats and read back by the real consumers."""
import hashlib
import json
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest

from pe_dense.toy import make_toy
from pe_dense.toy.coco import make_coco

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def _sha(path):
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


@pytest.fixture(scope='module')
def coco_dir(tmp_path_factory):
    out = str(tmp_path_factory.mktemp('coco'))
    summary = make_coco(out, num_train=6, num_val=3, size=96, seed=3, progress_bar=False)
    return out, summary


def test_coco_pycocotools(coco_dir):
    from pycocotools.coco import COCO
    out, summary = coco_dir
    assert summary['splits']['train2017']['images'] == 6
    coco = COCO(osp.join(out, 'annotations', 'instances_train2017.json'))
    assert sorted(coco.getCatIds()) == [1, 2, 3]
    assert [c['name'] for c in coco.loadCats([1, 2, 3])] == ['circle', 'square', 'triangle']
    anns = coco.loadAnns(coco.getAnnIds())
    assert len(anns) >= 6
    for a in anns:
        img = coco.loadImgs(a['image_id'])[0]
        assert osp.isfile(osp.join(out, 'train2017', img['file_name']))
        x, y, w, h = a['bbox']
        assert w > 0 and h > 0 and x >= 0 and y >= 0
        assert x + w <= img['width'] and y + h <= img['height']
        assert a['iscrowd'] == 0 and a['category_id'] in (1, 2, 3)
        m = coco.annToMask(a)
        assert m.shape == (img['height'], img['width']) and m.sum() > 0
        # polygon rasterisation agrees with the stored area and box
        assert abs(m.sum() - a['area']) / a['area'] < 0.25
        ys, xs = np.nonzero(m)
        assert abs(xs.min() - x) <= 1 and abs(ys.min() - y) <= 1


def test_coco_image_ids_unique_across_splits(coco_dir):
    out, _ = coco_dir
    ids = []
    for split in ('train2017', 'val2017'):
        with open(osp.join(out, 'annotations', f'instances_{split}.json')) as f:
            ids += [im['id'] for im in json.load(f)['images']]
    assert len(ids) == len(set(ids)) == 9 and min(ids) >= 1


def test_coco_rle_and_classes(tmp_path):
    from pycocotools.coco import COCO
    make_coco(str(tmp_path), num_train=3, num_val=1, size=(120, 80), seed=1,
              classes=('star', 'circle'), mask_format='rle', progress_bar=False)
    coco = COCO(str(tmp_path / 'annotations' / 'instances_val2017.json'))
    assert [c['name'] for c in coco.loadCats(coco.getCatIds())] == ['star', 'circle']
    img = coco.loadImgs(coco.getImgIds())[0]
    assert (img['width'], img['height']) == (120, 80)
    for a in coco.loadAnns(coco.getAnnIds()):
        assert isinstance(a['segmentation'], dict)
        assert coco.annToMask(a).sum() == a['area']


def test_coco_mmdet_dataset(coco_dir):
    from mmcv.transforms import LoadImageFromFile
    from mmdet.datasets import CocoDataset
    from mmdet.datasets.transforms import LoadAnnotations, PackDetInputs
    out, _ = coco_dir
    ds = CocoDataset(
        data_root=out, ann_file='annotations/instances_val2017.json',
        data_prefix=dict(img='val2017/'), metainfo=dict(classes=('circle', 'square', 'triangle')),
        filter_cfg=dict(filter_empty_gt=True),
        pipeline=[LoadImageFromFile(), LoadAnnotations(with_bbox=True, with_mask=True),
                  PackDetInputs()])
    assert len(ds) == 3
    sample = ds[0]
    inputs, ds_sample = sample['inputs'], sample['data_samples']
    assert tuple(inputs.shape) == (3, 96, 96)
    gt = ds_sample.gt_instances
    assert len(gt) >= 1 and gt.labels.min() >= 0 and gt.labels.max() <= 2
    assert gt.masks.to_ndarray().sum(axis=(1, 2)).min() > 0


def test_coco_deterministic(tmp_path):
    a, b, c = (str(tmp_path / n) for n in 'abc')
    for out, seed in ((a, 5), (b, 5), (c, 6)):
        make_coco(out, num_train=3, num_val=1, size=64, seed=seed, progress_bar=False)
    rel = osp.join('annotations', 'instances_train2017.json')
    assert _sha(osp.join(a, rel)) == _sha(osp.join(b, rel))
    assert _sha(osp.join(a, 'train2017', '000000000001.jpg')) == \
        _sha(osp.join(b, 'train2017', '000000000001.jpg'))
    assert _sha(osp.join(a, rel)) != _sha(osp.join(c, rel))


def test_coco_bad_input(tmp_path):
    with pytest.raises(ValueError, match='hexagonal'):
        make_coco(str(tmp_path), classes=('circle', 'hexagonal'))
    with pytest.raises(ValueError, match='mask_format'):
        make_coco(str(tmp_path), mask_format='bitmap')
    with pytest.raises(ValueError, match='size'):
        make_coco(str(tmp_path), size='12x')
    with pytest.raises(ValueError, match='unknown toy dataset kind'):
        make_toy('kitti', str(tmp_path))


def test_cli_coco(tmp_path):
    out = tmp_path / 'cli'
    res = subprocess.run(
        [sys.executable, osp.join(ROOT, 'tools', 'make_toy_data.py'), 'coco', '--out', str(out),
         '--num-train', '2', '--num-val', '1', '--size', '64', '--seed', '2',
         '--classes', 'circle,star', '--no-progress'],
        capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary['classes'] == ['circle', 'star']
    assert summary['splits']['val2017']['images'] == 1
    assert osp.isfile(out / 'annotations' / 'instances_val2017.json')
