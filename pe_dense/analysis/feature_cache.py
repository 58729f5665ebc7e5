"""Frozen per-layer feature maps of an image list, cached on disk (fp16).

A sweep scores every layer on several tasks; extracting features dominates its cost, so each
(model weights, layer, input size, normalisation, image list) is computed once and reused
across tasks and runs. The cache key hashes the weights and the image *contents*, so renamed
copies of a dataset hit the cache and retrained weights never do.

Layout: ``<root>/<model key>/<images key>/layer_<k>.npy`` (N, C, h, w) float16, plus
``meta.json`` naming the model and listing the images.
"""
import hashlib
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

PE_MEAN = (0.5, 0.5, 0.5)  # PE's own transform: (x - 0.5) / 0.5


class FeatureSource:
    """A frozen model seen as ``extract(images, layers) -> [(B, C, h, w)]`` per layer.

    Subclasses set ``name``, ``num_layers``, ``patch_size``, ``mean``, ``std`` and implement
    ``_maps``; ``forward_calls`` counts model passes so callers can check cache reuse.
    """

    name = 'model'
    num_layers = 0
    patch_size = 16
    mean: Tuple[float, ...] = PE_MEAN
    std: Tuple[float, ...] = PE_MEAN

    def __init__(self):
        self.forward_calls = 0

    def fingerprint(self) -> str:
        """Hash identifying the weights (and anything else that changes the features)."""
        raise NotImplementedError

    def _maps(self, x: torch.Tensor, layers: Sequence[int]) -> List[torch.Tensor]:
        raise NotImplementedError

    def check_layers(self, layers: Sequence[int]) -> List[int]:
        out = []
        for k in layers:
            if not -self.num_layers <= k < self.num_layers:
                raise IndexError(f'{self.name}: layer {k} outside its {self.num_layers} layers')
            out.append(k % self.num_layers)
        return out

    @torch.no_grad()
    def extract(self, x: torch.Tensor, layers: Sequence[int]) -> List[torch.Tensor]:
        self.forward_calls += 1
        return [m.float() for m in self._maps(x, self.check_layers(layers))]


def state_dict_hash(module: torch.nn.Module, extra: str = '') -> str:
    """sha1 over parameter/buffer names, shapes and bytes (plus ``extra`` settings)."""
    h = hashlib.sha1(extra.encode())
    for key, t in module.state_dict().items():
        h.update(key.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


class PESource(FeatureSource):
    """Patch-token maps of a PE's blocks (one ``forward_tokens`` pass for all layers)."""

    def __init__(self, model, name: str = 'PE'):
        super().__init__()
        self.model = model.eval()
        self.name, self.num_layers, self.patch_size = name, model.depth, model.patch_size

    def fingerprint(self) -> str:
        extra = f'PE|{self.model.pos_embed_mode}|{self.model.rope.mode}|{self.model.window_size}'
        return state_dict_hash(self.model, extra)

    def _maps(self, x, layers):
        x = x.to(next(self.model.parameters()))
        tokens, hw = self.model.forward_tokens(x, layers)
        return [self.model.to_map(t, hw) for t in tokens]


class TimmSource(FeatureSource):
    """A timm ViT through ``forward_intermediates`` (the comparison baseline)."""

    def __init__(self, model, name: str = 'timm'):
        super().__init__()
        if not hasattr(model, 'forward_intermediates'):
            raise TypeError(f'{type(model).__name__} has no forward_intermediates (need a timm '
                            'ViT-style model)')
        self.model = model.eval()
        self.name = name
        self.num_layers = len(model.blocks)
        patch = model.patch_embed.patch_size
        self.patch_size = patch[0] if isinstance(patch, (tuple, list)) else patch
        cfg = getattr(model, 'pretrained_cfg', None) or {}
        self.mean = tuple(cfg.get('mean', PE_MEAN))
        self.std = tuple(cfg.get('std', PE_MEAN))

    def fingerprint(self) -> str:
        return state_dict_hash(self.model, f'timm|{type(self.model).__name__}')

    def _maps(self, x, layers):
        x = x.to(next(self.model.parameters()))
        return self.model.forward_intermediates(x, indices=list(layers), output_fmt='NCHW',
                                                intermediates_only=True)


def read_rgb(path: str) -> np.ndarray:
    """RGB uint8 (H, W, 3); unreadable files raise naming the file."""
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert('RGB'))
    except (FileNotFoundError, UnidentifiedImageError, OSError) as err:
        raise ValueError(f'cannot read image {path}: {err}') from err


def to_tensor(img: np.ndarray, size: Tuple[int, int], mean, std) -> torch.Tensor:
    """(3, H, W) float: bilinear resize to ``size`` (h, w) and normalise."""
    x = torch.from_numpy(np.array(img, dtype=np.uint8)).permute(2, 0, 1)[None].float() / 255.
    x = F.interpolate(x, size=tuple(size), mode='bilinear', align_corners=False, antialias=True)
    return ((x[0] - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1))


def files_hash(paths: Sequence[str]) -> str:
    """sha1 of the file contents in order (missing files raise naming the path)."""
    h = hashlib.sha1()
    for p in paths:
        if not osp.isfile(p):
            raise FileNotFoundError(f'image {p} not found')
        with open(p, 'rb') as fh:
            h.update(hashlib.sha1(fh.read()).digest())
    return h.hexdigest()


class FeatureCache:
    """Disk cache of per-layer maps; ``hits`` / ``misses`` count layer look-ups."""

    def __init__(self, root: str, batch_size: int = 8, progress: bool = True):
        self.root, self.batch_size, self.progress = root, batch_size, progress
        self.hits = self.misses = 0
        self._model_keys: Dict[int, str] = {}

    def model_key(self, source: FeatureSource) -> str:
        if id(source) not in self._model_keys:
            self._model_keys[id(source)] = source.fingerprint()[:20]
        return self._model_keys[id(source)]

    def folder(self, source: FeatureSource, paths: Sequence[str], size: Tuple[int, int]) -> str:
        norm = f'{size[0]}x{size[1]}|{tuple(source.mean)}|{tuple(source.std)}'
        key = hashlib.sha1((files_hash(paths) + norm).encode()).hexdigest()[:20]
        return osp.join(self.root, self.model_key(source), f'{key}_{size[0]}x{size[1]}')

    def get(self, source: FeatureSource, paths: Sequence[str], size: Tuple[int, int],
            layers: Sequence[int]) -> Dict[int, np.ndarray]:
        """{layer: (N, C, h, w) float16 array} for the images at ``paths`` resized to ``size``."""
        if not paths:
            raise ValueError('FeatureCache.get: empty image list')
        layers = source.check_layers(layers)
        folder = self.folder(source, paths, size)
        files = {k: osp.join(folder, f'layer_{k}.npy') for k in layers}
        todo = [k for k in layers if not osp.isfile(files[k])]
        self.hits += len(layers) - len(todo)
        self.misses += len(todo)
        if todo:
            self._compute(source, paths, size, todo, folder, files)
        return {k: np.load(files[k], mmap_mode='r') for k in layers}

    def _compute(self, source, paths, size, layers, folder, files):
        """One pass over the images for all ``layers``, streamed into fp16 memmaps."""
        os.makedirs(folder, exist_ok=True)
        tmp = {k: files[k] + '.tmp.npy' for k in layers}
        out = {}
        starts = range(0, len(paths), self.batch_size)
        for s in tqdm(starts, desc=f'{source.name} features {size[0]}x{size[1]}',
                      disable=not self.progress, leave=False):
            batch = torch.stack([to_tensor(read_rgb(p), size, source.mean, source.std)
                                 for p in paths[s:s + self.batch_size]])
            for k, m in zip(layers, source.extract(batch, layers)):
                if k not in out:
                    out[k] = np.lib.format.open_memmap(tmp[k], mode='w+', dtype=np.float16,
                                                       shape=(len(paths), *m.shape[1:]))
                out[k][s:s + len(m)] = m.cpu().numpy().astype(np.float16)
        for k in layers:
            out[k].flush()
            del out[k]
            os.replace(tmp[k], files[k])  # atomic: a killed run never leaves a half file
        meta = dict(model=source.name, size=list(size), images=[osp.abspath(p) for p in paths])
        with open(osp.join(folder, 'meta.json'), 'w') as fh:
            json.dump(meta, fh)


def build_source(arch: Optional[str] = None, timm_name: Optional[str] = None,
                 checkpoint: Optional[str] = None, img_size: Optional[int] = None,
                 device=None) -> FeatureSource:
    """A PE (registered arch name) or timm ViT, random weights unless ``checkpoint``."""
    if (arch is None) == (timm_name is None):
        raise ValueError('give exactly one of a PE arch or a timm model name')
    from pe_dense.models.backbones.hub import is_checkpoint_name
    if checkpoint is not None and not osp.isfile(checkpoint) and not is_checkpoint_name(checkpoint):
        raise FileNotFoundError(f'checkpoint {checkpoint} not found')
    if arch is not None:
        from pe_dense.models.backbones import PE
        model = PE(arch=arch, img_size=img_size, frozen=True)
        if checkpoint:
            model.load_pretrained(checkpoint)
        name = arch if isinstance(arch, str) else 'PE'
        source = PESource(model, name)
    else:
        import timm
        kw = dict(img_size=img_size) if img_size else {}
        model = timm.create_model(timm_name, pretrained=False, dynamic_img_size=True, **kw)
        if checkpoint:
            from pe_dense.models.backbones.checkpoint import load_checkpoint_file
            sd = load_checkpoint_file(checkpoint)
            sd = sd.get('state_dict', sd.get('model', sd)) if isinstance(sd, dict) else sd
            missing, unexpected = model.load_state_dict(sd, strict=False)
            if missing:
                raise KeyError(f'{checkpoint}: {len(missing)} {timm_name} weights missing, '
                               f'e.g. {missing[:3]}')
        source = TimmSource(model, timm_name)
    if device is not None:
        source.model.to(device)
    return source
