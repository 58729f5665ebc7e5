"""Resume and NaN skipping as on GPUs and under DDP: RNG states that MMEngine's loader left off
the CPU, one state per rank, and a NaN on one rank skipped by every rank (2 gloo processes)."""
import os
import sys
import warnings

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

import tests.fixtures.tiny_task  # noqa: F401  registers TinyRegressor/TinyRegressionSet
import tests.fixtures.dist_probe  # noqa: F401  registers RankProbeHook / NaNOnRankRegressor
from pe_dense.engine.hooks import rng_state
from tests.fixtures.child_config import write_child_config
from tests.fixtures.global_state import checkpoint_io  # noqa: F401  (fixture: resume as the tools do)
from tests.test_reliability_torchrun import ROOT, _free_port, _run

TINY = os.path.join(ROOT, 'tests', 'fixtures', 'tiny_task_cfg.py')


class OnGPU(torch.Tensor):
    """What ``map_location='cuda'`` hands back: a tensor that is not on the CPU."""

    @property
    def device(self):
        return torch.device('cuda', 0)

    def cpu(self, *args, **kwargs):
        return self.as_subclass(torch.Tensor).clone()


def _strict_set_rng_state(real):
    def set_rng_state(state):  # torch's own rule: a CPU ByteTensor
        if type(state) is not torch.Tensor or state.device.type != 'cpu' or \
                state.dtype != torch.uint8:
            raise TypeError('expected a CPU ByteTensor')
        return real(state)
    return set_rng_state


def _off_cpu(x):
    if isinstance(x, torch.Tensor):
        return x.as_subclass(OnGPU)
    if isinstance(x, (list, tuple)):
        return type(x)(_off_cpu(v) for v in x)
    if isinstance(x, dict):
        return {k: _off_cpu(v) for k, v in x.items()}
    return x


def _tiny_cfg(tmp_path, name, max_iters):
    cfg = Config.fromfile(TINY)
    cfg.work_dir = str(tmp_path / 'work')
    cfg.train_cfg.max_iters = max_iters
    cfg.default_hooks.checkpoint.interval = 2
    cfg.visualizer = dict(type='Visualizer', vis_backends=[dict(type='LocalVisBackend')])
    cfg.custom_hooks = [dict(type='RNGStateHook'),
                        dict(type='RankProbeHook', out_dir=str(tmp_path / name))]
    cfg.experiment_name = f'{name}_{tmp_path.name}'
    return cfg


def test_resume_restores_rng_states_loaded_off_the_cpu(tmp_path, monkeypatch, checkpoint_io):
    Runner.from_cfg(_tiny_cfg(tmp_path, 'first', 2)).train()
    ckpt = tmp_path / 'work' / 'iter_2.pth'
    saved = torch.load(ckpt, weights_only=False)['rng_state']
    assert len(saved['ranks']) == 1
    import mmengine.runner.runner as runner_mod
    load = runner_mod._load_checkpoint

    def load_to_gpu(filename, map_location=None, logger=None):
        checkpoint = load(filename, map_location='cpu', logger=logger)
        checkpoint['rng_state'] = _off_cpu(checkpoint['rng_state'])
        return checkpoint
    monkeypatch.setattr(runner_mod, '_load_checkpoint', load_to_gpu)
    monkeypatch.setattr(torch, 'set_rng_state', _strict_set_rng_state(torch.set_rng_state))
    torch.manual_seed(123)  # anything but the saved state
    cfg = _tiny_cfg(tmp_path, 'resumed', 3)
    cfg.resume, cfg.load_from = True, str(ckpt)
    Runner.from_cfg(cfg).train()
    probe = torch.load(tmp_path / 'resumed' / 'rank0.pt', weights_only=False)
    assert probe['iter'] == 3
    assert torch.equal(probe['rng'], saved['ranks'][0]['torch'])


def test_cuda_states_only_for_present_devices(monkeypatch):
    calls = []
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'device_count', lambda: 1)
    monkeypatch.setattr(torch.cuda, 'set_rng_state', lambda s, i=0: calls.append((s, i)))
    state = rng_state.capture_rng_state()
    gpu_states = [torch.full((16, ), 7, dtype=torch.uint8), torch.full((16, ), 9, dtype=torch.uint8)]
    state['cuda'] = _off_cpu(gpu_states)
    with pytest.warns(UserWarning, match='2 CUDA generator states.*1 devices'):
        rng_state.restore_rng_state(state)
    assert [i for _, i in calls] == [0]
    assert type(calls[0][0]) is torch.Tensor and torch.equal(calls[0][0], gpu_states[0])


def test_rank_state_picked_from_the_checkpoint():
    saved = dict(ranks=[dict(torch=torch.zeros(1)), dict(torch=torch.ones(1))])
    assert rng_state.state_of_rank(saved, 1, 2) is saved['ranks'][1]
    assert rng_state.state_of_rank(dict(torch=3), 1, 2) == dict(torch=3)  # older checkpoints
    with pytest.warns(UserWarning, match='saved by 2 ranks, this run has 4; rank 3 takes state 1'):
        assert rng_state.state_of_rank(saved, 3, 4) is saved['ranks'][1]
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        rng_state.state_of_rank(saved, 0, 2)


def _torchrun(cfg, work, log, *options):
    cmd = ['env', f'PYTHON={sys.executable}', f'PORT={_free_port()}', 'bash',
           os.path.join(ROOT, 'tools', 'dist_train.sh'), cfg, '2', '--work-dir', str(work),
           '--verbose']  # MMEngine's environment dump says 'Distributed training: True'
    _run(cmd + (['--cfg-options', *options] if options else []), log)
    text = open(log).read()
    assert 'runs on gloo' in text and 'Distributed training: True' in text
    return text


def _child(tmp_path, name, body):
    return write_child_config(tmp_path / name, TINY, ['pe_dense', 'tests.fixtures.tiny_task',
                                                      'tests.fixtures.dist_probe'], body)


@pytest.mark.slow
def test_two_ranks_save_and_restore_their_own_rng_states(tmp_path):
    body = ("randomness = dict(seed=0, diff_rank_seed=True)\n"
            "train_cfg = dict(max_iters={n})\n"
            "default_hooks = dict(checkpoint=dict(interval=2))\n"
            "custom_hooks = [dict(type='RNGStateHook'), "
            "dict(type='RankProbeHook', out_dir={out!r})]\n")
    work = tmp_path / 'work'
    cfg = _child(tmp_path, 'first.py', body.format(n=2, out=str(tmp_path / 'first')))
    _torchrun(cfg, work, tmp_path / 'first.log')
    saved = torch.load(work / 'iter_2.pth', weights_only=False)['rng_state']['ranks']
    assert len(saved) == 2 and not torch.equal(saved[0]['torch'], saved[1]['torch'])
    cfg = _child(tmp_path, 'resumed.py', body.format(n=3, out=str(tmp_path / 'resumed')))
    _torchrun(cfg, work, tmp_path / 'resumed.log', 'resume=True',
              f'load_from={work / "iter_2.pth"}')
    for rank in (0, 1):
        probe = torch.load(tmp_path / 'resumed' / f'rank{rank}.pt', weights_only=False)
        assert probe['iter'] == 3
        assert torch.equal(probe['rng'], saved[rank]['torch']), rank


@pytest.mark.slow
def test_nan_on_one_rank_is_skipped_by_both(tmp_path):
    out = tmp_path / 'probe'
    cfg = _child(tmp_path, 'nan.py',
                 "model = dict(type='NaNOnRankRegressor', rank=1, call=2)\n"
                 "train_cfg = dict(max_iters=4)\n"
                 "default_hooks = dict(checkpoint=dict(interval=100))\n"
                 "custom_hooks = [dict(type='NaNGuardHook', action='skip'), "
                 f"dict(type='RankProbeHook', out_dir={str(out)!r})]\n"
                 "env_cfg = dict(dist_cfg=dict(timeout=60))\n")
    text = _torchrun(cfg, tmp_path / 'work', tmp_path / 'nan.log')
    assert 'non-finite loss on another rank' in text
    for rank in (0, 1):
        probe = torch.load(out / f'rank{rank}.pt', weights_only=False)
        assert probe['iter'] == 4 and probe['skipped'] == 1, (rank, probe)
        assert probe['steps'] == [3], (rank, probe)  # 4 iterations, the same one skipped
