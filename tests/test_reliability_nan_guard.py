"""NaNGuardHook: a non-finite loss stops the run naming iteration, terms and files, or is skipped."""
import copy

import pytest
import torch
from mmengine.registry import MODELS
from mmengine.runner import Runner
from mmengine.structures import BaseDataElement

import tests.fixtures.tiny_task  # noqa: F401  registers TinyRegressor/TinyRegressionSet
from pe_dense.engine.hooks import NaNGuardHook, NonFiniteLossError
from pe_dense.engine.hooks.nan_guard import batch_file_names
from tests.fixtures.tiny_task import TinyRegressor


@MODELS.register_module(force=True)
class NaNAtRegressor(TinyRegressor):
    """Loss term 'loss_aux' is NaN on the forward calls listed in ``bad``."""

    def __init__(self, bad=(2,), **kw):
        super().__init__(**kw)
        self.bad, self.calls = set(bad), 0

    def forward(self, inputs, targets=None, mode='loss', **unused):
        out = super().forward(inputs, targets, mode)
        if mode == 'loss':
            self.calls += 1
            nan = self.calls in self.bad
            out['loss_aux'] = out['loss'] * (float('nan') if nan else 0.0)
        return out


def _cfg(tmp_path, action, bad):
    from mmengine.config import Config
    cfg = Config.fromfile('tests/fixtures/tiny_task_cfg.py')
    cfg.work_dir = str(tmp_path)
    cfg.model = dict(type='NaNAtRegressor', bad=bad)
    cfg.train_cfg.max_iters = 4
    cfg.default_hooks.checkpoint.interval = 100
    cfg.visualizer = dict(type='Visualizer', vis_backends=[dict(type='LocalVisBackend')])
    cfg.custom_hooks = [dict(type='NaNGuardHook', action=action)]
    cfg.experiment_name = f'nan_{action}_{tmp_path.name}'
    return cfg


def test_raise_names_iteration_terms_and_files(tmp_path):
    runner = Runner.from_cfg(_cfg(tmp_path, 'raise', bad=(3,)))
    with pytest.raises(NonFiniteLossError, match=r'iteration 2: .*loss_aux=nan'):
        runner.train()
    w = [p for p in runner.model.parameters()]
    assert all(torch.isfinite(p).all() for p in w)


def test_skip_leaves_weights_and_optimizer_untouched(tmp_path):
    runner = Runner.from_cfg(_cfg(tmp_path, 'skip', bad=(2, 3)))
    runner.train()
    hook = [h for h in runner.hooks if isinstance(h, NaNGuardHook)][0]
    assert hook.skipped == 2
    state = runner.optim_wrapper.optimizer.state
    steps = {float(s['step']) for s in state.values()}
    assert steps == {2.0}, steps  # 4 iterations, 2 skipped: AdamW stepped twice
    assert all(torch.isfinite(p).all() for p in runner.model.parameters())


def test_skip_equals_training_without_the_bad_batches_weights_wise(tmp_path):
    """A skipped step changes nothing: one iteration, NaN -> weights equal the initial ones."""
    cfg = _cfg(tmp_path, 'skip', bad=(1,))
    cfg.train_cfg.max_iters = 1
    runner = Runner.from_cfg(cfg)
    before = copy.deepcopy(runner.model.state_dict())
    runner.train()
    for k, v in runner.model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_file_names_come_from_metainfo_and_bad_action_is_refused():
    s = BaseDataElement(metainfo=dict(img_path='/data/a.jpg'))
    assert batch_file_names(dict(data_samples=[s, dict(filename='b.png')])) == [
        '/data/a.jpg', 'b.png']
    assert batch_file_names(dict(inputs=[1])) == []
    with pytest.raises(ValueError, match='action'):
        NaNGuardHook(action='ignore')
