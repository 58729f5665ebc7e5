"""SA-1B layout: ``sa_<id>.jpg`` next to ``sa_<id>.json`` in shard folders.

Alignment needs the pictures only (SAM 2.1 makes its own masks from grid prompts); the json is
read for the file name and size so a broken shard is reported before training starts. Its path
is kept (``ann_path``) for the opt-in mask teacher ``LoadSA1BMaskTargets``.
"""
import json
import os
import os.path as osp
from typing import List

from mmengine.dataset import BaseDataset
from mmengine.registry import DATASETS

from .image_folder import image_key


def read_sa1b_record(json_path: str) -> dict:
    """The ``image`` record of one SA-1B json, checked; errors name the file and field."""
    return load_sa1b_json(json_path)['image']


def load_sa1b_json(json_path: str) -> dict:
    """One SA-1B json with its ``image`` record checked; errors name the file and field."""
    try:
        with open(json_path) as f:
            meta = json.load(f)
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f'SA-1B: cannot read {json_path}: {err}') from err
    image = meta.get('image') if isinstance(meta, dict) else None
    if not isinstance(image, dict):
        raise ValueError(f'SA-1B: {json_path} has no "image" record')
    for field in ('file_name', 'width', 'height'):
        if field not in image:
            raise ValueError(f'SA-1B: {json_path}: image record lacks "{field}"')
    return meta


@DATASETS.register_module()
class SA1BDataset(BaseDataset):
    """Images of every ``*.json`` below the root (shards ``sa_000000/`` ... or one folder)."""

    def __init__(self, data_root: str = '', data_prefix: dict = dict(img_path=''), **kwargs):
        kwargs.setdefault('ann_file', '')
        super().__init__(data_root=data_root, data_prefix=data_prefix, **kwargs)

    def load_data_list(self) -> List[dict]:
        root = self.data_prefix.get('img_path', self.data_root)
        if not osp.isdir(root):
            raise FileNotFoundError(f'SA1BDataset: folder not found: {root}')
        jsons = sorted(osp.join(d, f) for d, _, files in os.walk(root) for f in files
                       if f.startswith('sa_') and f.endswith('.json'))
        if not jsons:
            raise ValueError(f'SA1BDataset: no sa_*.json under {root}')
        items = []
        for jp in jsons:
            image = read_sa1b_record(jp)
            img_path = osp.join(osp.dirname(jp), image['file_name'])
            if not osp.isfile(img_path):
                raise FileNotFoundError(f'SA-1B: {jp} names {image["file_name"]}, not found')
            items.append(dict(img_path=img_path, ann_path=jp, key=image_key(img_path, root),
                              height=int(image['height']), width=int(image['width'])))
        return items
