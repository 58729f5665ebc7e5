"""The tools print progress and results, not MMEngine's set-up dump (``--verbose`` restores it).

Run as a user would, in a fresh process: tools/test.py on the toy DETA with a checkpoint of
the untrained model (the output before the COCO table is the same whatever the weights).
"""
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

import pe_dense.det  # noqa: F401  registers DETA and the toy data pieces
from pe_dense.toy import make_coco

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TOY_CFG = osp.join(ROOT, 'configs', 'demo', 'pe_deta_toy.py')
TABLE = 'Average Precision  (AP) @[ IoU=0.50:0.95'


@pytest.fixture(scope='module')
def toy_run(tmp_path_factory):
    """A work folder holding data/toy_coco (the config's data_root) and an untrained ckpt."""
    work = tmp_path_factory.mktemp('quiet')
    make_coco(str(work / 'data' / 'toy_coco'), num_train=2, num_val=3, size=96,
              progress_bar=False)
    init_default_scope('mmdet')
    from mmdet.registry import MODELS
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(TOY_CFG).model)
    ckpt = str(work / 'untrained.pth')
    torch.save(dict(state_dict=model.state_dict(), meta={}), ckpt)
    return work, ckpt


def run_test_tool(work, ckpt, *extra):
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='1')
    proc = subprocess.run([sys.executable, osp.join(ROOT, 'tools', 'test.py'), TOY_CFG, ckpt,
                           '--work-dir', str(work / 'w'), *extra], cwd=work, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = (proc.stdout + proc.stderr).splitlines()  # both streams reach the user's terminal
    assert any(TABLE in ln for ln in lines), proc.stdout[-2000:]
    return lines


@pytest.mark.slow
def test_tools_test_prints_under_60_lines_before_the_ap_table(toy_run):
    work, ckpt = toy_run
    lines = run_test_tool(work, ckpt)
    before = next(i for i, ln in enumerate(lines) if TABLE in ln)
    text = '\n'.join(lines)
    assert before < 60, '\n'.join(lines[:before])
    for dump in ('Config:', 'System environment', 'Hooks will be executed', 'Warning',
                 'Failed to search registry', 'DeprecationWarning', 'torch.meshgrid'):
        assert dump not in text, dump
    assert "{'coco/bbox_mAP': " in text  # the result line
    # the log file still holds the run (progress and metrics)
    logs = [osp.join(r, f) for r, _, fs in os.walk(work / 'w') for f in fs if f.endswith('.log')]
    assert logs and 'coco/bbox_mAP' in open(logs[0]).read()

    verbose = run_test_tool(work, ckpt, '--verbose')
    verbose_text = '\n'.join(verbose)
    assert 'Config:' in verbose_text and 'Hooks will be executed' in verbose_text
    assert next(i for i, ln in enumerate(verbose) if TABLE in ln) > before + 100
