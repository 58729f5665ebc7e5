"""Generators of hostile image files, written into a (pytest tmp) directory at test time.

Each entry: name -> (expected outcome, expected (H, W) or None). 'ok' means it must decode
to RGB of that shape; 'error' means a clear ImageLoadError naming the file. ``max_pixels``
is the loader's bomb limit: 'bomb.png' is a real 300x400 picture, an error only below it;
'bomb_declared.png' declares 20000x20000 in its header (a few hundred bytes on disk), an
error under any limit up to PIL's default.
"""
import io
import struct
import zlib

import numpy as np
from PIL import Image


def _jpeg_bytes(arr, **kw):
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format='JPEG', **kw)
    return buf.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data))


def declared_bomb_png(width: int, height: int) -> bytes:
    """A grey PNG whose header declares width x height but whose data is one row of zeros."""
    ihdr = struct.pack('>IIBBBBB', width, height, 8, 0, 0, 0, 0)
    return (b'\x89PNG\r\n\x1a\n' + _png_chunk(b'IHDR', ihdr)
            + _png_chunk(b'IDAT', zlib.compress(b'\x00' * (width + 1)))
            + _png_chunk(b'IEND', b''))


def write_broken_images(root, max_pixels: int = 100_000):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (20, 30, 3), dtype=np.uint8)
    expect = {}
    # truncated large enough that OpenCV would return a grey-filled picture, not None
    full = _jpeg_bytes(rng.integers(0, 255, (96, 128, 3), dtype=np.uint8))
    (root / 'truncated.jpg').write_bytes(full[: len(full) * 3 // 4])
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
    Image.new('L', (400, 300)).save(root / 'bomb.png')
    expect['bomb.png'] = ('error', None) if 400 * 300 > max_pixels else ('ok', (300, 400))
    (root / 'bomb_declared.png').write_bytes(declared_bomb_png(20000, 20000))
    expect['bomb_declared.png'] = ('error', None)
    return expect
