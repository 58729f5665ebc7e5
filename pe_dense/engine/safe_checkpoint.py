"""Resume MMEngine runs on torch >= 2.6 without trusting pickles.

torch.load defaults to ``weights_only=True`` since torch 2.6, and MMEngine 0.10.7 checkpoints
carry objects outside torch's default allowlist: ``HistoryBuffer`` (with its statistics methods
pickled as ``getattr(buffer, 'mean')``) and numpy arrays, scalars and dtypes in the message
hub. We allowlist exactly those classes, plus a ``getattr`` that only returns HistoryBuffer's
own statistics methods (pickled as ``getattr(HistoryBuffer, 'mean')``); a general ``getattr``
would let a crafted file call arbitrary methods.
Anything else is refused with a message naming the file and the object.
"""
import pickle
import re
import warnings

import numpy as np
import torch
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader

from pe_dense.models.backbones.checkpoint import refused_global

_DEFAULT_STATISTICS = {'min', 'max', 'current', 'mean'}
_NUMPY_DTYPES = ('bool', 'int8', 'int16', 'int32', 'int64', 'uint8', 'uint16', 'uint32',
                 'uint64', 'float16', 'float32', 'float64')


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint holds a pickled object outside the allowlist."""


def history_buffer_getattr(obj, name: str):
    """``getattr`` restricted to what HistoryBuffer pickles: its own statistics methods."""
    owner = obj if isinstance(obj, type) else type(obj)
    allowed = _DEFAULT_STATISTICS | set(HistoryBuffer._statistics_methods)
    if issubclass(owner, HistoryBuffer) and name in allowed:
        return getattr(obj, name)
    raise UnsafeCheckpointError(
        f'refused getattr({owner.__name__}, {name!r}) while unpickling a checkpoint')


def mmengine_safe_globals() -> list:
    """Every global MMEngine 0.10.7 writes into a training checkpoint."""
    multiarray = np._core.multiarray if hasattr(np, '_core') else np.core.multiarray
    names = []
    for module in ('numpy._core.multiarray', 'numpy.core.multiarray'):
        names += [(multiarray._reconstruct, f'{module}._reconstruct'),
                  (multiarray.scalar, f'{module}.scalar')]
    return [HistoryBuffer, np.ndarray, np.dtype, *names,
            *(type(np.dtype(t)) for t in _NUMPY_DTYPES),
            (history_buffer_getattr, '__builtin__.getattr'),
            (history_buffer_getattr, 'builtins.getattr')]


def supports_named_allowlist() -> bool:
    """torch >= 2.6 accepts ``(object, 'pickled.name')`` pairs in ``add_safe_globals``."""
    return hasattr(torch.serialization, 'add_safe_globals') and \
        tuple(int(x) for x in re.findall(r'\d+', torch.__version__)[:2]) >= (2, 6)


def install() -> None:
    """Allowlist MMEngine's classes and make MMEngine's local loader refuse clearly.

    On older torch only plain weight files load (weights_only=True without the allowlist):
    resuming a full MMEngine training state needs torch >= 2.6.
    """
    if supports_named_allowlist():
        torch.serialization.add_safe_globals(mmengine_safe_globals())
    else:
        warnings.warn(f'pe_dense: torch {torch.__version__} < 2.6 has no named safe-globals '
                      'allowlist; MMEngine checkpoints with training state (resume) will be '
                      'refused, plain weights still load. Use torch >= 2.6 to resume.')
    CheckpointLoader.register_scheme(prefixes='', loader=load_local_checkpoint, force=True)


def load_local_checkpoint(filename: str, map_location=None):
    """MMEngine's local loader with weights_only=True and an error that says what was refused."""
    try:
        return torch.load(filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        what = refused_global(err)
        raise UnsafeCheckpointError(
            f'{filename}: refused to unpickle {what or "an object"} outside the allowlist of '
            'classes MMEngine writes (a checkpoint is untrusted input). If you trust the file, '
            'add the class with torch.serialization.add_safe_globals.') from err
