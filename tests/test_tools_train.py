"""tools/test.py end to end, and the option handling shared by tools/train.py and tools/test.py."""
import os
import pickle
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config, ConfigDict
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from pe_dense.engine.launch import (build_runner, enable_visualization, load_config, setup_test,
                                    setup_train, wrap_tta)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, 'tests', 'fixtures')
TEST_CFG = os.path.join(FIXTURES, 'tiny_task_test_cfg.py')


def _args(**kw):
    base = dict(work_dir=None, cfg_options=None, launcher='none', local_rank=0)
    return type('Args', (), {**base, **kw})


def _expected_mse(state_dict):
    from tests.fixtures.tiny_task import TinyRegressionSet, TinyRegressor
    model = TinyRegressor().eval()
    model.load_state_dict(state_dict)
    data = TinyRegressionSet(size=32)
    x = torch.stack([d['inputs'] for d in data.data_list])
    y = torch.stack([d['targets'] for d in data.data_list])
    with torch.no_grad():
        return (model.net(x).squeeze(-1) - y).pow(2).mean().item()


def test_test_tool_evaluates_the_checkpoint_and_dumps_predictions(tmp_path):
    from tests.fixtures.tiny_task import TinyRegressor
    torch.manual_seed(3)
    state = TinyRegressor().state_dict()
    ckpt = tmp_path / 'model.pth'
    torch.save(dict(state_dict=state, meta=dict()), ckpt)
    out = subprocess.run(
        [sys.executable, os.path.join(ROOT, 'tools', 'test.py'), TEST_CFG, str(ckpt),
         '--work-dir', str(tmp_path / 'work'), '--out', str(tmp_path / 'preds.pkl')],
        cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT), capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    printed = eval(out.stdout.strip().splitlines()[-1])  # the tool's last line: the metrics dict
    assert printed['count'] == 32
    assert printed['mse'] == pytest.approx(_expected_mse(state), abs=1e-4)
    with open(tmp_path / 'preds.pkl', 'rb') as f:  # our own file, written just now
        assert len(pickle.load(f)) == 32
    assert 'tiny_task_test_cfg.py' in os.listdir(tmp_path / 'work')


def test_missing_checkpoint_is_named(tmp_path):
    cfg = Config(dict(model=dict(type='TinyRegressor')))
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        setup_test(cfg, str(tmp_path / 'nope.pth'))


def test_config_options_work_dir_and_launcher(tmp_path):
    cfg = load_config(TEST_CFG, _args(cfg_options={'train_cfg.max_iters': 3}, launcher='pytorch'))
    assert cfg.train_cfg.max_iters == 3 and cfg.launcher == 'pytorch'
    assert cfg.work_dir == os.path.join('work_dirs', 'tiny_task_test_cfg')
    cfg = load_config(TEST_CFG, _args(work_dir=str(tmp_path)))
    assert cfg.work_dir == str(tmp_path)
    with pytest.raises(FileNotFoundError, match='missing_cfg.py'):
        load_config(str(tmp_path / 'missing_cfg.py'), _args())


def test_amp_resume_and_auto_scale_lr_options(tmp_path):
    cfg = Config(dict(optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)), work_dir=str(tmp_path)))
    setup_train(cfg, amp=True, resume=str(tmp_path / 'iter_4.pth'))
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper' and cfg.optim_wrapper.loss_scale == 'dynamic'
    assert cfg.resume and cfg.load_from == str(tmp_path / 'iter_4.pth')
    setup_train(cfg, resume='auto')  # an empty work dir: resume from scratch
    assert cfg.resume and cfg.load_from is None
    with pytest.raises(KeyError, match='base_batch_size'):
        setup_train(cfg, auto_scale_lr=True)
    cfg.auto_scale_lr = dict(base_batch_size=16)
    assert setup_train(cfg, auto_scale_lr=True).auto_scale_lr.enable


def test_tta_wraps_the_model_and_replaces_the_innermost_pipeline():
    cfg = Config(dict(
        model=dict(type='Det'), tta_model=dict(type='DetTTAModel', tta_cfg=dict(nms=0.5)),
        tta_pipeline=[dict(type='LoadImageFromFile'), dict(type='TestTimeAug', transforms=[])],
        test_dataloader=dict(dataset=dict(type='RepeatDataset', times=1, dataset=dict(
            type='CocoDataset', pipeline=[dict(type='LoadImageFromFile')])))))
    wrap_tta(cfg)
    assert cfg.model.type == 'DetTTAModel' and cfg.model.module.type == 'Det'
    assert cfg.test_dataloader.dataset.dataset.pipeline[-1].type == 'TestTimeAug'
    with pytest.raises(KeyError, match='tta_pipeline'):
        wrap_tta(Config(dict(model=dict(), tta_model=dict(type='X'))))


def test_show_dir_on_a_config_without_a_known_library_is_an_error(tmp_path):
    with pytest.raises(KeyError, match="scope 'mmengine'"):
        enable_visualization(Config(dict(default_scope='mmengine')), str(tmp_path))
    cfg = Config(dict(default_scope='mmengine', default_hooks=dict(
        visualization=dict(type='MyVisHook'))))
    enable_visualization(cfg, str(tmp_path / 'v'))  # an existing hook is switched on, kept
    assert cfg.default_hooks.visualization.type == 'MyVisHook'
    assert cfg.default_hooks.visualization.draw


def test_runner_type_selects_the_registered_runner():
    @RUNNERS.register_module(force=True)
    class RecordingRunner(Runner):
        @classmethod
        def from_cfg(cls, cfg):
            return ('recorded', cfg.marker)

    assert build_runner(Config(dict(runner_type='RecordingRunner', marker=7))) == ('recorded', 7)


def _shell(script, *args, path_dir=None):
    env = dict(os.environ, PYTHON='echo')
    if path_dir:
        env['PATH'] = f'{path_dir}:{env["PATH"]}'
    out = subprocess.run(['bash', os.path.join(ROOT, 'tools', script), *args], env=env,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def test_dist_scripts_call_torchrun_with_the_pytorch_launcher():
    words = _shell('dist_train.sh', 'cfg.py', '2', '--amp')
    assert words[:2] == ['-m', 'torch.distributed.run'] and '--nproc_per_node=2' in words
    assert words[-5:] == [os.path.join(ROOT, 'tools', 'train.py'), 'cfg.py', '--launcher',
                          'pytorch', '--amp']
    words = _shell('dist_test.sh', 'cfg.py', 'ck.pth', '4')
    assert '--nproc_per_node=4' in words and words[-4:] == ['cfg.py', 'ck.pth', '--launcher',
                                                            'pytorch']


def test_slurm_script_runs_train_under_srun(tmp_path):
    srun = tmp_path / 'srun'
    srun.write_text('#!/usr/bin/env bash\necho srun "$@"\n')
    srun.chmod(0o755)
    words = _shell('slurm_train.sh', 'part', 'job', 'cfg.py', '--resume', path_dir=tmp_path)
    assert words[0] == 'srun' and '-p' in words and 'part' in words and '--ntasks=8' in words
    assert words[-4:] == ['cfg.py', '--launcher', 'slurm', '--resume']
