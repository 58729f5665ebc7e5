"""torchrun with 2 CPU processes (gloo) gives the single-process result on the same global batch.

The toy DETA runs through tools/dist_train.sh; every iteration's loss terms, averaged over the
ranks, must equal the single-process run with twice the per-process batch. Random flips are off
(each rank would draw its own coins) so both runs see the same pictures.
"""
import json
import os
import socket
import subprocess
import sys

import pytest
import torch

from tests.fixtures.child_config import toy_clip_child, toy_deta_equality_child

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOSS_RTOL = 1e-5  # float sums in another order (gradient all-reduce, split batches)
WEIGHT_ATOL = 1e-4


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _env():
    return dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='1')


def _run(cmd, log, timeout=600):
    with open(log, 'w') as f:
        out = subprocess.run(cmd, cwd=ROOT, env=_env(), stdout=f, stderr=subprocess.STDOUT,
                             timeout=timeout)
    assert out.returncode == 0, open(log).read()[-4000:]


def _single_and_torchrun(cfg, tmp_path, global_batch):
    work1, work2 = tmp_path / 'single', tmp_path / 'ddp'
    _run([sys.executable, os.path.join(ROOT, 'tools', 'train.py'), cfg, '--work-dir', str(work1),
          '--cfg-options', f'train_dataloader.batch_size={global_batch}',
          f'custom_hooks.1.out_file={work1}/losses.json'], tmp_path / 'single.log')
    env_script = ['env', f'PYTHON={sys.executable}', f'PORT={_free_port()}', 'bash',
                  os.path.join(ROOT, 'tools', 'dist_train.sh')]
    _run(env_script + [cfg, '2', '--work-dir', str(work2), '--verbose', '--cfg-options',
                       f'train_dataloader.batch_size={global_batch // 2}',
                       f'custom_hooks.1.out_file={work2}/losses.json'], tmp_path / 'ddp.log')
    log = open(tmp_path / 'ddp.log').read()
    assert 'runs on gloo' in log and 'Distributed training: True' in log
    return work1, work2


def _compare_losses(work1, work2, iters):
    a = json.load(open(work1 / 'losses.json'))
    b = json.load(open(work2 / 'losses.json'))
    assert len(a) == len(b) == iters
    for ra, rb in zip(a, b):
        assert ra.keys() == rb.keys()
        for k in ra:
            assert rb[k] == pytest.approx(ra[k], rel=LOSS_RTOL, abs=1e-6), (ra['iter'], k)
    return a, b


def _compare_weights(path1, path2):
    from pe_dense.models.backbones.checkpoint import load_checkpoint_file
    a = load_checkpoint_file(str(path1))['state_dict']  # weights_only, MMEngine classes allowed
    b = load_checkpoint_file(str(path2))['state_dict']
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(b[k], a[k], atol=WEIGHT_ATOL, rtol=0, msg=k)


@pytest.mark.slow
def test_toy_deta_torchrun_two_processes_equals_one(tmp_path):
    cfg = toy_deta_equality_child(tmp_path, 'deta_ddp.py')
    work1, work2 = _single_and_torchrun(cfg, tmp_path, global_batch=4)
    a, _ = _compare_losses(work1, work2, iters=8)
    assert a[-1]['loss'] < a[0]['loss']  # it trains
    _compare_weights(work1 / 'epoch_2.pth', work2 / 'epoch_2.pth')


@pytest.mark.slow
def test_toy_clip_torchrun_two_processes_equals_one(tmp_path):
    """Contrastive loss over features gathered across ranks: each rank's rows against every
    rank's columns; averaged over the ranks it is the single-process loss (mask regulariser off:
    its masks would be drawn per rank)."""
    cfg = toy_clip_child(tmp_path, 'clip_ddp.py')
    work1, work2 = _single_and_torchrun(cfg, tmp_path, global_batch=16)
    a, _ = _compare_losses(work1, work2, iters=6)
    assert a[-1]['loss_clip'] < a[0]['loss_clip']  # it trains
    _compare_weights(work1 / 'iter_6.pth', work2 / 'iter_6.pth')
