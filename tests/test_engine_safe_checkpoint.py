"""The resume allowlist: MMEngine's own objects load with weights_only=True, others are named."""
import argparse
import collections
import fractions
import os

import numpy as np
import pytest
import torch
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader

from pe_dense.engine import safe_checkpoint
from pe_dense.engine.safe_checkpoint import (UnsafeCheckpointError, history_buffer_getattr,
                                             load_local_checkpoint)
from tests.fixtures.global_state import checkpoint_io  # noqa: F401  (fixture)

pytestmark = pytest.mark.usefixtures('checkpoint_io')  # the allowlist, as the tools run


def _message_hub_like():
    buf = HistoryBuffer()
    for v in (1.0, 2.0, 3.0):
        buf.update(v)
    return dict(meta=dict(seed=np.int64(3), dtype=np.dtype('float32'), arr=np.arange(3)),
                message_hub=dict(log_scalars=collections.OrderedDict(loss=buf)),
                state_dict=collections.OrderedDict(w=torch.ones(2)))


def test_mmengine_objects_load_with_weights_only(tmp_path):
    path = tmp_path / 'ok.pth'
    torch.save(_message_hub_like(), path)
    ckpt = CheckpointLoader.load_checkpoint(str(path), map_location='cpu')
    buf = ckpt['message_hub']['log_scalars']['loss']
    assert isinstance(buf, HistoryBuffer) and buf.mean() == pytest.approx(2.0)
    assert ckpt['meta']['seed'] == 3 and ckpt['meta']['arr'].tolist() == [0, 1, 2]


@pytest.mark.parametrize('foreign', [argparse.Namespace(lr=1), fractions.Fraction(1, 3)],
                         ids=['Namespace', 'Fraction'])
def test_foreign_objects_are_refused_naming_class_and_file(tmp_path, foreign):
    path = tmp_path / 'evil.pth'
    torch.save(dict(state_dict=dict(), meta=dict(x=foreign)), path)
    with pytest.raises(UnsafeCheckpointError) as err:
        load_local_checkpoint(str(path))
    assert 'evil.pth' in str(err.value) and type(foreign).__name__ in str(err.value)


def test_getattr_is_limited_to_history_buffer_statistics():
    assert history_buffer_getattr(HistoryBuffer, 'mean') is HistoryBuffer.mean
    for obj, name in ((HistoryBuffer, '__init__'), (HistoryBuffer, '__class__'), (os, 'system')):
        with pytest.raises(UnsafeCheckpointError, match=repr(name)):
            history_buffer_getattr(obj, name)


def test_old_torch_warns_instead_of_failing_on_import(monkeypatch):
    monkeypatch.setattr(torch, '__version__', '2.3.1')
    added = []
    monkeypatch.setattr(torch.serialization, 'add_safe_globals', added.append, raising=False)
    with pytest.warns(UserWarning, match='torch >= 2.6 to resume'):
        safe_checkpoint.install()
    assert added == []
    monkeypatch.setattr(torch, '__version__', '2.14.1+cu130')
    assert safe_checkpoint.supports_named_allowlist()


class _Builtins:
    """Pickles as ``getattr(getattr, '__self__')``: the ``builtins`` module."""

    def __reduce__(self):
        return getattr, (getattr, '__self__')


class _CraftedGetattr:
    """Pickles as ``getattr(<builtins>, name)``: what a crafted file does with a general
    ``getattr`` to reach ``eval``/``__import__`` (the ``getattr(os, 'system')`` pattern)."""

    def __init__(self, owner, name):
        self.owner, self.name = owner, name

    def __reduce__(self):
        return getattr, (self.owner, self.name)


@pytest.mark.parametrize('payload', [_CraftedGetattr(_Builtins(), 'eval'),
                                     _CraftedGetattr(_Builtins(), '__import__'),
                                     _CraftedGetattr(HistoryBuffer, '__init__')],
                         ids=['builtins.eval', 'builtins.__import__', 'HistoryBuffer.__init__'])
def test_crafted_getattr_pickle_is_refused_by_every_loading_path(tmp_path, payload):
    """Through the loaders the tools use after ``enable_checkpoint_io()``: MMEngine's
    ``CheckpointLoader`` (resume / load_from) and the backbone's ``load_checkpoint_file``.
    Registering the built-in ``getattr`` in the allowlist makes these loads succeed."""
    from pe_dense.models.backbones.checkpoint import CheckpointError, load_checkpoint_file
    path = tmp_path / 'crafted.pth'
    torch.save(dict(state_dict=collections.OrderedDict(w=torch.ones(2)), meta=dict(x=payload)),
               path)
    with pytest.raises(UnsafeCheckpointError, match='crafted.pth'):
        CheckpointLoader.load_checkpoint(str(path), map_location='cpu')
    with pytest.raises(CheckpointError, match="crafted.pth"):
        load_checkpoint_file(str(path))
