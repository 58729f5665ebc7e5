"""Unlabelled pictures from a folder tree (alignment / distillation training)."""
import os
import os.path as osp
from typing import List

from mmengine.dataset import BaseDataset
from mmengine.registry import DATASETS

IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.webp', '.tif', '.tiff')


def image_key(path: str, root: str) -> str:
    """Stable id of an image: its path below ``root`` without the extension (cache file name)."""
    return osp.splitext(osp.relpath(path, root))[0].replace(os.sep, '/')


@DATASETS.register_module()
class ImageFolderDataset(BaseDataset):
    """Every image below ``data_root/data_prefix['img_path']`` (recursive, sorted).

    Each item is ``dict(img_path, key)``; ``key`` names the image's SAM-target cache file.
    """

    def __init__(self, data_root: str = '', data_prefix: dict = dict(img_path=''), **kwargs):
        kwargs.setdefault('ann_file', '')
        super().__init__(data_root=data_root, data_prefix=data_prefix, **kwargs)

    @property
    def image_root(self) -> str:
        return self.data_prefix.get('img_path', self.data_root)

    def load_data_list(self) -> List[dict]:
        root = self.image_root
        if not osp.isdir(root):
            raise FileNotFoundError(f'ImageFolderDataset: image folder not found: {root}')
        paths = sorted(osp.join(d, f) for d, _, files in os.walk(root) for f in files
                       if f.lower().endswith(IMG_EXTENSIONS))
        if not paths:
            raise ValueError(f'ImageFolderDataset: no images ({", ".join(IMG_EXTENSIONS)}) '
                             f'under {root}')
        return [dict(img_path=p, key=image_key(p, root)) for p in paths]
