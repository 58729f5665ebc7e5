"""Frozen PE features of one picture: what `tools/demo_features.py` prints."""
from typing import Dict, List, Sequence

import numpy as np
import torch
import torch.nn.functional as F

# PE's own image transform: squash-resize (bilinear) and normalise with mean = std = 0.5.
# (The official DETA detector instead normalises with ImageNet statistics.)
PE_MEAN = (0.5, 0.5, 0.5)
PE_STD = (0.5, 0.5, 0.5)


def load_picture(spec: str) -> np.ndarray:
    """An RGB uint8 array from a file path, or ``skimage:<name>`` for scikit-image's samples."""
    if spec.startswith('skimage:'):
        import skimage.data
        name = spec.split(':', 1)[1]
        if not hasattr(skimage.data, name):
            raise ValueError(f'scikit-image has no sample picture {name!r}')
        img = getattr(skimage.data, name)()
    else:
        from PIL import Image, UnidentifiedImageError
        try:
            with Image.open(spec) as im:
                img = np.asarray(im.convert('RGB'))
        except (FileNotFoundError, UnidentifiedImageError, OSError) as err:
            raise ValueError(f'Cannot read picture {spec}: {err}') from err
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    return np.ascontiguousarray(img[..., :3])


def to_input(img: np.ndarray, size: int) -> torch.Tensor:
    """Square bilinear resize and (x - 0.5) / 0.5, as PE's own eval transform."""
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255.
    x = F.interpolate(x, size=(size, size), mode='bilinear', align_corners=False, antialias=True)
    mean = torch.tensor(PE_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(PE_STD).view(1, 3, 1, 1)
    return (x - mean) / std


@torch.no_grad()
def layer_features(model, x: torch.Tensor, layers: Sequence[int]) -> Dict[int, torch.Tensor]:
    """NCHW maps of the requested blocks (negatives allowed)."""
    tokens, hw = model.forward_tokens(x, layers)
    return {i: model.to_map(t, hw) for i, t in zip(layers, tokens)}


def summary_rows(features: Dict[int, torch.Tensor]) -> List[str]:
    rows = [f"{'layer':>6} {'shape':>22} {'mean':>9} {'std':>9} {'token cos (mean)':>17}"]
    for layer, fmap in features.items():
        tokens = F.normalize(fmap.flatten(2)[0].t(), dim=-1)
        cos = (tokens @ tokens.t()).mean().item()
        rows.append(f'{layer:>6} {str(tuple(fmap.shape)):>22} {fmap.mean().item():>9.4f} '
                    f'{fmap.std().item():>9.4f} {cos:>17.4f}')
    return rows
