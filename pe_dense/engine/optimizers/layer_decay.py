"""Layer-wise learning-rate decay for PE backbones (BEiT / ViTDet recipe; the PE Mask R-CNN
configs, UperNet / DPT fine-tuning; for DETA only the opt-in ``_lrd09`` variant, which the
released DETA run does not apply).

Parameters deeper in the tower keep more of the base learning rate: a parameter of layer id
``i`` gets ``lr * rate ** (num_layers + 1 - i)``, where the stem (patch conv, cls token,
position embedding, ln_pre) is layer 0, block ``k`` is layer ``k + 1`` and everything after
the tower (ln_post, neck, heads) is layer ``num_layers + 1``.
"""
import re
from typing import List

from mmengine.logging import print_log
from mmengine.optim import DefaultOptimWrapperConstructor
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS
from torch import nn

_STEM = ('conv1.', 'class_embedding', 'positional_embedding', 'ln_pre.')
_NO_DECAY = ('class_embedding', 'positional_embedding', 'attn_pool.probe')


def layer_id(name: str, num_layers: int, prefix: str = 'backbone.') -> int:
    """Layer id of a parameter name, for a PE backbone under ``prefix``."""
    if not name.startswith(prefix):
        return num_layers + 1
    name = name[len(prefix):]
    if name.startswith(_STEM):
        return 0
    block = re.match(r'transformer\.resblocks\.(\d+)\.', name)
    if block:
        return int(block.group(1)) + 1
    return num_layers + 1


def count_blocks(module: nn.Module, prefix: str = 'backbone.') -> int:
    """Number of PE blocks under ``prefix`` (when ``num_layers`` is not given)."""
    pattern = re.compile(re.escape(prefix) + r'transformer\.resblocks\.(\d+)\.')
    ids = [int(m.group(1)) for n, _ in module.named_parameters() if (m := pattern.match(n))]
    return max(ids) + 1 if ids else 0


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class LayerDecayOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """``paramwise_cfg=dict(layer_decay_rate=0.9, num_layers=50)``; 1-D params get no decay.

    ``decay_all_params=True`` decays every parameter (norms, biases, position embedding) with
    the base weight decay, as detectron2 does with ``weight_decay_norm=None`` and no overrides
    (the official PE Mask R-CNN configs).

    Other ``paramwise_cfg`` keys (``custom_keys``' ``lr_mult`` / ``decay_mult``) multiply on
    top of the layer-wise scale.
    """

    def __init__(self, optim_wrapper_cfg: dict, paramwise_cfg: dict = None):
        # Kept in paramwise_cfg on purpose: an empty one makes the parent skip add_params.
        paramwise_cfg = dict(paramwise_cfg or {})
        paramwise_cfg.setdefault('layer_decay_rate', 0.9)
        self.decay_rate = paramwise_cfg['layer_decay_rate']
        self.num_layers = paramwise_cfg.get('num_layers')
        self.backbone_prefix = paramwise_cfg.get('backbone_prefix', 'backbone.')
        self.decay_all = paramwise_cfg.get('decay_all_params', False)
        super().__init__(optim_wrapper_cfg, paramwise_cfg)

    def add_params(self, params: List[dict], module: nn.Module, prefix: str = '', **kwargs):
        num_layers = self.num_layers
        if num_layers is None:
            num_layers = count_blocks(module, self.backbone_prefix)
        custom = self.paramwise_cfg.get('custom_keys', {})
        base_lr = self.base_lr
        base_wd = self.base_wd or 0.
        summary = {}
        for name, param in module.named_parameters():
            if not param.requires_grad:
                continue
            lid = layer_id(name, num_layers, self.backbone_prefix)
            scale = self.decay_rate ** (num_layers + 1 - lid)
            no_decay = not self.decay_all and (param.ndim == 1 or name.endswith(_NO_DECAY))
            lr_mult, decay_mult = 1., 1.
            for key, opts in custom.items():
                if key in name:
                    lr_mult = opts.get('lr_mult', 1.)
                    decay_mult = opts.get('decay_mult', 1.)
                    break
            group = dict(params=[param], lr=base_lr * scale * lr_mult,
                         weight_decay=0. if no_decay else base_wd * decay_mult)
            params.append(group)
            summary.setdefault(lid, group['lr'])
        lrs = ', '.join(f'{k}: {v:.3g}' for k, v in sorted(summary.items()))
        print_log(f'LayerDecay: rate {self.decay_rate}, {num_layers} layers; lr by layer id: {lrs}',
                  logger='current')
