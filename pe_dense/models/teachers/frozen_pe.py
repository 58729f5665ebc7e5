"""Frozen PE run only up to one intermediate layer (self-distillation target)."""
from typing import Union

import torch
import torch.nn as nn
from mmengine.registry import MODELS


@MODELS.register_module()
class FrozenPETeacher(nn.Module):
    """Tokens of block ``layer`` of a frozen PE; blocks past ``layer`` never run.

    Args:
        backbone: PE config (``type='PE'`` implied), usually with a Pretrained init_cfg.
        layer: 0-based block index (negatives count from the end). The paper counts layers
            from 1, so its PE-Core-G "layer 41" is ``layer=40`` (docs/align.md).
    """

    def __init__(self, backbone: dict, layer: int = 40):
        super().__init__()
        cfg = dict(backbone)
        cfg.setdefault('type', 'PE')
        cfg['frozen'] = True
        self.pe = MODELS.build(cfg)
        depth = self.pe.depth
        if not -depth <= layer < depth:
            raise ValueError(f'FrozenPETeacher: teacher layer {layer} is outside the teacher PE '
                             f'({depth} blocks, valid -{depth}..{depth - 1})')
        self.layer = layer % depth

    def init_weights(self):
        self.pe.init_weights()

    def train(self, mode: bool = True):
        return super().train(False)

    @property
    def embed_dim(self) -> int:
        return self.pe.embed_dim

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> Union[torch.Tensor, tuple]:
        """Normalised images -> (patch tokens (B, H*W, C), (gh, gw))."""
        tokens, hw = self.pe.forward_tokens(x, [self.layer])
        return tokens[0][:, self.pe.num_prefix_tokens:], hw
