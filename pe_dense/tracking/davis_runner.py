"""Run label propagation over a DAVIS split and write the masks in the results layout."""
import os.path as osp
from typing import Optional

import cv2
import numpy as np
from tqdm import tqdm

from pe_dense.datasets.davis import (DavisDataError, DavisDataset, read_label_png,
                                     read_palette, write_label_png)
from .label_propagation import LabelPropagator


def read_rgb(path: str) -> np.ndarray:
    """An RGB uint8 frame; unreadable files raise naming the path."""
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise DavisDataError(f'{path}: cannot decode image')
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


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
                    raise DavisDataError(f'sequence {seq.name}: frame {fid} is '
                                         f'{img.shape[:2]}, first annotation is {first.shape}')
                yield img

        for fid, pred in zip(seq.frame_ids, propagator(frames(), first)):
            write_label_png(osp.join(out_dir, seq.name, f'{fid}.png'), pred, pal)
            count += 1
            bar.update()
            bar.set_postfix_str(seq.name)
    bar.close()
    return count
