"""Frozen PE features for label propagation, and building the tracker from a config or arch."""
import os.path as osp
from typing import Optional, Tuple

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from pe_dense.models.backbones import PE
from pe_dense.models.backbones.hub import is_checkpoint_name
from .label_propagation import LabelPropagator

PE_MEAN = (0.5, 0.5, 0.5)  # PE's image transform normalises with mean = std = 0.5
PE_STD = (0.5, 0.5, 0.5)
PROPAGATION_DEFAULTS = dict(layer=-1, size=480, n_last=7, topk=5, radius=12, temperature=0.1)


class PEFeatureExtractor:
    """Frame -> L2-normalised patch tokens of one PE block, as an (h, w, C) map.

    The frame is resized (bilinear, as DINO's protocol) so its short side is ``size`` and the
    long side keeps the aspect ratio; both are floored to a multiple of the patch so the token
    grid tiles the resized frame exactly.
    """

    def __init__(self, model: PE, layer: int = -1, size: int = 480,
                 mean: Tuple[float, ...] = PE_MEAN, std: Tuple[float, ...] = PE_STD):
        if size < model.patch_size:
            raise ValueError(f'size {size} is smaller than the {model.patch_size}-px patch')
        model._normalise_indices([layer])  # IndexError for a block the model does not have
        self.model, self.layer, self.size = model.eval(), layer, size
        self.mean = torch.tensor(mean).view(3, 1, 1)
        self.std = torch.tensor(std).view(3, 1, 1)

    def input_size(self, h: int, w: int) -> Tuple[int, int]:
        """(height, width) the network sees for an h x w frame."""
        p, s = self.model.patch_size, self.size
        short, long = (h, w) if h <= w else (w, h)
        long = max(int(s * long / short) // p * p, p)
        short = s // p * p
        return (short, long) if h <= w else (long, short)

    @torch.no_grad()
    def __call__(self, frame: np.ndarray) -> torch.Tensor:
        if frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f'expected an RGB frame (H, W, 3), got shape {frame.shape}')
        th, tw = self.input_size(*frame.shape[:2])
        img = cv2.resize(frame, (tw, th), interpolation=cv2.INTER_LINEAR)
        x = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float() / 255
        x = ((x - self.mean) / self.std)[None]
        param = next(self.model.parameters())
        tokens, hw = self.model.forward_tokens(x.to(param), [self.layer])
        feat = tokens[0][0, self.model.num_prefix_tokens:].float()
        return F.normalize(feat, dim=-1).reshape(*hw, -1)


def load_settings(config_or_arch: str, options: Optional[dict] = None
                  ) -> Tuple[dict, dict, Optional[str]]:
    """(backbone cfg, propagation settings, work-dir name) from a config file or an arch name;
    ``options`` (``--cfg-options``) override keys, e.g. ``{'backbone.img_size': 224}``."""
    from mmengine.config import Config
    if config_or_arch.endswith('.py'):
        if not osp.isfile(config_or_arch):
            raise FileNotFoundError(f'config {config_or_arch} not found')
        cfg = Config.fromfile(config_or_arch)
        name = osp.splitext(osp.basename(config_or_arch))[0]
        if 'backbone' not in cfg and 'pe_backbone' in cfg:  # the backbone bases' name
            cfg.backbone = cfg.pe_backbone
    else:
        cfg = Config(dict(backbone=dict(type='PE', arch=config_or_arch)))
        name = config_or_arch
    if options:
        cfg.merge_from_dict(options)
    backbone = cfg.get('backbone')
    if backbone is None:
        raise KeyError(f'{config_or_arch}: defines neither `backbone` nor `pe_backbone`')
    prop = dict(PROPAGATION_DEFAULTS, **cfg.get('propagation', {}))
    unknown = sorted(set(prop) - set(PROPAGATION_DEFAULTS))
    if unknown:
        raise KeyError(f'{config_or_arch}: unknown propagation keys {unknown}; known: '
                       f'{sorted(PROPAGATION_DEFAULTS)}')
    return backbone.to_dict() if hasattr(backbone, 'to_dict') else dict(backbone), prop, name


def build_backbone(backbone: dict, checkpoint: Optional[str] = None,
                   random_init: bool = False, device=None) -> PE:
    """A frozen PE in eval mode with weights from ``checkpoint`` or the cfg's init_cfg."""
    from mmengine.registry import MODELS
    backbone = dict(backbone, frozen=True)
    if checkpoint:
        backbone['init_cfg'] = dict(type='Pretrained', checkpoint=checkpoint)
    init = backbone.get('init_cfg') or {}
    if random_init:
        backbone['init_cfg'] = None
    elif init.get('type') != 'Pretrained':
        raise ValueError('no PE weights given: pass a checkpoint (or random_init=True / '
                         '--random-init for a smoke run)')
    elif not osp.isfile(init['checkpoint']) and not is_checkpoint_name(init['checkpoint']):
        raise FileNotFoundError(f"PE checkpoint {init['checkpoint']} (the config's init_cfg) "
                                'not found: pass --checkpoint FILE, or --random-init for a '
                                'smoke run with random weights')
    model = MODELS.build(backbone)
    if not random_init:  # random weights are set at construction; init_weights only loads
        model.init_weights()
    return (model.to(device) if device is not None else model).eval()


def build_propagator(backbone: PE, layer: int = -1, size: int = 480, n_last: int = 7,
                     topk: int = 5, radius: int = 12, temperature: float = 0.1
                     ) -> LabelPropagator:
    """The DINO-protocol propagator over PE tokens of block ``layer`` at short side ``size``."""
    return LabelPropagator(PEFeatureExtractor(backbone, layer, size), n_last=n_last, topk=topk,
                           radius=radius, temperature=temperature)
