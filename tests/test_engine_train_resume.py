"""tools/train.py on torch >= 2.6: run, resume from the work dir, refuse foreign pickles."""
import argparse
import os
import subprocess
import sys

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CFG = os.path.join(ROOT, 'tests', 'fixtures', 'tiny_task_cfg.py')


def _train(work_dir, *extra):
    env = dict(os.environ, PYTHONPATH=ROOT)
    out = subprocess.run([sys.executable, os.path.join(ROOT, 'tools', 'train.py'), CFG,
                          '--work-dir', str(work_dir), *extra],
                         cwd=ROOT, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout + out.stderr


def _weights(path):
    from pe_dense.models.backbones.checkpoint import load_checkpoint_file
    return load_checkpoint_file(str(path))['state_dict']  # weights_only, MMEngine classes allowed


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    """An uninterrupted 8-iteration run and one stopped at 4 then resumed (shared by tests)."""
    tmp_path = tmp_path_factory.mktemp('runs')
    full, part = tmp_path / 'full', tmp_path / 'part'
    _train(full)
    _train(part, '--cfg-options', 'train_cfg.max_iters=4')
    stopped = set(os.listdir(part))
    log = _train(part, '--resume')
    return full, part, stopped, log


def test_train_writes_config_logs_events_and_resumes_to_the_same_weights(runs):
    full, part, stopped, log = runs
    names = os.listdir(full)
    assert {'iter_4.pth', 'iter_8.pth', 'tiny_task_cfg.py'} <= set(names)
    run_dir = full / sorted(n for n in names if n[:8].isdigit())[-1]
    events = [f for _, _, fs in os.walk(run_dir) for f in fs if 'tfevents' in f]
    assert events, 'tensorboard events must be written'

    assert 'iter_4.pth' in stopped and 'iter_8.pth' not in stopped
    assert 'resumed' in log.lower()
    a, b = _weights(full / 'iter_8.pth'), _weights(part / 'iter_8.pth')
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-6), k


def test_resume_refuses_a_checkpoint_with_foreign_objects(runs, tmp_path):
    work = runs[1]
    ckpt = torch.load(work / 'iter_4.pth', weights_only=False)
    ckpt['meta']['args'] = argparse.Namespace(lr=1)
    bad = tmp_path / 'bad.pth'
    torch.save(ckpt, bad)
    env = dict(os.environ, PYTHONPATH=ROOT)
    out = subprocess.run([sys.executable, os.path.join(ROOT, 'tools', 'train.py'), CFG,
                          '--work-dir', str(tmp_path / 'w'), '--resume', str(bad)],
                         cwd=ROOT, env=env, capture_output=True, text=True)
    assert out.returncode != 0
    assert 'refused to unpickle argparse.Namespace' in out.stderr
    assert 'bad.pth' in out.stderr


def test_missing_config_names_the_file(tmp_path):
    import importlib.util
    spec = importlib.util.spec_from_file_location('train_tool', os.path.join(ROOT, 'tools', 'train.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    with pytest.raises(FileNotFoundError, match='Config file not found: .*nope.py'):
        tool.main([str(tmp_path / 'nope.py')])


@pytest.mark.parametrize('scope, hook', [('mmdet', 'DetVisualizationHook'),
                                         ('mmseg', 'SegVisualizationHook')])
def test_show_dir_turns_on_the_library_hook(scope, hook, tmp_path):
    from mmengine.config import Config

    from pe_dense.engine.launch import enable_visualization
    cfg = Config(dict(default_scope=scope, default_hooks=dict()))
    enable_visualization(cfg, str(tmp_path / 'vis'))
    vis = cfg.default_hooks.visualization
    assert vis.type == hook and vis.draw
    where = cfg.visualizer.save_dir if scope == 'mmseg' else vis.test_out_dir
    assert where == str(tmp_path / 'vis')
