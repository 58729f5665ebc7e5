"""SIGKILL a training subprocess after a checkpoint, resume with --resume, get identical weights."""
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from pe_dense.toy import make_toy
from pe_dense.toy.images import make_images
from tests.fixtures.child_config import toy_deta_child, write_child_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SLOW_HOOKS = ("custom_hooks = [dict(type='RNGStateHook'), "
              "dict(type='SleepAfterIterHook', seconds=0.5)]\n")


def _cfg(tmp_path):
    return write_child_config(
        tmp_path / 'slow_tiny.py', os.path.join(ROOT, 'tests', 'fixtures', 'tiny_task_cfg.py'),
        ['pe_dense.engine', 'tests.fixtures.tiny_task', 'tests.fuzz.slow_hook'], evaluate=True,
        body="custom_hooks = [dict(type='RNGStateHook'), dict(type='NaNGuardHook'), "
             "dict(type='SleepAfterIterHook', seconds=0.4)]\n")


def _cmd(cfg, work, *extra):
    return [sys.executable, os.path.join(ROOT, 'tools', 'train.py'), cfg, '--work-dir', str(work),
            *extra]


def _env():
    return dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='1')


def _weights(path):
    from pe_dense.models.backbones.checkpoint import load_checkpoint_file
    return load_checkpoint_file(str(path))['state_dict']  # weights_only, MMEngine classes allowed


def _kill_and_resume(cfg, tmp_path, ready: str, next_ckpt: str, final: str, wait_s: float,
                     budget_s: float = 300):
    """Run ``cfg`` uninterrupted and, beside it, a run SIGKILLed ``wait_s`` after ``ready``
    appears (before ``next_ckpt``), then resumed; return both runs' ``final`` weights."""
    full, killed = tmp_path / 'full', tmp_path / 'killed'
    logs = {name: open(tmp_path / f'{name}.log', 'w') for name in ('full', 'killed', 'resumed')}
    whole = subprocess.Popen(_cmd(cfg, full), cwd=ROOT, env=_env(), stdout=logs['full'],
                             stderr=subprocess.STDOUT)
    proc = subprocess.Popen(_cmd(cfg, killed), cwd=ROOT, env=_env(), stdout=logs['killed'],
                            stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + budget_s
        while not (killed / ready).exists():
            assert proc.poll() is None, \
                f'run ended before {ready}: {_tail(tmp_path / "killed.log")}'
            assert time.time() < deadline, f'no {ready} after {budget_s} s'
            time.sleep(0.05)
        time.sleep(wait_s)
        assert not (killed / next_ckpt).exists(), 'killed too late: the next checkpoint exists'
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        assert not (killed / final).exists()

        resumed = subprocess.run(_cmd(cfg, killed, '--resume'), cwd=ROOT, env=_env(),
                                 stdout=logs['resumed'], stderr=subprocess.STDOUT,
                                 timeout=budget_s)
        assert resumed.returncode == 0, _tail(tmp_path / 'resumed.log')
        assert whole.wait(timeout=budget_s) == 0, _tail(tmp_path / 'full.log')
    finally:
        for p in (whole, proc):
            if p.poll() is None:
                p.kill()
        for f in logs.values():
            f.close()
    return _weights(full / final), _weights(killed / final)


def _tail(path, n=3000):
    return open(path).read()[-n:]


def _assert_same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-6), k


def test_sigkill_mid_interval_then_resume_matches_uninterrupted(tmp_path):
    a, b = _kill_and_resume(_cfg(tmp_path), tmp_path, 'iter_4.pth', 'iter_8.pth', 'iter_8.pth',
                            wait_s=0.6)  # inside iterations 5..8 (0.4 s each)
    _assert_same(a, b)


@pytest.mark.slow
def test_toy_deta_sigkill_after_an_epoch_checkpoint_resumes_to_the_same_weights(tmp_path):
    """Toy DETA (random flips drawn from numpy's global RNG): killed inside epoch 2 of 3."""
    cfg = toy_deta_child(
        tmp_path, 'deta_kill.py', ['tests.fuzz.slow_hook'], loader='batch_size=4, ',
        body="train_cfg = dict(max_epochs=3, val_interval=100)\n"
             "default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=-1))\n" + SLOW_HOOKS)
    a, b = _kill_and_resume(cfg, tmp_path, 'epoch_1.pth', 'epoch_2.pth', 'epoch_3.pth',
                            wait_s=1.0)  # 4 iterations an epoch, each >= 0.5 s
    _assert_same(a, b)


@pytest.mark.slow
def test_toy_deta_sigkill_after_a_mid_epoch_checkpoint_resumes_to_the_same_weights(tmp_path):
    """Iteration checkpoints inside epochs (ResumableEpochBasedTrainLoop): killed after the
    checkpoint in the middle of epoch 2, the resumed run trains only that epoch's remaining
    batches, the ones the uninterrupted run saw."""
    cfg = toy_deta_child(
        tmp_path, 'deta_mid_epoch.py', ['tests.fuzz.slow_hook'], loader='batch_size=4, ',
        body="train_cfg = dict(type='ResumableEpochBasedTrainLoop', max_epochs=2, "
             "val_interval=100)\n"
             "default_hooks = dict(checkpoint=dict(interval=2, by_epoch=False, "
             "max_keep_ckpts=-1), logger=dict(interval=1))\n" + SLOW_HOOKS)
    a, b = _kill_and_resume(cfg, tmp_path, 'iter_6.pth', 'iter_8.pth', 'iter_8.pth',
                            wait_s=0.3)  # 4 iterations an epoch: iter_6 is inside epoch 2
    _assert_same(a, b)
    log = open(tmp_path / 'resumed.log').read()
    assert 'Epoch(train) [2][3/4]' in log and 'Epoch(train) [2][2/4]' not in log


@pytest.mark.slow
def test_alignment_sigkill_mid_interval_resumes_to_the_same_weights(tmp_path):
    """Toy spatial alignment (SAM 2.1-T targets computed online, 75% random token masks,
    drop path, random flips; infinite sampler): killed between iteration checkpoints."""
    data = tmp_path / 'toy_images'
    make_images(str(data), num_train=8, num_val=2, size=128, progress_bar=False)
    cfg = write_child_config(
        tmp_path / 'align_kill.py', os.path.join(ROOT, 'configs', 'align', 'toy_align_tiny.py'),
        ['pe_dense.align', 'tests.fuzz.slow_hook'], evaluate=True,
        body="model = dict(sam_teacher=dict(image_size=128))\n"
             "train_pipeline = [dict(type='LoadAlignImage'), dict(type='AlignResize', size=128), "
             "dict(type='AlignRandomFlip', prob=0.5), dict(type='PackAlignInputs')]\n"
             f"train_dataloader = dict(batch_size=2, dataset=dict(data_root={str(data)!r}, "
             "pipeline=train_pipeline))\n"
             "train_cfg = dict(max_iters=12)\n"
             "default_hooks = dict(checkpoint=dict(interval=4, max_keep_ckpts=-1), "
             "logger=dict(interval=2))\n"
             "custom_hooks = [dict(type='ExportStudentHook'), dict(type='RNGStateHook'), "
             "dict(type='SleepAfterIterHook', seconds=0.5)]\n")
    a, b = _kill_and_resume(cfg, tmp_path, 'iter_4.pth', 'iter_8.pth', 'iter_12.pth',
                            wait_s=1.0)
    _assert_same(a, b)


@pytest.mark.slow
def test_contrastive_sigkill_mid_interval_resumes_to_the_same_weights(tmp_path):
    """Toy PE-Core CLIP (random resized crops from Python's RNG, the mask
    regulariser from torch's, LAMB, progressive-resolution hook): killed between checkpoints."""
    from mmengine.config import Config
    toy = os.path.join(ROOT, 'configs', 'core', 'pe_core_toy.py')
    size = Config.fromfile(toy).img_size
    data = tmp_path / 'toy_imagetext'
    make_toy('imagetext', str(data), num_train=32, num_val=8, size=size, progress_bar=False)
    cfg = write_child_config(
        tmp_path / 'clip_kill.py', toy, ['pe_dense.core', 'tests.fuzz.slow_hook'],
        body=f"train_dataloader = dict(batch_size=16, dataset=dict(data_root={str(data)!r}))\n"
             "train_cfg = dict(max_iters=12, val_interval=100)\n"
             "param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, "
             "begin=0, end=12)]\n"
             "default_hooks = dict(checkpoint=dict(interval=4, max_keep_ckpts=-1), "
             "logger=dict(interval=2))\n"
             f"custom_hooks = [dict(type='ProgressiveResolutionHook', schedule=[(0, {size})]), "
             "dict(type='RNGStateHook'), dict(type='SleepAfterIterHook', seconds=0.5)]\n")
    a, b = _kill_and_resume(cfg, tmp_path, 'iter_4.pth', 'iter_8.pth', 'iter_12.pth',
                            wait_s=1.0)
    _assert_same(a, b)


@pytest.mark.slow
def test_segmentation_sigkill_mid_interval_resumes_to_the_same_weights(tmp_path):
    """ADE20k linear probe (the real config shrunk as in test_seg_ade20k_probe: mmseg's random
    resize, crop and flip from NumPy's RNG, BatchNorm head) on the toy ADE20k."""
    from pe_dense.toy import make_ade20k
    from tests.test_seg_ade20k_probe import toy_cfg
    data = tmp_path / 'toy_ade'
    make_ade20k(str(data), num_train=8, num_val=2, progress_bar=False)
    cfg = toy_cfg(str(data), str(tmp_path / 'unused'), iters=12)
    cfg.custom_imports = dict(imports=list(cfg.custom_imports.imports) + ['tests.fuzz.slow_hook'],
                              allow_failed_imports=False)
    cfg.custom_hooks = list(cfg.get('custom_hooks', [])) + [
        dict(type='SleepAfterIterHook', seconds=0.5)]
    cfg.test_dataloader = cfg.test_cfg = cfg.test_evaluator = None
    cfg.param_scheduler = [dict(type='PolyLR', eta_min=0.0, power=1.0, by_epoch=False, begin=0,
                                end=12)]
    cfg.default_hooks.checkpoint.update(interval=4, max_keep_ckpts=-1)
    cfg.default_hooks.logger.interval = 2
    cfg.visualizer.name = 'visualizer'
    cfg.pop('work_dir')
    path = tmp_path / 'seg_kill.py'
    cfg.dump(str(path))
    a, b = _kill_and_resume(str(path), tmp_path, 'iter_4.pth', 'iter_8.pth', 'iter_12.pth',
                            wait_s=1.0)
    _assert_same(a, b)


def test_same_seed_same_weights(tmp_path):
    """Determinism on CPU: two fresh runs with the same seed and config give the same weights."""
    fix = os.path.join(ROOT, 'tests', 'fixtures', 'tiny_task_cfg.py')
    for name in ('a', 'b'):
        out = subprocess.run(_cmd(fix, tmp_path / name), cwd=ROOT, env=_env(),
                             capture_output=True, text=True, timeout=180)
        assert out.returncode == 0, out.stderr[-3000:]
    a, b = _weights(tmp_path / 'a' / 'iter_8.pth'), _weights(tmp_path / 'b' / 'iter_8.pth')
    for k in a:
        assert torch.equal(a[k], b[k]), k
