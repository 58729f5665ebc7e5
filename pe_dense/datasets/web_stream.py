"""Image-text pairs streamed from webdataset tar shards, for data at PE-Core's scale.

:class:`~pe_dense.datasets.image_text.WebImageTextDataset` indexes every member of every
shard at start-up (fine for thousands of pairs, never finishing for ~10^5 shards). This
stream opens nothing at construction: each epoch the shard list is put in a seeded order,
dealt to ranks and then to DataLoader workers (``order[rank::world][worker::workers]``), and
every consumer reads its shards front to back with the ``webdataset`` library. Position is a
shard boundary: ``start_shard=k`` resumes an epoch after the first ``k`` shards of its order
(each sample carries ``shard_pos``, its shard's place in that order).
"""
import glob
import json
import logging
import os.path as osp
import random
from typing import Iterator, List, Optional, Sequence, Union

import torch
from mmengine.dataset import Compose
from mmengine.logging import print_log
from mmengine.registry import DATASETS
from torch.utils.data import IterableDataset, get_worker_info

from .image_text import IMAGE_EXTS, ManifestError


def expand_shards(shards: Union[str, Sequence[str]], root: str = '') -> List[str]:
    """Brace patterns (``{000..099}``) and lists are expanded without touching the files;
    a glob (``*``) lists its folder, which opens no shard either."""
    from braceexpand import braceexpand
    out = []
    for pat in [shards] if isinstance(shards, str) else shards:
        for p in braceexpand(pat):
            p = p if osp.isabs(p) or ':' in p.split('/')[0] or not root else osp.join(root, p)
            if any(c in p for c in '*?['):
                found = sorted(glob.glob(p))
                if not found:
                    raise FileNotFoundError(f'no tar shard matches {p}')
                out += found
            else:
                out.append(p)
    if not out:
        raise FileNotFoundError(f'no tar shard given ({shards!r})')
    return out


def _rank_world():
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


@DATASETS.register_module()
class WebImageTextStream(IterableDataset):
    """``key.jpg|png|webp`` + ``key.txt`` (or ``key.json`` with ``caption_key``) per sample.

    Args:
        shards: brace pattern, glob or list of shard paths (any ``gopen`` URL).
        pipeline: transforms applied to ``dict(img_bytes, img_path, caption, ...)``;
            ``ClipLoadImage`` decodes the bytes (``on_missing='skip'`` returns None).
        on_bad: 'skip' (log, count in ``skipped`` / ``skipped_shards``, go on) or 'error'
            (raise naming the shard and key). A sample without image or caption, or whose
            pipeline returns None, is a bad sample; an unreadable tar is a bad shard.
        shuffle_shards / seed: shard order per epoch (``seed + epoch``); samples keep
            their order inside a shard.
        start_shard: resume an epoch after that many shards of its order.
        rank / world_size: default to torch.distributed's (0 / 1 when not initialised).
        num_samples: samples in an epoch (all ranks), an estimate is fine. Only ``len()`` uses
            it (this rank's share): MMEngine's ``LoggerHook`` asks every iteration for the
            train dataloader's length, which a stream cannot know without reading.
    """

    def __init__(self, shards: Union[str, Sequence[str]], pipeline: Sequence = (),
                 caption_key: str = 'caption', on_bad: str = 'skip', shuffle_shards: bool = True,
                 seed: int = 0, start_shard: int = 0, rank: Optional[int] = None,
                 world_size: Optional[int] = None, data_root: str = '',
                 num_samples: Optional[int] = None):
        if on_bad not in ('error', 'skip'):
            raise ValueError(f"on_bad must be 'error' or 'skip', got {on_bad!r}")
        self.urls = expand_shards(shards, data_root)
        self.pipeline = Compose(list(pipeline))
        self.caption_key, self.on_bad = caption_key, on_bad
        self.shuffle_shards, self.seed, self.start_shard = shuffle_shards, seed, start_shard
        self.rank, self.world_size = rank, world_size
        self.num_samples = num_samples
        self.epoch = 0
        self.skipped = 0
        self.skipped_shards = 0

    def __len__(self) -> int:
        if self.num_samples is None:
            raise TypeError('WebImageTextStream has no length: set num_samples (samples per '
                            'epoch, an estimate) for loops and loggers that ask for one')
        world = _rank_world()[1] if self.world_size is None else self.world_size
        return -(-self.num_samples // world)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def shard_order(self, epoch: Optional[int] = None) -> List[str]:
        order = list(self.urls)
        if self.shuffle_shards:
            random.Random(self.seed + (self.epoch if epoch is None else epoch)).shuffle(order)
        return order

    def my_shards(self, worker: int = 0, num_workers: int = 1) -> List[tuple]:
        """(position in the epoch order, url) of the shards this rank / worker reads."""
        rank, world = _rank_world()
        rank = rank if self.rank is None else self.rank
        world = world if self.world_size is None else self.world_size
        mine = list(enumerate(self.shard_order()))[self.start_shard:][rank::world]
        return mine[worker::num_workers]

    def _bad(self, what: str, shard: bool = False) -> None:
        if self.on_bad == 'error':
            raise ManifestError(what)
        if shard:
            self.skipped_shards += 1
        else:
            self.skipped += 1
        print_log(f'skipping {"shard" if shard else "sample"} ({self.skipped} sample(s), '
                  f'{self.skipped_shards} shard(s) skipped by this reader): {what}',
                  logger='current', level=logging.WARNING)

    def _samples(self, url: str, stream) -> Iterator[dict]:
        from webdataset.tariterators import group_by_keys, tar_file_expander
        errors = []

        def keep_going(exn):
            errors.append(exn)
            return False  # a broken tar stream cannot be re-synchronised: stop this shard

        try:
            yield from group_by_keys(tar_file_expander([dict(url=url, stream=stream)],
                                                       handler=keep_going),
                                     handler=keep_going)
        finally:
            stream.close()
        if errors:
            self._bad(f'{url}: not a readable tar shard ({errors[0].args[0]})', shard=True)

    def _to_result(self, url: str, sample: dict) -> Optional[dict]:
        key = sample['__key__']
        ext = next((e for e in IMAGE_EXTS if e in sample), None)
        cap = None
        if 'txt' in sample:
            cap = sample['txt'].decode('utf-8', 'replace')
        elif 'json' in sample:
            try:
                cap = json.loads(sample['json']).get(self.caption_key)
            except (ValueError, AttributeError):
                cap = None
        if ext is None:
            return self._bad(f'{url}:{key}: no image member ({"/".join(IMAGE_EXTS)})')
        if not isinstance(cap, str) or not cap.strip():
            return self._bad(f'{url}:{key}: empty or missing caption')
        return dict(img_bytes=sample[ext], img_path=f'{url}:{key}.{ext}', caption=cap.strip(),
                    label=-1, source=f'{url}:{key}')

    def __iter__(self) -> Iterator[dict]:
        """The shard list is fixed here, when the iterator is made (``start_shard`` may change
        afterwards without touching a running pass), and read lazily."""
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        return self._read(self.my_shards(worker, workers))

    def _read(self, shards: List[tuple]) -> Iterator[dict]:
        from webdataset.gopen import gopen
        for pos, url in shards:
            try:
                stream = gopen(url)
            except OSError as err:  # missing / unreadable file
                self._bad(f'{url}: cannot open shard ({err})', shard=True)
                continue
            for sample in self._samples(url, stream):
                result = self._to_result(url, sample)
                if result is None:
                    continue
                result['shard_pos'] = pos
                out = self.pipeline(result)
                if out is None:
                    self._bad(f'{result["source"]}: dropped by the pipeline (see above)')
                    continue
                yield out
