"""ProgressiveResolutionHook changes the training input size at the scheduled iterations, in both
'preprocessor' and 'pipeline' mode, inside a real MMEngine Runner."""
import json

import cv2
import numpy as np
import pytest
import torch
from mmengine.model import BaseModel
from mmengine.registry import MODELS, OPTIMIZERS
from mmengine.runner import Runner

import pe_dense.all  # noqa: F401  registers every component
from pe_dense.engine.hooks import ProgressiveResolutionHook


@MODELS.register_module()
class _SizeRecorder(BaseModel):
    """Records the input size of every training batch."""

    def __init__(self, data_preprocessor=None):
        super().__init__(data_preprocessor=data_preprocessor)
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.sizes = []

    def forward(self, inputs, data_samples=None, mode='loss'):
        self.sizes.append(tuple(inputs.shape[-2:]))
        return dict(loss=self.w.sum() * 0 + inputs.float().mean() * self.w.sum())


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp('prog')
    rows = []
    for i in range(4):
        cv2.imwrite(str(root / f'{i}.jpg'), np.full((40, 40, 3), 60 * i, np.uint8))
        rows.append(json.dumps(dict(image=f'{i}.jpg', caption=f'picture {i}')))
    (root / 'train.jsonl').write_text('\n'.join(rows))
    return root


def _runner(root, tmp_path, target):
    pipeline = [dict(type='ClipLoadImage'), dict(type='ClipResize', scale=40),
                dict(type='PackClipInputs')]
    return Runner(
        model=dict(type='_SizeRecorder', data_preprocessor=dict(type='ClipDataPreprocessor')),
        work_dir=str(tmp_path),
        train_dataloader=dict(batch_size=2, num_workers=0,
                              sampler=dict(type='InfiniteSampler', shuffle=False),
                              collate_fn=dict(type='default_collate'),
                              dataset=dict(type='ImageTextDataset', data_root=str(root),
                                           ann_file='train.jsonl', pipeline=pipeline)),
        optim_wrapper=dict(optimizer=dict(type='Lamb', lr=1e-3)),
        train_cfg=dict(by_epoch=False, max_iters=7),
        custom_hooks=[dict(type='ProgressiveResolutionHook', target=target,
                           schedule=[(0, 16), (2, 24), (5, 32)])],
        default_hooks=dict(checkpoint=None, logger=dict(type='LoggerHook', interval=100)),
        randomness=dict(seed=0))


@pytest.mark.parametrize('target', ['preprocessor', 'pipeline'])
def test_size_changes_at_scheduled_iterations(data_dir, tmp_path, target):
    runner = _runner(data_dir, tmp_path, target)
    runner.train()
    sizes = [s[0] for s in runner.model.sizes]
    assert sizes == [16, 16, 24, 24, 24, 32, 32]
    assert OPTIMIZERS.get('Lamb').__module__.startswith('timm')


def test_pipeline_mode_refuses_worker_processes(data_dir, tmp_path):
    runner = _runner(data_dir, tmp_path, 'pipeline')
    runner._train_dataloader['num_workers'] = 1
    with pytest.raises(RuntimeError, match='num_workers=0'):
        runner.train()


def test_schedule_validation():
    hook = ProgressiveResolutionHook([(10, 154), (0, 98), (30, 224)])
    assert [hook.size_at(i) for i in (0, 9, 10, 29, 30, 10**6)] == [98, 98, 154, 154, 224, 224]
    with pytest.raises(ValueError, match='start at iteration 0'):
        ProgressiveResolutionHook([(5, 98)])
    with pytest.raises(ValueError, match='target'):
        ProgressiveResolutionHook([(0, 98)], target='model')
