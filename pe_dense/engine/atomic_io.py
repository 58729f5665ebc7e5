"""Crash-safe local writes: a killed or failed write never leaves a half-written file.

Every weight or cache file the project writes (checkpoints through MMEngine's file backend,
converted weights, SAM targets, feature caches) goes through :func:`atomic_path`: the content is written to a
temporary file in the same folder, flushed to disk (fsync), given the mode a plain ``open()``
would give (the umask for a new file, the old mode for a replaced one: ``mkstemp`` alone makes
0600), then renamed over the final name (atomic on POSIX). MMEngine's stock local backend opens
the final path and writes into it, so a crash mid-write leaves a truncated checkpoint that a
later ``--resume`` would pick up.
"""
import glob
import os
import os.path as osp
import re
import stat
import tempfile
import zipfile
from contextlib import contextmanager
from typing import Iterator, Optional, Union

from mmengine.fileio.backends import LocalBackend, register_backend
from mmengine.logging import print_log


class AtomicWriteError(OSError):
    """An atomic write failed (disk full, permissions...); the final file was not touched."""


def _umask() -> int:
    try:
        with open('/proc/self/status') as f:  # read without changing it (thread-safe)
            for line in f:
                if line.startswith('Umask:'):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _final_mode(path: str) -> int:
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return 0o666 & ~_umask()


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: str) -> Iterator[str]:
    """Yield a temporary path to write ``path``'s content to; publish it on success.

    For writers that want a file name (``torch.save``, safetensors, NumPy memmaps). On any
    error the temporary file is removed and ``path`` keeps its previous content; an OSError
    comes back as :class:`AtomicWriteError` naming ``path``.
    """
    path = str(path)
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f'.{osp.basename(path)}.', suffix='.tmp', dir=folder)
    os.close(fd)
    try:
        yield tmp
        _fsync(tmp)
        os.chmod(tmp, _final_mode(path))
        os.replace(tmp, path)
    except BaseException as err:
        if osp.exists(tmp):
            os.remove(tmp)
        if isinstance(err, OSError) and not isinstance(err, AtomicWriteError):
            raise AtomicWriteError(err.errno, f'could not write {path}: {err.strerror or err}; '
                                   'nothing was replaced (an existing file of that name is '
                                   'intact)') from err
        raise


def atomic_write(data: Union[bytes, str], path: str, encoding: str = 'utf-8') -> None:
    """Write bytes or text to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp, open(tmp, 'wb') as f:
        f.write(data.encode(encoding) if isinstance(data, str) else data)


def atomic_torch_save(obj, path: str) -> None:
    import torch
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


class AtomicLocalBackend(LocalBackend):
    """MMEngine's local backend with write-to-temp-then-rename."""

    def put(self, obj: bytes, filepath) -> None:
        filepath = str(filepath)
        try:
            atomic_write(obj, filepath)
        except AtomicWriteError as err:
            if not filepath.endswith('.pth'):
                raise
            previous = find_resumable_checkpoint(osp.dirname(osp.abspath(filepath)),
                                                 log=False)
            if previous:
                hint = (f'the previous checkpoint {previous} is intact: free space (or point '
                        f'--work-dir elsewhere) and resume from it with tools/train.py CONFIG '
                        f'--resume (the newest complete checkpoint) or --resume {previous}')
            else:
                hint = ('no earlier checkpoint exists in that folder; free space and restart '
                        'the run')
            raise AtomicWriteError(err.errno, f'could not write checkpoint {filepath}: '
                                   f'{err.__cause__.strerror if err.__cause__ else err}; '
                                   f'{hint}') from err

    def put_text(self, obj: str, filepath, encoding: str = 'utf-8') -> None:
        atomic_write(obj, str(filepath), encoding)


def install() -> None:
    register_backend('local', AtomicLocalBackend, force=True, prefixes='')


def checkpoint_problem(path: str) -> Optional[str]:
    """Why ``path`` is not a complete torch zip checkpoint (None when it is)."""
    try:
        with zipfile.ZipFile(path) as zf:
            if not any(n.endswith('data.pkl') for n in zf.namelist()):
                return 'no data.pkl in the archive (not a torch checkpoint)'
            return None
    except zipfile.BadZipFile as err:
        return f'not a complete zip archive, likely truncated ({err})'
    except OSError as err:
        return f'unreadable ({err})'


def is_complete_checkpoint(path: str) -> bool:
    """A torch zip checkpoint whose central directory and pickle are both there."""
    return checkpoint_problem(path) is None


def _skipped(path: str, why: str, log: bool) -> None:
    if log:
        print_log(f'resume: skipped {path}: {why}', logger='current', level=30)


def find_resumable_checkpoint(work_dir: str, log: bool = True) -> Optional[str]:
    """The newest complete ``iter_*.pth`` / ``epoch_*.pth`` in ``work_dir`` (None if none).

    ``last_checkpoint`` is trusted only when it names a complete file: it is written after
    the checkpoint, with a plain open, by MMEngine's CheckpointHook. Every file passed over
    is logged with the reason (``log=True``).
    """
    pointer = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(pointer):
        with open(pointer) as f:
            named = f.read().strip()
        if named and osp.isfile(named):
            why = checkpoint_problem(named)
            if why is None:
                return named
            _skipped(named, f'{why} (named by {pointer})', log)
    found = []
    for path in glob.glob(osp.join(work_dir, '*.pth')):
        m = re.fullmatch(r'(iter|epoch)_(\d+)\.pth', osp.basename(path))
        if m:
            found.append((int(m.group(2)), osp.getmtime(path), path))
    for _, _, path in sorted(found, reverse=True):
        why = checkpoint_problem(path)
        if why is None:
            return path
        _skipped(path, why, log)
    return None
