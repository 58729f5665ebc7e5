"""Alignment pipeline: load, square-resize to 448, cached SAM targets, flip both, pack.

The resize is square (aspect not kept) because SAM itself sees a square-resized image: then the
cached target map covers exactly the student's input and a flip is the only augmentation that
needs no new SAM pass.
"""
from typing import Optional, Sequence, Union

import mmcv
import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmengine.registry import TRANSFORMS

from ..robust_loading import check_record_size
from ..sam_target_cache import SAMTargetCache, read_rgb


@TRANSFORMS.register_module()
class LoadAlignImage(BaseTransform):
    """``img`` (HWC uint8 RGB) from ``img_path``; unreadable files raise naming the file, as
    does a size that disagrees with the SA-1B record (``height``/``width``, when present)."""

    def transform(self, results: dict) -> dict:
        img = read_rgb(results['img_path'])
        check_record_size(img, results)
        results.update(img=img, ori_shape=img.shape[:2], img_shape=img.shape[:2])
        return results


@TRANSFORMS.register_module()
class AlignResize(BaseTransform):
    """Square resize to ``size`` (bicubic)."""

    def __init__(self, size: Union[int, Sequence[int]] = 448):
        self.size = (size, size) if isinstance(size, int) else tuple(size)

    def transform(self, results: dict) -> dict:
        h, w = self.size
        results['img'] = mmcv.imresize(results['img'], (w, h), interpolation='bicubic')
        results['img_shape'] = (h, w)
        return results


@TRANSFORMS.register_module()
class LoadSAMTargets(BaseTransform):
    """``sam_targets`` (K, gh, gw) float from the cache entry of ``key``; missing -> error."""

    def __init__(self, cache_root: str):
        self.cache = SAMTargetCache(cache_root)

    def transform(self, results: dict) -> dict:
        results['sam_targets'] = self.cache.load(results['key']).float()
        return results


@TRANSFORMS.register_module()
class AlignRandomFlip(BaseTransform):
    """Horizontal flip of the image and, consistently, of its SAM target map.

    Without ``seed`` the coin comes from NumPy's global RNG, like mmcv's RandomFlip: the
    runner's ``randomness.seed`` then fixes it and RNGStateHook carries it across a resume.
    A ``seed`` gives the transform its own stream (reproducible alone, not saved on resume).
    """

    def __init__(self, prob: float = 0.5, seed: Optional[int] = None):
        if not 0 <= prob <= 1:
            raise ValueError(f'AlignRandomFlip: prob must be in [0, 1], got {prob}')
        self.prob = prob
        self.rng = np.random if seed is None else np.random.default_rng(seed)

    def transform(self, results: dict) -> dict:
        flip = bool(self.rng.random() < self.prob)
        if flip:
            results['img'] = np.ascontiguousarray(results['img'][:, ::-1])
            if 'sam_targets' in results:
                results['sam_targets'] = results['sam_targets'].flip(-1)
        results['flip'] = flip
        return results


@TRANSFORMS.register_module()
class PackAlignInputs(BaseTransform):
    """-> dict(inputs=(3, H, W) uint8 RGB, data_samples=dict(key, img_path, flip[, sam_targets]))."""

    def transform(self, results: dict) -> dict:
        img = torch.from_numpy(np.ascontiguousarray(results['img'])).permute(2, 0, 1)
        sample = dict(key=results.get('key'), img_path=results.get('img_path'),
                      flip=bool(results.get('flip', False)))
        if 'sam_targets' in results:
            sample['sam_targets'] = results['sam_targets']
        return dict(inputs=img, data_samples=sample)
