"""Crash-safe local writes for MMEngine: a killed run never leaves a half-written checkpoint.

MMEngine writes checkpoints through the file backend's ``put``; the stock local backend opens
the final path and writes into it, so a crash mid-write leaves a truncated file that a later
``--resume`` picks up. Here every local write goes to a temporary file in the same folder,
is flushed to disk and then renamed over the final name (atomic on POSIX).
"""
import glob
import os
import os.path as osp
import re
import tempfile
import zipfile
from typing import Optional, Union

from mmengine.fileio.backends import LocalBackend, register_backend


def atomic_write(data: Union[bytes, str], path: str, encoding: str = 'utf-8') -> None:
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=osp.basename(path) + '.', suffix='.tmp',
                               dir=osp.dirname(osp.abspath(path)))
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data.encode(encoding) if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


class AtomicLocalBackend(LocalBackend):
    """MMEngine's local backend with write-to-temp-then-rename."""

    def put(self, obj: bytes, filepath) -> None:
        atomic_write(obj, str(filepath))

    def put_text(self, obj: str, filepath, encoding: str = 'utf-8') -> None:
        atomic_write(obj, str(filepath), encoding)


def install() -> None:
    register_backend('local', AtomicLocalBackend, force=True, prefixes='')


def is_complete_checkpoint(path: str) -> bool:
    """A torch zip checkpoint whose central directory and pickle are both there."""
    try:
        with zipfile.ZipFile(path) as zf:
            return any(n.endswith('data.pkl') for n in zf.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def find_resumable_checkpoint(work_dir: str) -> Optional[str]:
    """The newest complete ``iter_*.pth`` / ``epoch_*.pth`` in ``work_dir`` (None if none).

    ``last_checkpoint`` is trusted only when it names a complete file: it is written after
    the checkpoint, with a plain open, by MMEngine's CheckpointHook.
    """
    pointer = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(pointer):
        with open(pointer) as f:
            named = f.read().strip()
        if named and osp.isfile(named) and is_complete_checkpoint(named):
            return named
    found = []
    for path in glob.glob(osp.join(work_dir, '*.pth')):
        m = re.fullmatch(r'(iter|epoch)_(\d+)\.pth', osp.basename(path))
        if m and is_complete_checkpoint(path):
            found.append((int(m.group(2)), osp.getmtime(path), path))
    return max(found)[2] if found else None
