"""Video-text pairs from a JSONL/CSV manifest ``{"video", "caption", "label"?}``.

Frames are decoded by ``ClipLoadVideoFrames`` (OpenCV, 8 uniformly sampled frames by default).
"""
import os.path as osp
from typing import List, Optional

from mmengine.dataset import BaseDataset
from mmengine.registry import DATASETS

from .image_text import _caption_check, read_manifest


@DATASETS.register_module()
class VideoTextDataset(BaseDataset):

    def __init__(self, ann_file: str, video_key: str = 'video', caption_key: str = 'caption',
                 label_key: Optional[str] = 'label', on_bad: str = 'error', **kwargs):
        self.keys = (video_key, caption_key, label_key)
        self.on_bad = on_bad
        super().__init__(ann_file=ann_file, **kwargs)

    def load_data_list(self) -> List[dict]:
        video_key, caption_key, label_key = self.keys
        rows = read_manifest(self.ann_file, (video_key, caption_key), self.on_bad,
                             _caption_check(caption_key))
        out = []
        for row in rows:
            path = row[video_key]
            label = row.get(label_key) if label_key else None
            out.append(dict(video_path=path if osp.isabs(path) else osp.join(self.data_root, path),
                            caption=row[caption_key].strip(),
                            label=-1 if label in (None, '') else int(label),
                            source=f'{self.ann_file}:{row["line"]}'))
        return out
