"""Checkpoint writes are atomic and --resume skips incomplete files."""
import errno
import os
import stat

import pytest
import torch
from mmengine.fileio import get_file_backend
from mmengine.runner.checkpoint import save_checkpoint

from pe_dense.engine.atomic_io import (AtomicLocalBackend, AtomicWriteError,
                                       find_resumable_checkpoint, is_complete_checkpoint)
from pe_dense.models.backbones.checkpoint import save_state_dict
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


def _no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_disk_full_names_the_file_keeps_the_previous_checkpoint_and_says_how_to_resume(
        tmp_path, monkeypatch):
    save_checkpoint({'state_dict': {'w': torch.ones(3)}}, str(tmp_path / 'epoch_1.pth'))
    before = (tmp_path / 'epoch_1.pth').read_bytes()
    monkeypatch.setattr(os, 'fsync', _no_space)
    target = str(tmp_path / 'epoch_2.pth')
    with pytest.raises(AtomicWriteError) as info:
        save_checkpoint({'state_dict': {'w': torch.zeros(3)}}, target)
    msg = str(info.value)
    assert info.value.errno == errno.ENOSPC
    assert target in msg and 'No space left on device' in msg
    assert f'previous checkpoint {tmp_path / "epoch_1.pth"} is intact' in msg
    assert '--resume' in msg
    assert sorted(os.listdir(tmp_path)) == ['epoch_1.pth']  # no temporary left behind
    assert (tmp_path / 'epoch_1.pth').read_bytes() == before


def test_other_files_that_cannot_be_written_are_named(tmp_path, monkeypatch):
    monkeypatch.setattr(os, 'fsync', _no_space)
    with pytest.raises(AtomicWriteError, match=r'could not write .*w\.safetensors: No space'):
        save_state_dict({'w': torch.ones(2)}, str(tmp_path / 'w.safetensors'))
    assert os.listdir(tmp_path) == []


def test_resume_logs_the_corrupt_newest_checkpoint_it_skips(tmp_path, capsys):
    save_checkpoint({'state_dict': {}}, str(tmp_path / 'epoch_1.pth'))
    (tmp_path / 'epoch_2.pth').write_bytes(b'PK\x03\x04 half a checkpoint')
    assert find_resumable_checkpoint(str(tmp_path)) == str(tmp_path / 'epoch_1.pth')
    out = capsys.readouterr().out
    assert f'skipped {tmp_path / "epoch_2.pth"}: not a complete zip archive' in out
    assert 'epoch_1.pth' not in out.replace(str(tmp_path / 'epoch_1.pth'), '')


@pytest.mark.parametrize('umask', [0o022, 0o027])
def test_written_files_follow_the_umask_like_open(tmp_path, umask):
    from pe_dense.datasets.sam_target_cache import SAMTargetCache
    old = os.umask(umask)
    try:
        with open(tmp_path / 'plain.txt', 'w'):  # the reference: a normal open()
            pass
        save_checkpoint({'state_dict': {}}, str(tmp_path / 'epoch_1.pth'))
        save_state_dict({'w': torch.ones(2)}, str(tmp_path / 'w.safetensors'))
        save_state_dict({'w': torch.ones(2)}, str(tmp_path / 'w.pth'))
        SAMTargetCache(str(tmp_path / 'sam')).save('img', torch.ones(1, 2, 3))
    finally:
        os.umask(old)
    expected = 0o666 & ~umask
    assert stat.S_IMODE(os.stat(tmp_path / 'plain.txt').st_mode) == expected
    for name in ('epoch_1.pth', 'w.safetensors', 'w.pth', 'sam/img.pt'):
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == expected, name


def test_a_replaced_file_keeps_its_mode(tmp_path):
    path = tmp_path / 'w.pth'
    save_state_dict({'w': torch.ones(2)}, str(path))
    os.chmod(path, 0o640)
    save_state_dict({'w': torch.zeros(2)}, str(path))
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
