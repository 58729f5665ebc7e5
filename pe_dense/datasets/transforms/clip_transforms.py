"""CLIP pipeline pieces: image/video loading with clear errors, PE's squash resize, the
augmentation we use for contrastive training, and packing.

Images stay RGB uint8 HWC (``results['img']``); videos are a list of such frames
(``results['imgs']``) and every augmentation draws one set of parameters per clip.
PE's own eval transform is a bilinear squash resize (no crop) then mean = std = 0.5; with
``backend='pillow'`` the resize is the PIL bilinear filter the official transform uses.
"""
import logging
import math
import random
from typing import Optional, Sequence, Tuple

import cv2
import mmcv
import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmengine.logging import print_log
from mmengine.registry import TRANSFORMS

from ..robust_loading import read_image


def _frames(results: dict):
    return results['imgs'] if 'imgs' in results else [results['img']]


def _set_frames(results: dict, frames):
    if 'imgs' in results:
        results['imgs'] = frames
    else:
        results['img'] = frames[0]
    results['img_shape'] = frames[0].shape[:2]


@TRANSFORMS.register_module()
class ClipLoadImage(BaseTransform):
    """RGB image from ``img_path`` or from a tar shard (``tar_path``/``tar_offset``/``tar_size``).

    Decoded by :func:`read_image`: truncated files are errors (not OpenCV's grey fill),
    EXIF orientation is applied, grey / 16-bit / alpha / palette images become RGB.

    ``on_missing='skip'`` logs and returns None so the dataset draws another sample (training).
    """

    def __init__(self, on_missing: str = 'error'):
        if on_missing not in ('error', 'skip'):
            raise ValueError(f"on_missing must be 'error' or 'skip', got {on_missing!r}")
        self.on_missing = on_missing
        self.skipped = 0

    def _read(self, results: dict) -> bytes:
        if 'img_bytes' in results:  # streamed (WebImageTextStream)
            return results.pop('img_bytes')
        if 'tar_path' in results:
            with open(results['tar_path'], 'rb') as f:
                f.seek(results['tar_offset'])
                return f.read(results['tar_size'])
        with open(results['img_path'], 'rb') as f:
            return f.read()

    def transform(self, results: dict) -> Optional[dict]:
        where = results.get('img_path')
        try:
            img = read_image(where, data=self._read(results))
        except (OSError, ValueError) as err:  # ImageLoadError is a ValueError
            msg = f'cannot load image {where} (from {results.get("source", "?")}): {err}'
            if self.on_missing == 'error':
                raise FileNotFoundError(msg) from err
            self.skipped += 1
            print_log(f'skipping sample ({self.skipped} skipped by this loader): {msg}',
                      logger='current', level=logging.WARNING)
            return None
        results['img'] = img
        results['img_shape'] = results['ori_shape'] = img.shape[:2]
        return results


def uniform_frame_indices(total: int, num: int) -> np.ndarray:
    """Centres of ``num`` equal segments of a ``total``-frame video."""
    return np.minimum(((np.arange(num) + 0.5) * total / num).astype(int), total - 1)


@TRANSFORMS.register_module()
class ClipLoadVideoFrames(BaseTransform):
    """``num_frames`` uniformly sampled RGB frames of ``video_path`` decoded with OpenCV."""

    def __init__(self, num_frames: int = 8):
        if num_frames < 1:
            raise ValueError(f'num_frames must be >= 1, got {num_frames}')
        self.num_frames = num_frames

    @staticmethod
    def _seek(cap, total: int, idx) -> Optional[list]:
        """Only the sampled frames (seek + one decode each); None if the container lies."""
        frames = []
        for i in idx:
            if not cap.set(cv2.CAP_PROP_POS_FRAMES, int(i)):
                return None
            ok, frame = cap.read()
            if not ok:
                return None
            frames.append(frame)
        return frames

    def transform(self, results: dict) -> dict:
        path = results['video_path']
        cap = cv2.VideoCapture(path)
        total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else 0
        idx = uniform_frame_indices(total, self.num_frames) if total > 0 else None
        frames = self._seek(cap, total, idx) if idx is not None else None
        if frames is None:  # no or wrong frame count: decode everything once
            cap.release()
            cap = cv2.VideoCapture(path)
            every = []
            while cap.isOpened():
                ok, frame = cap.read()
                if not ok:
                    break
                every.append(frame)
            idx = uniform_frame_indices(len(every), self.num_frames) if every else None
            frames = [every[i] for i in idx] if every else []
        cap.release()
        if not frames:
            raise ValueError(f'cannot read video {path} (missing, empty or unsupported codec; '
                             f'from {results.get("source", "?")})')
        results['imgs'] = [cv2.cvtColor(f, cv2.COLOR_BGR2RGB) for f in frames]
        results['frame_inds'] = idx
        results['img_shape'] = results['ori_shape'] = frames[0].shape[:2]
        return results


@TRANSFORMS.register_module()
class ClipResize(BaseTransform):
    """Squash resize to ``scale`` x ``scale`` (PE's eval transform). ProgressiveResolutionHook
    sets ``scale`` per batch through ``set_output_size``."""

    def __init__(self, scale: int, interpolation: str = 'bilinear', backend: str = 'pillow'):
        self.scale, self.interpolation, self.backend = scale, interpolation, backend

    def set_output_size(self, size: int) -> None:
        self.scale = size

    def transform(self, results: dict) -> dict:
        size = (self.scale, self.scale)
        _set_frames(results, [mmcv.imresize(f, size, interpolation=self.interpolation,
                                            backend=self.backend) for f in _frames(results)])
        return results


@TRANSFORMS.register_module()
class ClipRandomResizedCrop(BaseTransform):
    """Random crop of ``scale`` area fraction and ``ratio`` aspect range (Inception-style),
    squashed to ``size``; ``size=None`` keeps the crop size (a later ClipResize sets it).
    ProgressiveResolutionHook sets ``size`` per batch through ``set_output_size``, so every
    stage crops the source picture straight to its resolution."""

    def __init__(self, size: Optional[int] = None, scale: Tuple[float, float] = (0.5, 1.0),
                 ratio: Tuple[float, float] = (3 / 4, 4 / 3), backend: str = 'pillow'):
        if not 0 < scale[0] <= scale[1] <= 1:
            raise ValueError(f'scale must satisfy 0 < min <= max <= 1, got {scale}')
        self.size, self.scale, self.ratio, self.backend = size, scale, ratio, backend

    def set_output_size(self, size: int) -> None:
        self.size = size

    def _box(self, h: int, w: int):
        for _ in range(10):
            area = h * w * random.uniform(*self.scale)
            ar = math.exp(random.uniform(math.log(self.ratio[0]), math.log(self.ratio[1])))
            cw, ch = round(math.sqrt(area * ar)), round(math.sqrt(area / ar))
            if 0 < cw <= w and 0 < ch <= h:
                return random.randint(0, h - ch), random.randint(0, w - cw), ch, cw
        return 0, 0, h, w

    def transform(self, results: dict) -> dict:
        frames = _frames(results)
        y, x, ch, cw = self._box(*frames[0].shape[:2])
        out = [f[y:y + ch, x:x + cw] for f in frames]
        if self.size:
            out = [mmcv.imresize(f, (self.size, self.size), backend=self.backend) for f in out]
        _set_frames(results, out)
        return results


@TRANSFORMS.register_module()
class ClipColorJitter(BaseTransform):
    """Random brightness and saturation factors in [1 - b, 1 + b] / [1 - s, 1 + s]."""

    def __init__(self, brightness: float = 0.2, saturation: float = 0.2, prob: float = 1.0):
        self.brightness, self.saturation, self.prob = brightness, saturation, prob

    def transform(self, results: dict) -> dict:
        if random.random() >= self.prob:
            return results
        b = random.uniform(1 - self.brightness, 1 + self.brightness)
        s = random.uniform(1 - self.saturation, 1 + self.saturation)
        out = [mmcv.adjust_color(mmcv.adjust_brightness(f, b), s).astype(np.uint8)
               for f in _frames(results)]
        _set_frames(results, out)
        return results


@TRANSFORMS.register_module()
class ClipRandomFlip(BaseTransform):
    """Horizontal flip with ``prob`` (off in our recipes: captions may say left/right)."""

    def __init__(self, prob: float = 0.5):
        self.prob = prob

    def transform(self, results: dict) -> dict:
        if random.random() < self.prob:
            _set_frames(results, [mmcv.imflip(f, 'horizontal') for f in _frames(results)])
        return results


@TRANSFORMS.register_module()
class PackClipInputs(BaseTransform):
    """``inputs``: uint8 (3, H, W) or (T, 3, H, W); ``data_samples``: caption, label, index,
    and ``text``: the caption's token ids.

    Captions are tokenised here, in the data workers, not in the model's forward (where it
    would hold up the GPU every step). ``context_length`` (77) covers every PE text tower; the
    model re-truncates to its own context (``fit_context``), which equals tokenising at that
    length. ``context_length=None`` leaves tokenisation to the model.
    """

    def __init__(self, meta_keys: Sequence[str] = ('caption', 'label', 'sample_idx', 'shard_pos'),
                 context_length: Optional[int] = 77):
        self.meta_keys = meta_keys
        self.context_length = context_length
        self._tokenizer = None

    def _tokens(self, caption: str) -> torch.Tensor:
        if self._tokenizer is None:  # built once per worker
            from pe_dense.models.clip.tokenizer import PETokenizer
            self._tokenizer = PETokenizer(self.context_length)
        return self._tokenizer([caption])[0]

    def transform(self, results: dict) -> dict:
        frames = [torch.from_numpy(np.ascontiguousarray(f.transpose(2, 0, 1)))
                  for f in _frames(results)]
        inputs = torch.stack(frames) if 'imgs' in results else frames[0]
        samples = {k: results[k] for k in self.meta_keys if k in results}
        samples.setdefault('label', -1)
        if self.context_length and isinstance(results.get('caption'), str):
            samples['text'] = self._tokens(results['caption'])
        return dict(inputs=inputs, data_samples=samples)
