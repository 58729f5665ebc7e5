"""Checkpoint writes are atomic and --resume skips incomplete files."""
import os

import pytest
import torch
from mmengine.fileio import get_file_backend
from mmengine.runner.checkpoint import save_checkpoint

from pe_dense.engine.atomic_io import (AtomicLocalBackend, find_resumable_checkpoint,
                                       is_complete_checkpoint)
from tests.fixtures.global_state import checkpoint_io  # noqa: F401  (fixture)

pytestmark = pytest.mark.usefixtures('checkpoint_io')  # the atomic backend, as the tools run


def test_mmengine_uses_the_atomic_backend(tmp_path):
    assert isinstance(get_file_backend(str(tmp_path / 'x.pth')), AtomicLocalBackend)


def test_a_crash_mid_write_leaves_the_old_file_and_no_partial(tmp_path, monkeypatch):
    path = tmp_path / 'iter_2.pth'
    save_checkpoint({'state_dict': {'w': torch.ones(3)}}, str(path))
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise KeyboardInterrupt('killed while writing')

    monkeypatch.setattr(os, 'fsync', crash)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint({'state_dict': {'w': torch.zeros(3)}}, str(path))
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ['iter_2.pth']


def test_resume_picks_the_newest_complete_checkpoint(tmp_path):
    save_checkpoint({'state_dict': {}}, str(tmp_path / 'iter_4.pth'))
    save_checkpoint({'state_dict': {}}, str(tmp_path / 'iter_8.pth'))
    data = (tmp_path / 'iter_8.pth').read_bytes()
    (tmp_path / 'iter_12.pth').write_bytes(data[:len(data) // 2])  # a legacy truncated write
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_12.pth'))
    assert not is_complete_checkpoint(str(tmp_path / 'iter_12.pth'))
    assert find_resumable_checkpoint(str(tmp_path)) == str(tmp_path / 'iter_8.pth')
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_4.pth'))
    assert find_resumable_checkpoint(str(tmp_path)) == str(tmp_path / 'iter_4.pth')
    assert find_resumable_checkpoint(str(tmp_path / 'empty')) is None
