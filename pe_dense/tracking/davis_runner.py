"""Run label propagation over a DAVIS split and write the masks in the results layout."""
import os.path as osp
from typing import Optional

import numpy as np
from tqdm import tqdm

from pe_dense.datasets.davis import (DavisDataError, DavisDataset, read_label_png,
                                     read_palette, write_label_png)
from pe_dense.datasets.robust_loading import ImageLoadError, read_image
from .label_propagation import LabelPropagator


def read_rgb(path: str) -> np.ndarray:
    """An RGB uint8 frame, upright per EXIF; unreadable (truncated, non-image) files raise
    naming the path (PIL via read_image: OpenCV would grey-fill a truncated JPEG)."""
    try:
        return read_image(path)
    except ImageLoadError as err:
        raise DavisDataError(str(err)) from err


def propagate_davis(dataset: DavisDataset, propagator: LabelPropagator, out_dir: str,
                    progress: bool = True, palette: Optional[list] = None) -> int:
    """Write ``out_dir/<sequence>/<frame>.png`` for every frame; returns the frame count.

    Masks use the palette of each sequence's first annotation (as DAVIS results do), or
    ``palette`` when given.
    """
    seqs = [dataset[n] for n in dataset.names]  # validates every sequence before running
    bar = tqdm(total=sum(len(s.frame_ids) for s in seqs), desc='propagate', unit='frame',
               disable=not progress)
    count = 0
    for seq in seqs:
        first = read_label_png(seq.annotations[0])
        pal = palette or read_palette(seq.annotations[0])

        def frames():
            for fid, path in zip(seq.frame_ids, seq.images):
                img = read_rgb(path)
                if img.shape[:2] != first.shape:
                    raise DavisDataError(f'sequence {seq.name}: frame {fid} ({path}) is '
                                         f'{img.shape[:2]}, first annotation is {first.shape}')
                yield img

        for fid, pred in zip(seq.frame_ids, propagator(frames(), first)):
            write_label_png(osp.join(out_dir, seq.name, f'{fid}.png'), pred, pal)
            count += 1
            bar.update()
            bar.set_postfix_str(seq.name)
    bar.close()
    return count
