"""Alignment data: image folder / SA-1B datasets, pipeline, SAM target cache tool (resumable)."""
import json
import os
import os.path as osp
import runpy
import sys

import numpy as np
import pytest
import torch

from pe_dense.datasets import ImageFolderDataset, SA1BDataset, SAMTargetCache
from pe_dense.datasets.transforms.align_transforms import (AlignRandomFlip, AlignResize,
                                                           LoadAlignImage, LoadSAMTargets,
                                                           PackAlignInputs)
from pe_dense.toy.images import make_images

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


@pytest.fixture(scope='module')
def toy(tmp_path_factory):
    out = tmp_path_factory.mktemp('align_data')
    make_images(str(out / 'folder'), num_train=4, num_val=1, size=48, progress_bar=False)
    make_images(str(out / 'sa1b'), num_train=2, num_val=1, size=48, layout='sa1b',
                progress_bar=False)
    return out


def test_image_folder_lists_nested_images(toy, tmp_path):
    ds = ImageFolderDataset(data_root=str(toy / 'folder'), data_prefix=dict(img_path='train'))
    assert len(ds) == 4
    keys = [ds.get_data_info(i)['key'] for i in range(4)]
    assert any('/' in k for k in keys) and len(set(keys)) == 4  # nested folders keep unique keys
    with pytest.raises(ValueError, match='no images'):
        ImageFolderDataset(data_root=str(tmp_path))
    with pytest.raises(FileNotFoundError, match='not found'):
        ImageFolderDataset(data_root=str(tmp_path / 'missing'))


def test_sa1b_layout_and_bad_json(toy, tmp_path):
    ds = SA1BDataset(data_root=str(toy / 'sa1b'))
    assert len(ds) == 3
    info = ds.get_data_info(0)
    assert info['img_path'].endswith('.jpg') and info['key'].startswith('sa_000000/sa_')
    assert (info['height'], info['width']) == (48, 48)
    bad = tmp_path / 'sa_000000'
    bad.mkdir()
    (bad / 'sa_9.json').write_text(json.dumps({'image': {'file_name': 'sa_9.jpg', 'width': 4}}))
    with pytest.raises(ValueError, match=r'sa_9.json: image record lacks "height"'):
        SA1BDataset(data_root=str(tmp_path))


def test_pipeline_flips_image_and_targets_together(toy, tmp_path):
    ds = ImageFolderDataset(data_root=str(toy / 'folder'), data_prefix=dict(img_path='train'))
    info = ds.get_data_info(0)
    cache = SAMTargetCache(str(tmp_path / 'cache'))
    target = torch.arange(2 * 3 * 4, dtype=torch.float32).reshape(2, 3, 4)
    cache.save(info['key'], target)
    res = LoadAlignImage()(dict(info))
    res = AlignResize(32)(res)
    res = LoadSAMTargets(cache.root)(res)
    img = res['img'].copy()
    res = AlignRandomFlip(prob=1.0)(res)
    assert res['flip'] and np.array_equal(res['img'], img[:, ::-1])
    torch.testing.assert_close(res['sam_targets'], target.flip(-1))
    packed = PackAlignInputs()(res)
    assert packed['inputs'].shape == (3, 32, 32) and packed['inputs'].dtype == torch.uint8
    assert packed['data_samples']['key'] == info['key']
    with pytest.raises(FileNotFoundError, match='cache_sam_targets'):
        LoadSAMTargets(str(tmp_path / 'empty'))(dict(key='nothing'))


def test_unreadable_image_is_named(tmp_path):
    bad = tmp_path / 'broken.jpg'
    bad.write_bytes(b'not a jpeg at all')
    with pytest.raises(ValueError, match='unreadable image.*broken.jpg'):
        LoadAlignImage()(dict(img_path=str(bad)))


def _run_tool(argv):
    old = sys.argv
    sys.argv = ['cache_sam_targets.py'] + argv
    try:
        runpy.run_path(osp.join(ROOT, 'tools', 'cache_sam_targets.py'), run_name='__main__')
    finally:
        sys.argv = old


def test_cache_tool_resumes_to_identical_result(toy, tmp_path, capsys):
    from pe_dense.models.teachers import SAM2Teacher
    torch.manual_seed(0)
    sam_ckpt = tmp_path / 'sam_t.pt'  # fixed random weights shared by both runs
    torch.save({'model': SAM2Teacher('t', grid=2, image_size=64).sam.state_dict()}, sam_ckpt)
    cfg = tmp_path / 'cfg.py'
    cfg.write_text(
        f"_base_ = ['{ROOT}/configs/align/toy_align_tiny.py']\n"
        f"sam_cache = dict(root='{tmp_path}/unused', grid_hw=(3, 3))\n"
        f"model = dict(sam_teacher=dict(grid=2, image_size=64, checkpoint='{sam_ckpt}'))\n"
        f"train_dataloader = dict(dataset=dict(data_root='{toy}/folder'))\n")
    _run_tool([str(cfg), '--out', str(tmp_path / 'a'), '--max-images', '2', '--no-progress'])
    first = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (first['written'], first['remaining']) == (2, 2)
    _run_tool([str(cfg), '--out', str(tmp_path / 'a'), '--no-progress'])
    second = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (second['cached_before'], second['written'], second['remaining']) == (2, 2, 0)
    _run_tool([str(cfg), '--out', str(tmp_path / 'b'), '--no-progress'])
    a, b = SAMTargetCache(str(tmp_path / 'a')), SAMTargetCache(str(tmp_path / 'b'))
    ds = ImageFolderDataset(data_root=str(toy / 'folder'), data_prefix=dict(img_path='train'))
    for i in range(len(ds)):
        key = ds.get_data_info(i)['key']
        ta, tb = a.load(key), b.load(key)
        assert ta.dtype == torch.float16 and ta.shape == (4, 3, 3)
        assert torch.equal(ta, tb)
    assert not list((tmp_path / 'a').rglob('*.tmp*'))
    # two disjoint shards fill exactly the cache of the unsharded run
    for shard in ('0/2', '1/2'):
        _run_tool([str(cfg), '--out', str(tmp_path / 'c'), '--shard', shard, '--no-progress'])
        part = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert 0 < part['written'] == part['total'] < len(ds)
    c = SAMTargetCache(str(tmp_path / 'c'))
    assert sorted(os.listdir(tmp_path / 'c')) == sorted(os.listdir(tmp_path / 'b'))
    for i in range(len(ds)):
        key = ds.get_data_info(i)['key']
        assert torch.equal(c.load(key), b.load(key))
    with pytest.raises(SystemExit):
        _run_tool([str(cfg), '--shard', '2/2'])
    cfg2 = tmp_path / 'cfg2.py'  # other settings must not be mixed into the same cache
    cfg2.write_text(cfg.read_text().replace('grid_hw=(3, 3)', 'grid_hw=(2, 2)'))
    with pytest.raises(ValueError, match='was made with'):
        _run_tool([str(cfg2), '--out', str(tmp_path / 'a'), '--no-progress'])


def test_random_flip_follows_the_global_numpy_seed():
    """Unseeded flips must be reproducible from the runner's seed (and so resumable)."""
    def coins():
        flip = AlignRandomFlip(prob=0.5)
        return [flip(dict(img=np.zeros((4, 4, 3), np.uint8)))['flip'] for _ in range(32)]
    np.random.seed(3)
    first = coins()
    np.random.seed(3)
    assert coins() == first and 0 < sum(first) < 32
