"""Image decoding that survives hostile files: every outcome is an RGB uint8 array or a named error.

Crawled and user data carry truncated JPEGs, non-images with image suffixes, grayscale,
palette, RGBA and 16-bit PNGs, phone photos stored sideways with an EXIF orientation tag,
and decompression bombs. PIL handles each of these, but only if asked: this module asks,
converts what is safe to convert, and raises :class:`ImageLoadError` naming the file otherwise.
OpenCV is not used for decoding because it returns a grey-filled picture for a truncated
JPEG (a silent wrong sample) and allocates up to 2**30 pixels for a header that declares them.
"""
import io
from typing import Optional

import numpy as np
from mmcv.transforms import BaseTransform
from mmengine import fileio
from mmengine.logging import print_log
from mmengine.registry import TRANSFORMS
from PIL import Image, ImageOps

DEFAULT_MAX_PIXELS = 178_956_970  # PIL's own bomb limit (2x its warning threshold)


class ImageLoadError(ValueError):
    """An image file that cannot be decoded safely; the message names the file."""


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode in ('I;16', 'I;16B', 'I;16L', 'I', 'F'):  # 16/32-bit grey: scale to 8 bits
        arr = np.asarray(img, dtype=np.float64)
        top = arr.max() if arr.size and arr.max() > 0 else 1.0
        img = Image.fromarray((arr / top * 255.0).clip(0, 255).round().astype(np.uint8),
                              mode='L')
    if img.mode in ('RGBA', 'LA', 'P', 'PA'):  # composite transparency on black
        img = img.convert('RGBA')
        bg = Image.new('RGBA', img.size, (0, 0, 0, 255))
        img = Image.alpha_composite(bg, img)
    return img.convert('RGB')


def read_image(path: str, max_pixels: Optional[int] = DEFAULT_MAX_PIXELS,
               data: Optional[bytes] = None) -> np.ndarray:
    """Decode ``path`` (or its bytes ``data``, read elsewhere) to an (H, W, 3) RGB uint8 array,
    upright per its EXIF orientation. ``path`` is only a name when ``data`` is given."""
    try:
        with Image.open(io.BytesIO(data) if data is not None else path) as img:
            w, h = img.size
            if max_pixels is not None and w * h > max_pixels:
                raise ImageLoadError(f"'{path}': {w}x{h} = {w * h} pixels exceeds max_pixels="
                                     f'{max_pixels} (decompression bomb guard)')
            img.load()  # full decode here: truncation surfaces now, not later
            img = ImageOps.exif_transpose(img)
            return np.asarray(_to_rgb(img)).copy()
    except ImageLoadError:
        raise
    except Exception as e:  # PIL raises many types (OSError, SyntaxError, ValueError...)
        raise ImageLoadError(f"'{path}': cannot decode image ({type(e).__name__}: {e})") from e


def check_record_size(img: np.ndarray, results: dict) -> None:
    """Raise if the decoded (upright) image disagrees with the annotation record's size.

    COCO / SA-1B records carry ``height`` and ``width``; boxes and masks are drawn in that
    frame. A mismatch (most often an EXIF orientation the annotator did not apply) would pair
    the picture with displaced labels, so it is an error naming the file.
    """
    h, w = results.get('height'), results.get('width')
    if h is None or w is None or tuple(img.shape[:2]) == (int(h), int(w)):
        return
    hint = (' (its EXIF orientation rotates it; the record gives the stored size)'
            if tuple(img.shape[:2]) == (int(w), int(h)) else '')
    raise ImageLoadError(f"'{results.get('img_path')}': decoded image is "
                         f'{img.shape[0]}x{img.shape[1]} (HxW) but its annotation record says '
                         f'{int(h)}x{int(w)}{hint}')


@TRANSFORMS.register_module()
class LoadImageRobust(BaseTransform):
    """Load ``results['img_path']`` with :func:`read_image`; skip (return None) or raise.

    A drop-in for mmcv's ``LoadImageFromFile`` (same output keys, ``backend_args`` for remote
    storage, BGR by default). ``on_error='skip'`` makes MMEngine datasets draw another sample
    and counts the skips; test pipelines use ``'raise'`` so nothing is scored silently.
    """

    def __init__(self, on_error: str = 'skip', max_pixels: Optional[int] = DEFAULT_MAX_PIXELS,
                 to_bgr: bool = True, to_float32: bool = False,
                 backend_args: Optional[dict] = None):
        if on_error not in ('skip', 'raise'):
            raise ValueError(f"LoadImageRobust: on_error must be 'skip' or 'raise', got {on_error!r}")
        self.on_error, self.max_pixels = on_error, max_pixels
        self.to_bgr, self.to_float32 = to_bgr, to_float32
        self.backend_args = backend_args
        self.skipped = 0

    def transform(self, results: dict) -> Optional[dict]:
        path = results['img_path']
        try:
            data = None
            if self.backend_args is not None:
                try:
                    data = fileio.get(path, backend_args=self.backend_args)
                except Exception as e:  # noqa: BLE001 - backends raise their own types
                    raise ImageLoadError(f"'{path}': cannot read ({type(e).__name__}: {e})") from e
            img = read_image(path, self.max_pixels, data)
            check_record_size(img, results)
        except ImageLoadError as e:
            if self.on_error == 'raise':
                raise
            self.skipped += 1
            print_log(f'LoadImageRobust skipped {self.skipped} image(s); last: {e}',
                      logger='current', level=30)
            return None
        if self.to_bgr:
            img = img[..., ::-1].copy()
        if self.to_float32:
            img = img.astype(np.float32)
        results.update(img=img, img_shape=img.shape[:2], ori_shape=img.shape[:2])
        return results

    def __repr__(self):
        return (f'{self.__class__.__name__}(on_error={self.on_error!r}, '
                f'max_pixels={self.max_pixels}, to_bgr={self.to_bgr})')
