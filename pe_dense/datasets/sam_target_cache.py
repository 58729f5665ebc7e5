"""On-disk cache of SAM 2.1 grid-prompt targets (one fp16 file per image).

Computing 1024 prompts per image is the expensive part of alignment, and it does not change
between epochs, so it runs once (``tools/cache_sam_targets.py``). Each file is written to a
temporary name and renamed, so an interrupted run never leaves a half-written target and a
rerun simply skips what exists.
"""
import json
import zlib
import os.path as osp
from typing import Callable, Dict, Iterable, Optional, Tuple

import numpy as np
import torch
from mmengine.utils import ProgressBar

from ..engine.atomic_io import atomic_torch_save, atomic_write
from .robust_loading import ImageLoadError, read_image

META_FILE = 'cache_meta.json'
# teacher settings that change how fast targets are made, not the targets: not compared
RUN_ONLY_KEYS = ('chunk', 'compile', 'decoder')


def read_rgb(path: str) -> np.ndarray:
    """HWC uint8 RGB, upright per EXIF; a clear error for missing or undecodable files.

    Decoded by :func:`read_image` (PIL), so a truncated JPEG is an error rather than the
    grey-filled picture OpenCV returns, and 16-bit / alpha / palette files are converted.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'image not found: {path}')
    try:
        return read_image(path)
    except ImageLoadError as err:
        raise ImageLoadError(f'unreadable image (not a decodable picture): {err}') from err


class SAMTargetCache:
    """``root/<key>.pt``: a (K, gh, gw) fp16 tensor; ``root/cache_meta.json``: its settings."""

    def __init__(self, root: str):
        self.root = root

    def path(self, key: str) -> str:
        return osp.join(self.root, key + '.pt')

    def exists(self, key: str) -> bool:
        return osp.isfile(self.path(key))

    def save(self, key: str, target: torch.Tensor) -> None:
        atomic_torch_save(target.detach().to('cpu', torch.float16).contiguous(), self.path(key))

    def load(self, key: str) -> torch.Tensor:
        path = self.path(key)
        if not osp.isfile(path):
            raise FileNotFoundError(f'SAM target cache: no entry for {key!r} ({path}); run '
                                    'tools/cache_sam_targets.py first')
        try:
            t = torch.load(path, map_location='cpu', weights_only=True)
        except Exception as err:  # noqa: BLE001 - any decoding failure is a bad file
            raise ValueError(f'SAM target cache: unreadable {path}: {err}') from err
        if not isinstance(t, torch.Tensor) or t.dim() != 3:
            raise ValueError(f'SAM target cache: {path} is not a (K, gh, gw) tensor')
        return t

    def check_meta(self, meta: Dict) -> None:
        """Write the settings on first use; refuse to mix targets made with other settings.

        The teacher's ``RUN_ONLY_KEYS`` (under ``meta['sam']``) are neither stored nor
        compared: a GPU-sized ``chunk`` reuses a cache made on a CPU.
        """
        meta = _targets_only(meta)
        path = osp.join(self.root, META_FILE)
        if osp.isfile(path):
            with open(path) as f:
                old = _targets_only(json.load(f))  # older caches stored chunk / compile
            if old != meta:
                raise ValueError(f'SAM target cache {self.root} was made with {old}, not {meta}; '
                                 'use another folder')
            return
        atomic_write(json.dumps(meta, indent=1, sort_keys=True), path)


def in_shard(key: str, shard: Tuple[int, int]) -> bool:
    """Whether ``key`` belongs to shard ``i`` of ``n``: by a hash of the key, so jobs agree
    whatever order their datasets list the images in."""
    i, n = shard
    return zlib.crc32(key.encode('utf-8')) % n == i


def fill_cache(items: Iterable[Tuple[str, object]], compute: Callable[[np.ndarray], torch.Tensor],
               cache: SAMTargetCache, max_images: Optional[int] = None,
               progress: bool = True,
               load: Callable[[object], np.ndarray] = read_rgb,
               shard: Tuple[int, int] = (0, 1)) -> Dict[str, int]:
    """Compute ``compute(load(source))`` for every (key, source) of ``shard`` (i, n) not cached
    yet, at most ``max_images``. ``load`` makes the picture SAM sees: the training pipeline's
    aligned picture (``tools/cache_sam_targets.py``), so cached and online targets agree; n jobs
    with shards 0..n-1 fill one cache without overlap."""
    items = [(k, p) for k, p in items if in_shard(k, shard)]
    todo = [(k, p) for k, p in items if not cache.exists(k)]
    stats = dict(total=len(items), cached_before=len(items) - len(todo), written=0)
    if max_images is not None:
        todo = todo[:max_images]
    bar = ProgressBar(len(todo)) if progress and todo else None
    for key, source in todo:
        cache.save(key, compute(load(source)))
        stats['written'] += 1
        if bar is not None:
            bar.update()
    stats['remaining'] = stats['total'] - stats['cached_before'] - stats['written']
    return stats


def _targets_only(meta: Dict) -> Dict:
    if not isinstance(meta.get('sam'), dict):
        return meta
    return dict(meta, sam={k: v for k, v in meta['sam'].items() if k not in RUN_ONLY_KEYS})
