"""Alignment configs: the paper's settings are where docs/align.md says, every type resolves."""
import glob
import inspect
import os.path as osp
import re

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
    assert m.teacher.backbone.arch == 'PE-Core-G14-448' and m.teacher.layer == 40
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


def _teacher_layers(node, found):
    """Every (arch, layer) of a dict with a ``layer`` beside a PE ``backbone``, at any depth."""
    if isinstance(node, dict):
        backbone = node.get('backbone')
        if 'layer' in node and isinstance(backbone, dict) and 'arch' in backbone:
            found.append((backbone['arch'], node['layer']))
        for v in node.values():
            _teacher_layers(v, found)
    elif isinstance(node, (list, tuple)):
        for v in node:
            _teacher_layers(v, found)
    return found


def test_every_pe_core_g_teacher_is_block_40():
    """The paper's PE-Core-G "layer 41" counts from 1 (its "layer 47 of 50" is PE-Lang-G with 47
    blocks kept), so every config that distils from it names block index 40 (docs/align.md)."""
    found = []
    for path in sorted(glob.glob(osp.join(ROOT, 'configs', '**', '*.py'), recursive=True)):
        if '_base_' in path:
            continue
        for arch, layer in _teacher_layers(Config.fromfile(path).to_dict(), []):
            found.append((osp.relpath(path, ROOT), arch, layer))
    g = [f for f in found if f[1] == 'PE-Core-G14-448']
    assert g, 'no PE-Core-G teacher found: the walk is broken'
    assert all(layer in (40, -10) for _, _, layer in g), g
    from pe_dense.models.teachers.frozen_pe import FrozenPETeacher
    assert inspect.signature(FrozenPETeacher).parameters['layer'].default == 40
    # written rules agree too: no text uses the 1-based number as a block index
    for top in ('configs', 'pe_dense', 'docs', 'tools'):
        for path in glob.glob(osp.join(ROOT, top, '**', '*.*'), recursive=True):
            if path.endswith(('.py', '.md')):
                text = open(path, encoding='utf-8').read()
                assert not re.search(r'layer\s*=\s*41\b|\[41\]|block 41\b', text), path
