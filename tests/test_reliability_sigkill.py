"""SIGKILL a training subprocess after a checkpoint, resume with --resume, get identical weights."""
import os
import signal
import subprocess
import sys
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _cfg(tmp_path):
    path = tmp_path / 'slow_tiny.py'
    path.write_text(
        f"_base_ = [{os.path.join(ROOT, 'tests', 'fixtures', 'tiny_task_cfg.py')!r}]\n"
        "custom_imports = dict(imports=['pe_dense', 'tests.fixtures.tiny_task', "
        "'tests.fuzz.slow_hook'], allow_failed_imports=False)\n"
        "custom_hooks = [dict(type='RNGStateHook'), dict(type='NaNGuardHook'), "
        "dict(type='SleepAfterIterHook', seconds=0.4)]\n")
    return str(path)


def _cmd(cfg, work, *extra):
    return [sys.executable, os.path.join(ROOT, 'tools', 'train.py'), cfg, '--work-dir', str(work),
            *extra]


def _env():
    return dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='1')


def _weights(path):
    import pe_dense  # noqa: F401  the resume allowlist
    return torch.load(path, weights_only=True)['state_dict']


def test_sigkill_mid_interval_then_resume_matches_uninterrupted(tmp_path):
    cfg = _cfg(tmp_path)
    full, killed = tmp_path / 'full', tmp_path / 'killed'
    out = subprocess.run(_cmd(cfg, full), cwd=ROOT, env=_env(), capture_output=True, text=True,
                         timeout=180)
    assert out.returncode == 0, out.stderr[-3000:]

    proc = subprocess.Popen(_cmd(cfg, killed), cwd=ROOT, env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (killed / 'iter_4.pth').exists():
        assert proc.poll() is None and time.time() < deadline, 'run ended before iter_4.pth'
        time.sleep(0.05)
    time.sleep(0.6)  # inside iterations 5..8 (0.4 s each)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert not (killed / 'iter_8.pth').exists(), 'killed too late: the run had finished'

    out = subprocess.run(_cmd(cfg, killed, '--resume'), cwd=ROOT, env=_env(),
                         capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-3000:]
    a, b = _weights(full / 'iter_8.pth'), _weights(killed / 'iter_8.pth')
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-6), k


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
