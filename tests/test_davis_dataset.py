"""DAVIS layout reader: indexing, palette PNG round trip, and clear errors on broken folders."""
import os
import os.path as osp

import numpy as np
import pytest
from PIL import Image

from pe_dense.datasets.davis import (DavisDataError, DavisDataset, davis_palette,
                                     read_label_png, read_palette, write_label_png)


def write_davis(root, seqs, split='val', size=(24, 32)):
    """A DAVIS 2017 folder: ``seqs`` maps a name to (num_frames, list of annotated indices)."""
    for name, (frames, annotated) in seqs.items():
        for t in range(frames):
            img_dir = osp.join(root, 'JPEGImages', '480p', name)
            os.makedirs(img_dir, exist_ok=True)
            Image.fromarray(np.full((*size, 3), 10 * t, np.uint8)).save(
                osp.join(img_dir, f'{t:05d}.jpg'))
        for t in annotated:
            lab = np.zeros(size, np.uint8)
            lab[4:12, 4 + t:12 + t] = 1
            write_label_png(osp.join(root, 'Annotations', '480p', name, f'{t:05d}.png'), lab)
    os.makedirs(osp.join(root, 'ImageSets', '2017'), exist_ok=True)
    with open(osp.join(root, 'ImageSets', '2017', f'{split}.txt'), 'w') as fh:
        fh.write(''.join(n + '\n' for n in seqs))


def test_index_and_annotations(tmp_path):
    write_davis(str(tmp_path), {'a': (4, range(4)), 'b': (3, range(3))})
    ds = DavisDataset(str(tmp_path))
    assert ds.names == ['a', 'b'] and len(ds) == 2
    seq = ds['a']
    assert seq.frame_ids == ['00000', '00001', '00002', '00003']
    gt = ds.load_annotations(seq)
    assert gt.shape == (4, 24, 32) and set(np.unique(gt)) == {0, 1}
    assert DavisDataset(str(tmp_path), sequences=['b']).names == ['b']


def test_palette_png_roundtrip(tmp_path):
    pal = davis_palette()
    assert pal[3:6] == [128, 0, 0] and pal[6:9] == [0, 128, 0] and len(pal) == 768
    lab = np.arange(12, dtype=np.uint8).reshape(3, 4)
    path = str(tmp_path / 'm.png')
    write_label_png(path, lab)
    np.testing.assert_array_equal(read_label_png(path), lab)
    assert read_palette(path)[:9] == pal[:9]


def test_count_mismatch_names_sequence_and_frames(tmp_path):
    write_davis(str(tmp_path), {'bear': (5, [0, 1, 2, 4])})
    with pytest.raises(DavisDataError, match=r"bear: 4 annotations for 5 frames.*'00003'"):
        DavisDataset(str(tmp_path))['bear']
    # test-dev style (first frame only) is fine when full annotations are not required
    seq = DavisDataset(str(tmp_path), full_annotations=False)['bear']
    assert len(seq.annotations) == 4


def test_missing_first_annotation(tmp_path):
    write_davis(str(tmp_path), {'dog': (3, [1, 2])})
    with pytest.raises(DavisDataError, match=r'dog: first-frame annotation .*00000.png'):
        DavisDataset(str(tmp_path), full_annotations=False)['dog']


def test_missing_list_unknown_sequence_and_colour_png(tmp_path):
    with pytest.raises(DavisDataError, match='val.txt'):
        DavisDataset(str(tmp_path))
    write_davis(str(tmp_path), {'cat': (3, range(3))})
    with pytest.raises(DavisDataError, match=r"\['horse'\] are not in"):
        DavisDataset(str(tmp_path), sequences=['horse'])
    rgb = str(tmp_path / 'rgb.png')
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(rgb)
    with pytest.raises(DavisDataError, match=r"rgb.png: mode 'RGB'"):
        read_label_png(rgb)
