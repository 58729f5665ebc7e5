"""FSDP2 (pe_dense/engine/fsdp2.py) under torchrun with 2 CPU processes (gloo) gives the
single-process result on the same global batch, and its checkpoints resume in one process.

Same protocol as tests/test_reliability_torchrun.py (whose helpers run the processes): every
iteration's loss terms averaged over the ranks against a one-process run with twice the batch;
random draws that would differ per rank (flips, token masks, drop path) are off.
"""
import json
import os
import sys

import pytest
import torch

from pe_dense.toy.images import make_images
from tests.fixtures.child_config import (toy_clip_child, toy_deta_equality_child,
                                         write_child_config)
from tests.test_reliability_torchrun import (LOSS_RTOL, ROOT, WEIGHT_ATOL, _compare_losses,
                                             _free_port, _run)

LAMB_RTOL = 1e-4  # open: LAMB under FSDP2 drifts from one process (7.6e-6 relative after the
# first step, 5.7e-5 by iteration 6) where AdamW on the same sharded CLIP agrees to 2e-7; its
# global gradient norm equals the unsharded one, the cause is not found (docs/distributed.md)
FSDP = ("runner_type = 'FlexibleRunner'\n"
        "strategy = dict(type='FullyShardStrategy', unit_types=['ResidualAttentionBlock'])\n")


def test_optimizer_layouts_round_trip_to_torchs_own():
    """The name-keyed full optimizer state (torch.distributed.checkpoint) converted to integer
    ids is exactly ``optimizer.state_dict()`` of the unsharded model, and back."""
    from torch.distributed.checkpoint.state_dict import (StateDictOptions,
                                                         get_optimizer_state_dict)
    from pe_dense.engine.fsdp2 import _param_names, fqn_to_ids, ids_to_fqn
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.ReLU(), torch.nn.Linear(5, 2))
    model.scale = torch.nn.Parameter(torch.tensor(1.5))
    groups = [dict(params=[model[2].weight, model.scale], weight_decay=0.),
              dict(params=[model[0].weight, model[0].bias, model[2].bias])]
    optim = torch.optim.AdamW(groups, lr=1e-2)
    (model(torch.randn(7, 3)) * model.scale).sum().backward()
    optim.step()
    by_name = get_optimizer_state_dict(model, optim,
                                       options=StateDictOptions(full_state_dict=True))
    assert by_name['param_groups'][0]['params'] == ['2.weight', 'scale']
    ids, own = fqn_to_ids(by_name), optim.state_dict()
    assert [g['params'] for g in ids['param_groups']] == [[0, 1], [2, 3, 4]]
    assert ids['param_groups'] == own['param_groups']
    assert ids['state'].keys() == own['state'].keys()
    for i in own['state']:
        for k in own['state'][i]:
            torch.testing.assert_close(ids['state'][i][k], own['state'][i][k])
    back = ids_to_fqn(own, _param_names(model, optim))
    assert back['param_groups'] == by_name['param_groups']
    assert back['state'].keys() == by_name['state'].keys()


def _align_cfg(tmp_path, name, body=''):
    """The toy alignment (student PE + frozen PE teacher + random SAM 2.1-T at 128 px), with
    token masks, drop path and flips off so that the ranks draw nothing."""
    data = tmp_path / 'toy_images'
    if not data.exists():
        make_images(str(data), num_train=16, num_val=2, size=128, progress_bar=False)
    return write_child_config(
        tmp_path / name, os.path.join(ROOT, 'configs', 'align', 'toy_align_tiny.py'),
        ['pe_dense.align', 'tests.fixtures.global_loss_hook'],
        body="model = dict(mask_ratio=0.0, student=dict(drop_path_rate=0.0), "
             "sam_teacher=dict(image_size=128))\n"
             "train_pipeline = [dict(type='LoadAlignImage'), dict(type='AlignResize', size=128), "
             "dict(type='PackAlignInputs')]\n"
             f"train_dataloader = dict(dataset=dict(data_root={str(data)!r}, "
             "pipeline=train_pipeline))\n"
             "train_cfg = dict(max_iters=6)\n"
             "param_scheduler = [dict(type='LinearLR', start_factor=0.5, by_epoch=False, "
             "begin=0, end=6)]\n"
             "default_hooks = dict(checkpoint=dict(interval=3, max_keep_ckpts=-1), "
             "logger=dict(interval=1))\n"
             "custom_hooks = [dict(type='RNGStateHook'), "
             "dict(type='GlobalLossRecordHook', out_file='losses.json')]\n" + body)


def _train(cfg, work, log, batch, *options, procs=1):
    """tools/train.py, or tools/dist_train.sh with ``procs`` gloo processes (free port)."""
    head = ([sys.executable, os.path.join(ROOT, 'tools', 'train.py'), cfg] if procs == 1 else
            ['env', f'PYTHON={sys.executable}', f'PORT={_free_port()}', 'bash',
             os.path.join(ROOT, 'tools', 'dist_train.sh'), cfg, str(procs), '--verbose'])
    _run(head + ['--work-dir', str(work), *options, '--cfg-options',
                 f'train_dataloader.batch_size={batch}',
                 f'custom_hooks.1.out_file={work}/losses.json'], log)
    return open(log).read()


def _weights(path):
    from pe_dense.models.backbones.checkpoint import load_checkpoint_file
    return load_checkpoint_file(str(path))  # weights_only, MMEngine classes allowed


def _assert_same_checkpoint(path1, path2, atol=WEIGHT_ATOL):
    """Same weights and the same AdamW moments, parameter by parameter (torch's id layout);
    ``path2`` may hold zero moments for parameters without a state in ``path1``."""
    a, b = _weights(path1), _weights(path2)
    assert a['state_dict'].keys() == b['state_dict'].keys()
    for k in a['state_dict']:
        torch.testing.assert_close(b['state_dict'][k], a['state_dict'][k], atol=atol, rtol=0,
                                   msg=k)
    oa, ob = a['optimizer'], b['optimizer']
    assert [g['params'] for g in oa['param_groups']] == [g['params'] for g in ob['param_groups']]
    assert oa['state'] and set(oa['state']) <= set(ob['state'])
    for i in set(ob['state']) - set(oa['state']):  # a sharded load gives every parameter a
        # state, zero for one that never had a gradient (the mask token when nothing is masked)
        assert not ob['state'][i]['exp_avg'].any() and not ob['state'][i]['exp_avg_sq'].any()
    for i in oa['state']:
        for name in ('exp_avg', 'exp_avg_sq'):
            torch.testing.assert_close(ob['state'][i][name], oa['state'][i][name],
                                       atol=atol, rtol=0, msg=(i, name))


@pytest.mark.slow
def test_toy_alignment_fsdp_two_processes_equals_one_and_resumes_in_one(tmp_path):
    """The reference is the same config in one process (FlexibleRunner, no sharding): MMEngine's
    FlexibleRunner builds the model after the dataloaders, so its random init is not Runner's.
    The FSDP checkpoint of iteration 3 resumed by plain Runner (the config without the
    strategy) in one process, and the one-process checkpoint resumed by 2 sharded processes,
    must continue as the unsharded run did."""
    plain = _align_cfg(tmp_path, 'align.py')
    fsdp = _align_cfg(tmp_path, 'align_fsdp.py', FSDP)
    work1, work2, work3 = tmp_path / 'single', tmp_path / 'fsdp', tmp_path / 'resumed'
    log = _train(fsdp, work1, tmp_path / 'single.log', 4)
    assert 'one process, no sharding' in log
    log = _train(fsdp, work2, tmp_path / 'fsdp.log', 2, procs=2)
    assert 'runs on gloo' in log and 'Distributed training: True' in log
    assert 'FSDP2: 8 units' in log  # 4 student + 4 teacher PE blocks, each its own unit
    a, _ = _compare_losses(work1, work2, iters=6)
    assert a[-1]['loss'] < a[0]['loss']  # it trains
    _assert_same_checkpoint(work1 / 'iter_6.pth', work2 / 'iter_6.pth')
    _train(plain, work3, tmp_path / 'resumed.log', 4, '--resume', str(work2 / 'iter_3.pth'))
    # and the other way: the one-process checkpoint of iteration 3 resumed sharded
    work4 = tmp_path / 'resumed_fsdp'
    _train(fsdp, work4, tmp_path / 'resumed_fsdp.log', 2, '--resume', str(work1 / 'iter_3.pth'),
           procs=2)
    for work in (work3, work4):
        resumed = json.load(open(work / 'losses.json'))
        assert [r['iter'] for r in resumed] == [4, 5, 6]
        for ra, rb in zip(a[3:], resumed):
            for k in ra:
                assert rb[k] == pytest.approx(ra[k], rel=LOSS_RTOL, abs=1e-6), (ra['iter'], k)
        _assert_same_checkpoint(work1 / 'iter_6.pth', work / 'iter_6.pth')


@pytest.mark.slow
def test_toy_deta_fsdp_two_processes_equals_one(tmp_path):
    cfg = toy_deta_equality_child(tmp_path, 'deta_fsdp.py', FSDP)
    work1, work2 = tmp_path / 'single', tmp_path / 'fsdp'
    _train(cfg, work1, tmp_path / 'single.log', 4)
    log = _train(cfg, work2, tmp_path / 'fsdp.log', 2, procs=2)
    assert 'FSDP2: 4 units' in log and 'Distributed training: True' in log
    a, _ = _compare_losses(work1, work2, iters=8)
    assert a[-1]['loss'] < a[0]['loss']  # it trains
    _assert_same_checkpoint(work1 / 'epoch_2.pth', work2 / 'epoch_2.pth')


@pytest.mark.slow
def test_toy_clip_with_lamb_fsdp_two_processes_equals_one(tmp_path):
    """PE-Core's toy CLIP: timm's LAMB with its global gradient-norm clip, and a 0-d
    ``logit_scale`` kept replicated beside the sharded vision blocks (the text tower's blocks are
    another class and go with the root)."""
    cfg = toy_clip_child(tmp_path, 'clip_fsdp.py', FSDP)
    work1, work2 = tmp_path / 'single', tmp_path / 'fsdp'
    _train(cfg, work1, tmp_path / 'single.log', 16)
    log = _train(cfg, work2, tmp_path / 'fsdp.log', 8, procs=2)
    assert 'FSDP2: 3 units' in log
    a = json.load(open(work1 / 'losses.json'))
    b = json.load(open(work2 / 'losses.json'))
    assert len(a) == len(b) == 6 and a[-1]['loss_clip'] < a[0]['loss_clip']  # it trains
    for ra, rb in zip(a, b):
        for k in ra:
            assert rb[k] == pytest.approx(ra[k], rel=LAMB_RTOL, abs=1e-6), (ra['iter'], k)
    wa, wb = _weights(work1 / 'iter_6.pth'), _weights(work2 / 'iter_6.pth')
    assert wa['state_dict'].keys() == wb['state_dict'].keys()
    assert wb['state_dict']['logit_scale'].shape == ()
    for k in wa['state_dict']:
        torch.testing.assert_close(wb['state_dict'][k], wa['state_dict'][k], atol=WEIGHT_ATOL,
                                   rtol=0, msg=k)
