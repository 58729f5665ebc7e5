"""Pipeline checks for segmentation labels and depth maps (registered in mmseg TRANSFORMS).

Put them right after ``LoadAnnotations`` / ``LoadDepthAnnotation``. A wrong file fails
loudly with its path instead of training on garbage: label maps whose size differs from the
image, class ids outside the head's range, depth PNGs written with the wrong unit.
"""
from typing import Optional

import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS


def _hw(results: dict):
    """Size of the image as decoded from disk (before any resize in a test pipeline)."""
    shape = results.get('ori_shape') or results['img'].shape[:2]
    return tuple(shape[:2])


@TRANSFORMS.register_module()
class CheckSegLabel(BaseTransform):
    """Validate ``gt_seg_map``: same size as the image, ids in ``[0, num_classes)`` or ignore.

    Args:
        num_classes: number of classes after ``reduce_zero_label`` (150 for ADE20k).
        ignore_index: the one id allowed outside the range (255 in mmseg).
    """

    def __init__(self, num_classes: int, ignore_index: int = 255):
        if num_classes < 1:
            raise ValueError(f'CheckSegLabel: num_classes must be >= 1, got {num_classes}')
        self.num_classes = num_classes
        self.ignore_index = ignore_index

    def transform(self, results: dict) -> dict:
        path = results.get('seg_map_path', '<in-memory label>')
        if 'gt_seg_map' not in results:
            raise KeyError(f'CheckSegLabel: no gt_seg_map for {path}; put it after '
                           'LoadAnnotations')
        seg = results['gt_seg_map']
        if seg.ndim != 2:
            raise ValueError(f'{path}: label map must be single-channel (H, W), got shape '
                             f'{seg.shape}; save class ids as an 8-bit grey or palette PNG')
        if tuple(seg.shape) != _hw(results):
            raise ValueError(f'{path}: label map is {seg.shape[0]}x{seg.shape[1]} but image '
                             f'{results.get("img_path")} is {_hw(results)[0]}x{_hw(results)[1]}')
        ids = np.unique(seg)
        bad = ids[((ids < 0) | (ids >= self.num_classes)) & (ids != self.ignore_index)]
        if bad.size:
            raise ValueError(f'{path}: label ids {bad.tolist()[:10]} outside [0, '
                             f'{self.num_classes}) and not ignore_index={self.ignore_index} '
                             '(after reduce_zero_label, if set)')
        return results

    def __repr__(self):
        return f'{self.__class__.__name__}(num_classes={self.num_classes}, ' \
               f'ignore_index={self.ignore_index})'


@TRANSFORMS.register_module()
class CheckDepthMap(BaseTransform):
    """Validate ``gt_depth_map`` (metres, after ``depth_rescale_factor``).

    NYU PNGs store millimetres in uint16 (``depth_rescale_factor=1e-3``). A file saved in
    metres (values 0..10) then reads as <= 1 cm, one saved in 0.1 mm reads far past
    ``max_depth``: both raise with the file and the suspected scale.

    Args:
        max_depth: the valid range's upper end (10 m for NYU).
        min_plausible_max: the deepest valid pixel of a real frame is at least this far.
        max_far_fraction: tolerated fraction of valid pixels beyond ``max_depth``.
    """

    def __init__(self, max_depth: float = 10., min_plausible_max: float = 0.05,
                 max_far_fraction: float = 0.5):
        self.max_depth = max_depth
        self.min_plausible_max = min_plausible_max
        self.max_far_fraction = max_far_fraction

    def transform(self, results: dict) -> dict:
        path = results.get('depth_map_path', '<in-memory depth>')
        depth: Optional[np.ndarray] = results.get('gt_depth_map')
        if depth is None:
            raise KeyError(f'CheckDepthMap: no gt_depth_map for {path}; put it after '
                           'LoadDepthAnnotation')
        if depth.ndim != 2:
            raise ValueError(f'{path}: depth map must be single-channel (H, W), got shape '
                             f'{depth.shape}; save a 16-bit grey PNG in millimetres')
        if tuple(depth.shape) != _hw(results):
            raise ValueError(f'{path}: depth map is {depth.shape[0]}x{depth.shape[1]} but image '
                             f'{results.get("img_path")} is {_hw(results)[0]}x{_hw(results)[1]}')
        valid = depth[depth > 0]
        scale = results.get('depth_rescale_factor', 1.)
        if valid.size == 0:
            raise ValueError(f'{path}: depth map has no valid (> 0) pixel')
        if valid.max() < self.min_plausible_max:
            raise ValueError(
                f'{path}: deepest pixel is {valid.max():.4g} m after depth_rescale_factor='
                f'{scale}; the PNG looks like it stores metres, not millimetres (write depth '
                'in mm as uint16, or set depth_rescale_factor=1.0 for files in metres)')
        far = float((valid > self.max_depth).mean())
        if far > self.max_far_fraction:
            raise ValueError(
                f'{path}: {far:.0%} of valid pixels lie beyond max_depth={self.max_depth} m '
                f'after depth_rescale_factor={scale} (median {np.median(valid):.4g} m); the '
                'unit is probably smaller than mm (set depth_rescale_factor accordingly)')
        return results

    def __repr__(self):
        return f'{self.__class__.__name__}(max_depth={self.max_depth}, ' \
               f'min_plausible_max={self.min_plausible_max}, ' \
               f'max_far_fraction={self.max_far_fraction})'
