"""Generators of hostile image files, written into a (pytest tmp) directory at test time.

Each entry: name -> (expected outcome, expected (H, W) or None). 'ok' means it must decode
to RGB of that shape; 'error' means a clear ImageLoadError naming the file.
"""
import io

import numpy as np
from PIL import Image


def _jpeg_bytes(arr, **kw):
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format='JPEG', **kw)
    return buf.getvalue()


def write_broken_images(root):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (20, 30, 3), dtype=np.uint8)
    expect = {}
    full = _jpeg_bytes(rgb)
    (root / 'truncated.jpg').write_bytes(full[: len(full) // 2])
    expect['truncated.jpg'] = ('error', None)
    (root / 'not_an_image.jpg').write_text('hello, I am text')
    expect['not_an_image.jpg'] = ('error', None)
    (root / 'empty.png').write_bytes(b'')
    expect['empty.png'] = ('error', None)
    Image.fromarray(rgb[..., 0]).save(root / 'gray.png')
    expect['gray.png'] = ('ok', (20, 30))
    Image.fromarray(np.dstack([rgb, rgb[..., :1]])).save(root / 'rgba.png')
    expect['rgba.png'] = ('ok', (20, 30))
    Image.fromarray(rng.integers(0, 65535, (20, 30)).astype(np.uint16)).save(root / 'depth16.png')
    expect['depth16.png'] = ('ok', (20, 30))
    Image.fromarray(rgb).convert('P').save(root / 'palette.png')
    expect['palette.png'] = ('ok', (20, 30))
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 -> stored 20x30 shows as 30x20
    Image.fromarray(rgb).save(root / 'exif_rotated.jpg', exif=exif)
    expect['exif_rotated.jpg'] = ('ok', (30, 20))
    Image.new('L', (400, 300)).save(root / 'bomb.png')  # over the test's max_pixels
    expect['bomb.png'] = ('error', None)
    return expect
