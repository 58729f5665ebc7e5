"""Aligner construction from a PE-Core checkpoint, export to the PE-Spatial layout, distiller."""
import os.path as osp
import runpy
import sys

import pytest
import torch

from pe_dense.models.aligners import SpatialAligner, SpatialDistiller, export_student
from pe_dense.models.backbones import PE
from pe_dense.models.backbones.checkpoint import CheckpointError, save_state_dict

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CORE = dict(patch_size=16, width=32, depth=3, heads=2, mlp_dim=64, cls_token=True, pool='attn',
            out_dim=16, layer_scale=None, ln_post=True, img_size=64)
SPATIAL = dict(CORE, pool=None, out_dim=None, layer_scale=0.1, ln_post=False)


@pytest.fixture(autouse=True)
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matmuls: threads only contend on a shared CPU
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope='module')
def core_ckpt(tmp_path_factory):
    torch.manual_seed(0)
    path = str(tmp_path_factory.mktemp('core') / 'tiny_core.pt')
    save_state_dict(PE(arch=CORE).state_dict(), path)
    return path


def _aligner(core_ckpt, **kw):
    init = dict(type='Pretrained', checkpoint=core_ckpt)
    m = SpatialAligner(student=dict(arch=SPATIAL, drop_path_rate=0.1, init_cfg=init),
                       teacher=dict(backbone=dict(arch=CORE, init_cfg=init), layer=1),
                       sam_teacher=None, **kw)
    m.init_weights()
    return m


def test_student_starts_from_core_with_layerscale(core_ckpt):
    m = _aligner(core_ckpt)
    core = torch.load(core_ckpt, weights_only=True)
    s = m.student.state_dict()
    assert torch.equal(s['transformer.resblocks.2.mlp.c_fc.weight'],
                       core['transformer.resblocks.2.mlp.c_fc.weight'])
    assert torch.equal(m.teacher.pe.state_dict()['conv1.weight'], core['conv1.weight'])
    assert torch.allclose(s['transformer.resblocks.0.ls_1.gamma'], torch.full((32,), 0.1))
    assert not hasattr(m.student, 'attn_pool')
    assert m.mask_token.requires_grad and not any(
        p.requires_grad for p in m.teacher.parameters())


def test_loss_needs_sam_source_and_uses_cached_targets(core_ckpt):
    m = _aligner(core_ckpt)
    x = torch.rand(2, 3, 64, 64) * 255
    with pytest.raises(ValueError, match='no cached sam_targets'):
        m(x, None, mode='loss')
    losses = m(x, dict(sam_targets=[torch.randn(9, 8, 8), torch.randn(9, 8, 8)]), mode='loss')
    assert set(losses) == {'loss_cos', 'loss_sam'}
    sum(losses.values()).backward()
    assert m.mask_token.grad is not None and m.mask_token.grad.abs().sum() > 0
    assert m(x, mode='tensor').shape == (2, 32, 4, 4)


def test_export_loads_into_pe_spatial(core_ckpt, tmp_path):
    m = _aligner(core_ckpt)
    with torch.no_grad():
        for p in m.student.parameters():
            p.add_(0.01 * torch.randn_like(p))  # "trained" weights
    ckpt = tmp_path / 'iter_10.pth'
    torch.save({'state_dict': m.state_dict(), 'meta': {'iter': 10}}, ckpt)
    out = tmp_path / 'spatial.pt'
    old = sys.argv
    sys.argv = ['export_aligned.py', str(ckpt), str(out)]
    try:  # the command line, in-process (a subprocess would re-import every library)
        runpy.run_path(osp.join(ROOT, 'tools', 'export_aligned.py'), run_name='__main__')
    finally:
        sys.argv = old
    sd = torch.load(out, weights_only=True)
    assert not any(k.startswith(('mask_token', 'teacher', 'student', 'attn_pool', 'proj'))
                   for k in sd)
    pe = PE(arch=SPATIAL, init_cfg=dict(type='Pretrained', checkpoint=str(out)))
    missing, unexpected = pe.load_pretrained(str(out), strict=True)
    assert not missing and not unexpected
    pe.eval()
    m.eval()
    x = torch.randn(1, 3, 64, 64)
    torch.testing.assert_close(pe(x)[0], m.student(x)[0])
    with pytest.raises(CheckpointError, match='not a SpatialAligner'):
        bad = tmp_path / 'bad.pth'
        torch.save({'state_dict': {'backbone.x': torch.zeros(1)}}, bad)
        export_student(str(bad), str(tmp_path / 'o.pt'))


def test_distiller_projects_and_learns(core_ckpt, tmp_path):
    torch.manual_seed(0)
    teacher = dict(backbone=dict(arch=dict(SPATIAL, patch_size=8, width=48, heads=2, img_size=64)),
                   layer=-1)
    d = SpatialDistiller(student=dict(arch=SPATIAL), teacher=teacher, mask_ratio=0.5)
    assert isinstance(d.feat_proj, torch.nn.Linear) and d.feat_proj.out_features == 48
    x = torch.rand(4, 3, 64, 64) * 255
    opt = torch.optim.AdamW([p for p in d.parameters() if p.requires_grad], lr=3e-3)
    first = None
    for _ in range(25):
        losses = d(x, mode='loss')
        assert set(losses) == {'loss_pair', 'loss_feat'}
        loss = sum(losses.values())
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.7 * first
    assert not any(k.startswith('feat_proj') for k in d.student_state_dict())
