"""Fuzz: every hostile image file is decoded correctly or rejected with its name; loader skips."""
import numpy as np
import pytest

from pe_dense.datasets.robust_loading import ImageLoadError, LoadImageRobust, read_image
from tests.fuzz.broken_images import write_broken_images

MAX_PIXELS = 100_000  # the 400x300 'bomb' exceeds it


@pytest.fixture
def broken(tmp_path):
    return tmp_path, write_broken_images(tmp_path)


def test_each_file_decodes_or_names_itself(broken):
    root, expect = broken
    for name, (outcome, shape) in expect.items():
        path = str(root / name)
        if outcome == 'ok':
            img = read_image(path, MAX_PIXELS)
            assert img.dtype == np.uint8 and img.shape == (*shape, 3), name
        else:
            with pytest.raises(ImageLoadError, match=name):
                read_image(path, MAX_PIXELS)


def test_sixteen_bit_is_scaled_not_clipped(broken):
    root, _ = broken
    img = read_image(str(root / 'depth16.png'), MAX_PIXELS)
    assert img.max() == 255 and len(np.unique(img)) > 50


def test_transform_skips_and_counts_or_raises(broken):
    root, expect = broken
    load = LoadImageRobust(max_pixels=MAX_PIXELS)
    out = {n: load(dict(img_path=str(root / n))) for n in expect}
    bad = [n for n, (o, _) in expect.items() if o == 'error']
    assert [n for n, r in out.items() if r is None] == bad and load.skipped == len(bad)
    with pytest.raises(ImageLoadError, match='truncated.jpg'):
        LoadImageRobust(on_error='raise')(dict(img_path=str(root / 'truncated.jpg')))
    with pytest.raises(ValueError, match='on_error'):
        LoadImageRobust(on_error='ignore')
