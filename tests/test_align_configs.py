"""Alignment configs: the paper's settings are where docs/align.md says, every type resolves."""
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.registry import DATASETS, HOOKS, MODELS, OPTIMIZERS, TRANSFORMS

import pe_dense.align  # noqa: F401  registers the align components

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def _cfg(name):
    return Config.fromfile(osp.join(ROOT, 'configs', 'align', name))


def _types_resolve(cfg):
    assert MODELS.get(cfg.model.type) is not None
    ds = cfg.train_dataloader.dataset
    assert DATASETS.get(ds.type) is not None
    for t in ds.pipeline:
        assert TRANSFORMS.get(t['type']) is not None, t['type']
    for h in cfg.custom_hooks:
        assert HOOKS.get(h['type']) is not None
    assert OPTIMIZERS.get(cfg.optim_wrapper.optimizer.type) is not None


def test_g14_alignment_recipe():
    cfg = _cfg('pe_spatial_align_g14_448.py')
    m = cfg.model
    assert m.type == 'SpatialAligner' and m.mask_ratio == 0.75
    assert m.student.arch == 'PE-Spatial-G14-448' and m.student.drop_path_rate > 0
    assert m.teacher.backbone.arch == 'PE-Core-G14-448' and m.teacher.layer == 41
    assert m.student.init_cfg.checkpoint == m.teacher.backbone.init_cfg.checkpoint
    assert (m.sam_teacher.size, m.sam_teacher.grid) == ('l', 32)
    assert 'image_size' not in m.sam_teacher  # SAM at its native 1024 px
    assert cfg.img_size == 448 and tuple(cfg.sam_cache.grid_hw) == (32, 32)
    loader = [t for t in cfg.train_dataloader.dataset.pipeline if t['type'] == 'LoadSAMTargets']
    assert loader[0]['cache_root'] == cfg.sam_cache.root
    assert cfg.randomness.seed is not None
    assert {v['type'] for v in cfg.vis_backends} == {'LocalVisBackend', 'TensorboardVisBackend'}
    _types_resolve(cfg)


@pytest.mark.parametrize('name', ['toy_align_tiny.py', 'pe_spatial_distill_t16_from_g14.py'])
def test_other_configs_resolve(name):
    cfg = _cfg(name)
    _types_resolve(cfg)
    if cfg.model.type == 'SpatialDistiller':
        assert cfg.model.student.arch == 'PE-Spatial-T16-512'
        assert cfg.model.teacher.backbone.arch == 'PE-Spatial-G14-448'
        assert cfg.model.pair_weight > 0 and cfg.model.feat_weight > 0
