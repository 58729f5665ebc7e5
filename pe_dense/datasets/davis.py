"""DAVIS 2017 on-disk layout: sequence lists, frames, indexed-PNG annotations.

    <root>/JPEGImages/<res>/<seq>/00000.jpg
    <root>/Annotations/<res>/<seq>/00000.png   (palette PNG, 0 = background, 1..K objects)
    <root>/ImageSets/<year>/<split>.txt

Problems are reported with the sequence and frame they concern, because a silently short
sequence changes J&F without any other sign.
"""
import os
import os.path as osp
from dataclasses import dataclass
from typing import List, Optional, Sequence

import numpy as np
from PIL import Image


class DavisDataError(ValueError):
    """A DAVIS folder that does not follow the layout (names the sequence and frame)."""


@dataclass
class DavisSequence:
    """One video: frame ids ('00000', ...), image paths and annotation paths (same order)."""
    name: str
    frame_ids: List[str]
    images: List[str]
    annotations: List[str]


def davis_palette() -> List[int]:
    """The 256-colour VOC/DAVIS palette, flat [r, g, b, ...] (id 1 = (128, 0, 0))."""
    pal = []
    for i in range(256):
        rgb = [0, 0, 0]
        for bit in range(8):
            for ch in range(3):
                rgb[ch] |= ((i >> (3 * bit + ch)) & 1) << (7 - bit)
        pal += rgb
    return pal


def read_label_png(path: str) -> np.ndarray:
    """An id map from an indexed ('P') or grey ('L') PNG; colour PNGs are refused."""
    if not osp.isfile(path):
        raise DavisDataError(f'{path}: annotation/mask file not found')
    try:
        with Image.open(path) as im:
            if im.mode not in ('P', 'L'):
                raise DavisDataError(f'{path}: mode {im.mode!r}; DAVIS masks are indexed '
                                     '(palette) or single-channel label PNGs, one id per pixel')
            return np.array(im, dtype=np.uint8)
    except DavisDataError:
        raise
    except Exception as err:  # noqa: BLE001 - PIL: UnidentifiedImageError, truncation OSError
        raise DavisDataError(f'{path}: cannot decode annotation PNG '
                             f'({type(err).__name__}: {err})') from err


def read_palette(path: str) -> Optional[List[int]]:
    """The palette of an indexed PNG (None for other modes)."""
    with Image.open(path) as im:
        return im.getpalette() if im.mode == 'P' else None


def write_label_png(path: str, labels: np.ndarray, palette: Optional[Sequence[int]] = None):
    """Save an id map as an indexed PNG (the DAVIS palette unless one is given)."""
    if labels.ndim != 2:
        raise ValueError(f'{path}: label map must be 2-D, got shape {labels.shape}')
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    im = Image.fromarray(labels.astype(np.uint8), mode='P')
    im.putpalette(list(palette) if palette is not None else davis_palette())
    im.save(path)


def _stems(folder: str, ext: str) -> List[str]:
    return sorted(osp.splitext(f)[0] for f in os.listdir(folder) if f.lower().endswith(ext))


class DavisDataset:
    """Index of a DAVIS 2017 split.

    Args:
        root: dataset root (holding JPEGImages/, Annotations/, ImageSets/).
        split: name of the list in ``ImageSets/<year>/``.
        full_annotations: every frame must be annotated (DAVIS train/val); when False
            (test-dev/challenge) only the first frame is required.
        sequences: evaluate only these names (must be in the split).
    """

    def __init__(self, root: str, split: str = 'val', year: str = '2017',
                 resolution: str = '480p', full_annotations: bool = True,
                 sequences: Optional[Sequence[str]] = None):
        self.root, self.split, self.full_annotations = root, split, full_annotations
        self.image_dir = osp.join(root, 'JPEGImages', resolution)
        self.anno_dir = osp.join(root, 'Annotations', resolution)
        list_file = osp.join(root, 'ImageSets', year, f'{split}.txt')
        if not osp.isfile(list_file):
            raise DavisDataError(f'{list_file}: sequence list not found (is {root!r} a DAVIS '
                                 f'{year} root?)')
        with open(list_file) as fh:
            names = [ln.strip() for ln in fh if ln.strip()]
        if sequences is not None:
            unknown = sorted(set(sequences) - set(names))
            if unknown:
                raise DavisDataError(f'sequences {unknown} are not in {list_file}')
            names = [n for n in names if n in set(sequences)]
        self.names = names

    def __len__(self) -> int:
        return len(self.names)

    def __iter__(self):
        return (self[n] for n in self.names)

    def __getitem__(self, name: str) -> DavisSequence:
        img_dir, ann_dir = osp.join(self.image_dir, name), osp.join(self.anno_dir, name)
        if not osp.isdir(img_dir):
            raise DavisDataError(f'sequence {name}: image folder {img_dir} not found')
        frames = _stems(img_dir, '.jpg')
        if not frames:
            raise DavisDataError(f'sequence {name}: no .jpg frames in {img_dir}')
        annos = _stems(ann_dir, '.png') if osp.isdir(ann_dir) else []
        if not annos or annos[0] != frames[0]:
            raise DavisDataError(f'sequence {name}: first-frame annotation '
                                 f'{osp.join(ann_dir, frames[0] + ".png")} is missing')
        if self.full_annotations and annos != frames:
            missing = sorted(set(frames) - set(annos))
            extra = sorted(set(annos) - set(frames))
            raise DavisDataError(
                f'sequence {name}: {len(annos)} annotations for {len(frames)} frames '
                f'(frames without annotation: {missing[:5]}, annotations without frame: '
                f'{extra[:5]}; first missing file: '
                f'{osp.join(ann_dir, (missing or extra)[0] + (".png" if missing else ".jpg"))})')
        return DavisSequence(
            name, frames, [osp.join(img_dir, f + '.jpg') for f in frames],
            [osp.join(ann_dir, f + '.png') for f in annos])

    def load_annotations(self, seq: DavisSequence) -> np.ndarray:
        """(T, H, W) id maps of every annotated frame; sizes must agree."""
        maps = [read_label_png(p) for p in seq.annotations]
        for fid, path, m in zip(seq.frame_ids, seq.annotations, maps):
            if m.shape != maps[0].shape:
                raise DavisDataError(f'sequence {seq.name}: frame {fid} annotation {path} is '
                                     f'{m.shape}, frame {seq.frame_ids[0]} is {maps[0].shape}')
        return np.stack(maps)
