"""``compile`` in a config compiles the model's forward (CompileModelHook), not MMEngine's whole
``train_step``: no recompilation while the lr changes, and a PE detector trains compiled with
the losses of the eager run."""
import json
import os

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

import tests.fixtures.tiny_task  # noqa: F401  registers TinyRegressor/TinyRegressionSet
from pe_dense.engine.hooks.compile_model import move_compile_to_hook
from tests.fixtures.child_config import toy_deta_child
from tests.test_reliability_torchrun import ROOT, _run

TINY = os.path.join(ROOT, 'tests', 'fixtures', 'tiny_task_cfg.py')


def test_compile_option_becomes_a_forward_hook():
    cfg = Config(dict(compile=dict(backend='eager', target='backbone'),
                      custom_hooks=[dict(type='RNGStateHook')]))
    move_compile_to_hook(cfg)
    assert cfg.compile is False
    assert cfg.custom_hooks[-1] == dict(type='CompileModelHook', backend='eager', target='backbone')
    cfg = Config(dict(compile=True))
    move_compile_to_hook(cfg)
    assert cfg.custom_hooks == [dict(type='CompileModelHook')]


@pytest.mark.parametrize('ours', [True, False])
def test_lr_schedule_does_not_recompile(tmp_path, ours):
    """Five iterations under a warm-up: MMEngine's compiled train_step recompiles (guards on the
    optim wrapper's counter and on every group's lr); the compiled forward does not."""
    torch._dynamo.reset()
    cfg = Config.fromfile(TINY)
    cfg.work_dir = str(tmp_path)
    cfg.train_cfg.max_iters = 5
    cfg.visualizer = dict(type='Visualizer', vis_backends=[dict(type='LocalVisBackend')])
    cfg.experiment_name = f'compile_{ours}_{tmp_path.name}'
    cfg.compile = dict(backend='eager')
    with torch._dynamo.config.patch(error_on_recompile=True):
        if ours:
            move_compile_to_hook(cfg)
            Runner.from_cfg(cfg).train()
        else:
            with pytest.raises(Exception, match='[Rr]ecompil'):
                Runner.from_cfg(cfg).train()
    torch._dynamo.reset()


def _train_eager_and_compiled(cfg: str, tmp_path, loss_hook: int) -> dict:
    """tools/train.py eager, with the forward compiled and with the backbone compiled (dynamo +
    AOT autograd); each run's recorded losses by name (``loss_hook``: the recorder's index in
    ``custom_hooks``), its log in ``tmp_path/<name>.log``."""
    losses = {}
    for name, extra in (('eager', []), ('compiled', ['compile.backend=aot_eager']),
                        ('backbone', ['compile.backend=aot_eager', 'compile.target=backbone'])):
        work = tmp_path / name
        _run([os.sys.executable, os.path.join(ROOT, 'tools', 'train.py'), cfg, '--work-dir',
              str(work), '--cfg-options',
              f'custom_hooks.{loss_hook}.out_file={work}/losses.json', *extra],
             tmp_path / f'{name}.log', timeout=300)
        losses[name] = json.load(open(work / 'losses.json'))
    return losses


@pytest.mark.slow
def test_toy_deta_trains_compiled_with_the_eager_losses(tmp_path):
    """One iteration of the toy DETA through tools/train.py with ``compile`` (dynamo + AOT
    autograd; inductor's code generation is left out for time), the whole forward and only the
    backbone, against the eager run."""
    cfg = toy_deta_child(
        tmp_path, 'deta_compile.py', ['tests.fixtures.global_loss_hook'],
        loader='batch_size=2, ', dataset='indices=2, ',
        body="train_cfg = dict(max_epochs=1, val_interval=100)\n"
             "default_hooks = dict(checkpoint=dict(interval=100), logger=dict(interval=1))\n"
             "custom_hooks = [dict(type='RNGStateHook'), "
             "dict(type='GlobalLossRecordHook', out_file='losses.json')]\n")
    losses = _train_eager_and_compiled(cfg, tmp_path, loss_hook=1)
    assert 'torch.compile(DETA.forward' in open(tmp_path / 'compiled.log').read()
    assert 'torch.compile(PE.forward' in open(tmp_path / 'backbone.log').read()
    (a, ) = losses['eager']
    assert len(a) > 10
    for name in ('compiled', 'backbone'):
        (b, ) = losses[name]
        assert a.keys() == b.keys()
        for k in a:
            assert b[k] == pytest.approx(a[k], rel=1e-4, abs=1e-6), (name, k)


@pytest.mark.slow
def test_toy_segmentor_trains_compiled_with_the_eager_losses(tmp_path):
    """The mmseg side: the toy ADE20k linear probe (frozen PE + BN + linear head), two
    iterations eager, with the forward compiled and with only the backbone compiled."""
    from pe_dense.toy import make_toy
    from tests.fixtures.child_config import write_child_config
    data = str(tmp_path / 'toy_ade20k')
    make_toy('ade20k', data, num_train=8, num_val=2, size=96, progress_bar=False)
    cfg = write_child_config(
        tmp_path / 'seg_compile.py', os.path.join(ROOT, 'configs', 'demo', 'pe_ade20k_toy.py'),
        ['pe_dense.seg', 'tests.fixtures.global_loss_hook'],
        f"train_dataloader = dict(dataset=dict(data_root={data!r}))\n"
        "train_cfg = dict(max_iters=2, val_interval=100)\n"
        "default_hooks = dict(checkpoint=dict(interval=100), logger=dict(interval=1))\n"
        "custom_hooks = [dict(type='GlobalLossRecordHook', out_file='losses.json')]\n")
    losses = _train_eager_and_compiled(cfg, tmp_path, loss_hook=0)
    assert 'torch.compile(EncoderDecoder.forward' in open(tmp_path / 'compiled.log').read()
    assert 'torch.compile(PE.forward' in open(tmp_path / 'backbone.log').read()
    eager = losses['eager']
    assert [r['iter'] for r in eager] == [1, 2]
    for name in ('compiled', 'backbone'):
        for a, b in zip(eager, losses[name], strict=True):
            assert a.keys() == b.keys() and 'decode.loss_ce' in a
            for k in a:
                assert b[k] == pytest.approx(a[k], rel=1e-4, abs=1e-6), (name, a['iter'], k)
