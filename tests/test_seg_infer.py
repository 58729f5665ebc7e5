"""pe_dense.apis.seg_infer on image files: seg and depth pictures plus raw predictions."""
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

import pe_dense.seg  # noqa: F401  registers the seg components
from pe_dense.apis.seg_infer import config_classes, inference_pipeline, infer_files

ROOT = osp.join(osp.dirname(__file__), '..', 'configs')
TINY_PE = dict(patch_size=8, width=32, depth=4, heads=2, mlp_dim=64, cls_token=True,
               img_size=64)


def tiny_cfg(path: str) -> Config:
    cfg = Config.fromfile(osp.join(ROOT, path))
    bb = cfg.model.backbone
    bb.arch, bb.img_size, bb.init_cfg = TINY_PE, 64, None
    head = cfg.model.decode_head
    head.in_channels = [TINY_PE['width']] * len(head.in_channels)
    head.norm_cfg = dict(type='BN')
    cfg.model.data_preprocessor.test_cfg = dict(size_divisor=8)
    cfg.model.test_cfg = dict(mode='whole')
    return cfg


def save_ckpt(cfg: Config, path: str, meta=None) -> str:
    init_default_scope('mmseg')
    model = MODELS.build(cfg.model)
    torch.save(dict(state_dict=model.state_dict(), meta=meta or {}), path)
    return path


@pytest.fixture
def images(tmp_path):
    rng = np.random.default_rng(0)
    files = []
    for i, hw in enumerate([(40, 56), (33, 47)]):
        f = str(tmp_path / f'img{i}.jpg')
        cv2.imwrite(f, rng.integers(0, 255, (*hw, 3), dtype=np.uint8))
        files.append(f)
    return files


def test_pipeline_drops_annotation_steps():
    cfg = Config.fromfile(osp.join(ROOT, 'nyu', 'pe_spatial_g14_linear4_nyu.py'))
    assert [t['type'] for t in inference_pipeline(cfg.test_pipeline)] == \
        ['LoadImageRobust', 'PackSegInputs']


def test_segmentation_files(tmp_path, images):
    cfg = tiny_cfg('ade20k/pe_spatial_g14_linear_448_ade20k.py')
    ckpt = save_ckpt(cfg, str(tmp_path / 'seg.pth'))
    out = infer_files(cfg, ckpt, images, str(tmp_path / 'out'))
    assert out['task'] == 'segmentation' and out['images'] == 2
    for item, f in zip(out['files'], images):
        img = cv2.imread(f)
        pred = cv2.imread(item['pred'], cv2.IMREAD_UNCHANGED)
        assert pred.dtype == np.uint8 and pred.shape == img.shape[:2] and pred.max() < 150
        assert cv2.imread(item['vis']).shape == img.shape


def test_depth_files_are_millimetres_and_colour_pictures(tmp_path, images):
    cfg = tiny_cfg('nyu/pe_spatial_g14_linear4_nyu.py')
    ckpt = save_ckpt(cfg, str(tmp_path / 'depth.pth'))
    out = infer_files(cfg, ckpt, images, str(tmp_path / 'out'))
    assert out['task'] == 'depth'
    for item, f in zip(out['files'], images):
        h, w = cv2.imread(f).shape[:2]
        pred = cv2.imread(item['pred'], cv2.IMREAD_UNCHANGED)
        assert pred.dtype == np.uint16 and pred.shape == (h, w)
        assert 0 < pred.min() and pred.max() <= 10000  # within max_depth, in mm
        vis = cv2.imread(item['vis'])
        assert vis.shape == (2 * h, w, 3)  # image over its depth map


def test_classes_fall_back_to_the_dataset_palette_or_numbers():
    cfg = Config.fromfile(osp.join(ROOT, 'ade20k', 'pe_spatial_g14_linear_448_ade20k.py'))
    meta = config_classes(cfg, 150)
    assert meta['classes'][0] == 'wall' and meta['palette'][0] == [120, 120, 120]
    meta = config_classes(cfg, 3)
    assert meta['classes'] == ('0', '1', '2') and len(meta['palette']) == 3


def test_tools_infer_dispatches_mmseg_configs(tmp_path, images):
    """tools/infer.py picks the segmentation runner from the config's default_scope."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'infer_tool', osp.join(osp.dirname(__file__), '..', 'tools', 'infer.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    cfg = tiny_cfg('ade20k/pe_spatial_g14_linear_448_ade20k.py')
    cfg_file = str(tmp_path / 'seg_cfg.py')
    cfg.dump(cfg_file)
    ckpt = save_ckpt(cfg, str(tmp_path / 'seg.pth'))
    out = tool.main([cfg_file, ckpt, osp.dirname(images[0]), '--out-dir', str(tmp_path / 'o'),
                     '--device', 'cpu'])
    assert out['task'] == 'segmentation' and out['images'] == 2
    assert all(osp.isfile(item['pred']) for item in out['files'])
