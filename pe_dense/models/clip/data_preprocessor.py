"""Batches images/videos for PE: stack, scale to [0, 1], normalise with PE's mean = std = 0.5.

``size`` (set by ProgressiveResolutionHook in 'preprocessor' mode) squash-resizes training
batches on the model's device; validation and test batches keep the test pipeline's size.
"""
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from mmengine.model import BaseDataPreprocessor
from mmengine.registry import MODELS


@MODELS.register_module()
class ClipDataPreprocessor(BaseDataPreprocessor):

    def __init__(self, mean: Sequence[float] = (127.5, 127.5, 127.5),
                 std: Sequence[float] = (127.5, 127.5, 127.5), size: Optional[int] = None,
                 non_blocking: bool = False):
        super().__init__(non_blocking)
        self.register_buffer('mean', torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1), False)
        self.register_buffer('std', torch.tensor(std, dtype=torch.float32).view(-1, 1, 1), False)
        self.size = size

    def _resize(self, x: torch.Tensor) -> torch.Tensor:
        if not self.size or tuple(x.shape[-2:]) == (self.size, self.size):
            return x
        lead = x.shape[:-3]
        x = F.interpolate(x.flatten(0, -4), size=(self.size, self.size), mode='bilinear',
                          align_corners=False, antialias=True)
        return x.view(*lead, *x.shape[-3:])

    def forward(self, data: dict, training: bool = False) -> dict:
        data = self.cast_data(data)
        inputs = data['inputs']
        if isinstance(inputs, (list, tuple)):
            shapes = {tuple(t.shape) for t in inputs}
            if len(shapes) != 1:
                raise ValueError(f'ClipDataPreprocessor: inputs of different shapes {sorted(shapes)}; '
                                 'resize every sample to one size in the pipeline')
            inputs = torch.stack(list(inputs))
        if inputs.ndim not in (4, 5) or inputs.shape[-3] != 3:
            raise ValueError('ClipDataPreprocessor: inputs must be (B, 3, H, W) images or '
                             f'(B, T, 3, H, W) videos, got {tuple(inputs.shape)}')
        x = (inputs.float() - self.mean) / self.std
        x = self._resize(x) if training else x
        return dict(inputs=x, data_samples=data.get('data_samples'))
