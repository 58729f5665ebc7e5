"""Image-text pairs from a JSONL/CSV manifest or from webdataset-style tar shards.

Manifest lines are validated while indexing so a bad line fails at start-up with its file and
line number (``on_bad='skip'`` logs and drops it instead). Tar shards are indexed with the
standard library: each member's data offset is kept, so a sample is one seek + read.
"""
import csv
import glob
import json
import logging
import os.path as osp
import tarfile
from typing import Callable, Iterator, List, Optional, Sequence, Tuple, Union

from mmengine.dataset import BaseDataset
from mmengine.logging import print_log
from mmengine.registry import DATASETS

IMAGE_EXTS = ('jpg', 'jpeg', 'png', 'webp', 'bmp')


class ManifestError(ValueError):
    """A manifest or shard entry that cannot be used; the message names file and line/member."""


def _json_rows(path: str) -> Iterator[Tuple[int, dict]]:
    with open(path, encoding='utf-8') as f:
        for no, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise ManifestError(f'{path}:{no}: not valid JSON ({err.msg}): '
                                    f'{line.strip()[:80]!r}') from err
            if not isinstance(row, dict):
                raise ManifestError(f'{path}:{no}: expected a JSON object, got {row!r:.80}')
            yield no, row


def _csv_rows(path: str, sep: Optional[str]) -> Iterator[Tuple[int, dict]]:
    with open(path, newline='', encoding='utf-8') as f:
        head = f.readline()
        if sep is None:
            sep = '\t' if '\t' in head else ','
        f.seek(0)
        for no, row in enumerate(csv.DictReader(f, delimiter=sep), 2):
            yield no, row


def read_manifest(path: str, required: Sequence[str], on_bad: str = 'error',
                  check: Optional[Callable[[dict], Optional[str]]] = None,
                  sep: Optional[str] = None) -> List[dict]:
    """Rows of a .jsonl / .json-lines or .csv / .tsv manifest with the ``required`` fields.

    ``check(row)`` may return a reason to reject a row. Rejected rows raise (``on_bad='error'``)
    or are skipped with one logged summary (``'skip'``). Each row gets ``line`` (1-based).
    """
    if on_bad not in ('error', 'skip'):
        raise ValueError(f"on_bad must be 'error' or 'skip', got {on_bad!r}")
    if not osp.isfile(path):
        raise FileNotFoundError(f'manifest not found: {path}')
    rows_iter = _csv_rows(path, sep) if path.endswith(('.csv', '.tsv')) else _json_rows(path)
    rows, skipped = [], []
    for no, row in rows_iter:
        missing = [k for k in required if row.get(k) in (None, '')]
        reason = f'missing or empty field(s) {missing}' if missing else (check and check(row))
        if reason:
            if on_bad == 'error':
                raise ManifestError(f'{path}:{no}: {reason}')
            skipped.append(f'{no} ({reason})')
            continue
        rows.append(dict(row, line=no))
    if skipped:
        print_log(f'{path}: skipped {len(skipped)} bad line(s): {", ".join(skipped[:10])}',
                  logger='current', level=logging.WARNING)
    return rows


def _caption_check(key: str):
    def check(row):
        cap = row.get(key)
        if not isinstance(cap, str) or not cap.strip():
            return f'empty caption in field "{key}"'
        return None
    return check


@DATASETS.register_module()
class ImageTextDataset(BaseDataset):
    """Pairs from a manifest: JSONL ``{"image", "caption", "label"?}`` or CSV/TSV (open_clip's
    ``filepath``/``title`` columns: set ``image_key``/``caption_key``). Paths are relative to
    ``data_root`` unless absolute. ``label`` (optional) feeds zero-shot evaluation."""

    def __init__(self, ann_file: str, image_key: str = 'image', caption_key: str = 'caption',
                 label_key: Optional[str] = 'label', on_bad: str = 'error', **kwargs):
        self.keys = (image_key, caption_key, label_key)
        self.on_bad = on_bad
        super().__init__(ann_file=ann_file, **kwargs)

    def load_data_list(self) -> List[dict]:
        image_key, caption_key, label_key = self.keys
        rows = read_manifest(self.ann_file, (image_key, caption_key), self.on_bad,
                             _caption_check(caption_key))
        out = []
        for row in rows:
            path = row[image_key]
            label = row.get(label_key) if label_key else None
            out.append(dict(img_path=path if osp.isabs(path) else osp.join(self.data_root, path),
                            caption=row[caption_key].strip(),
                            label=-1 if label in (None, '') else int(label),
                            source=f'{self.ann_file}:{row["line"]}'))
        return out


def _shard_paths(shards: Union[str, Sequence[str]], root: str) -> List[str]:
    pats = [shards] if isinstance(shards, str) else list(shards)
    paths = []
    for p in pats:
        p = p if osp.isabs(p) else osp.join(root, p)
        found = sorted(glob.glob(p))
        if not found:
            raise FileNotFoundError(f'no tar shard matches {p}')
        paths += found
    return paths


def _split_key(name: str) -> Tuple[str, str]:
    """webdataset rule: the key is the path up to the first dot of the basename."""
    d, base = osp.split(name)
    stem, _, ext = base.partition('.')
    return osp.join(d, stem), ext.lower()


def index_tar(path: str, caption_key: str = 'caption') -> Tuple[List[dict], List[str]]:
    """Samples of one uncompressed tar shard (image offset/size + caption) and problems found."""
    groups = {}
    try:
        with tarfile.open(path, 'r:') as tar:
            for m in tar:
                if m.isfile():
                    key, ext = _split_key(m.name)
                    groups.setdefault(key, {})[ext] = m
            captions = {}
            for key, files in groups.items():
                if 'txt' in files:
                    captions[key] = tar.extractfile(files['txt']).read().decode('utf-8')
                elif 'json' in files:
                    meta = json.loads(tar.extractfile(files['json']).read())
                    captions[key] = meta.get(caption_key)
    except tarfile.ReadError as err:
        raise ManifestError(f'{path}: not an uncompressed tar shard ({err})') from err
    samples, problems = [], []
    for key, files in sorted(groups.items()):
        img = next((files[e] for e in IMAGE_EXTS if e in files), None)
        cap = captions.get(key)
        if img is None:
            problems.append(f'{path}:{key}: no image member ({"/".join(IMAGE_EXTS)})')
        elif not isinstance(cap, str) or not cap.strip():
            problems.append(f'{path}:{key}: empty or missing caption')
        else:
            samples.append(dict(tar_path=path, tar_offset=img.offset_data, tar_size=img.size,
                                img_path=f'{path}:{img.name}', caption=cap.strip(), label=-1,
                                source=f'{path}:{key}'))
    return samples, problems


@DATASETS.register_module()
class WebImageTextDataset(BaseDataset):
    """Image-text pairs from webdataset tar shards (``key.jpg`` + ``key.txt`` or ``key.json``)."""

    def __init__(self, shards: Union[str, Sequence[str]], caption_key: str = 'caption',
                 on_bad: str = 'error', **kwargs):
        if on_bad not in ('error', 'skip'):
            raise ValueError(f"on_bad must be 'error' or 'skip', got {on_bad!r}")
        self.shards, self.caption_key, self.on_bad = shards, caption_key, on_bad
        super().__init__(ann_file='', **kwargs)

    def load_data_list(self) -> List[dict]:
        out = []
        for path in _shard_paths(self.shards, self.data_root):
            samples, problems = index_tar(path, self.caption_key)
            if problems and self.on_bad == 'error':
                raise ManifestError(problems[0])
            if problems:
                print_log(f'{path}: skipped {len(problems)} sample(s): {"; ".join(problems[:5])}',
                          logger='current', level=logging.WARNING)
            out += samples
        return out
