"""Video I/O for tracking a user's clip: OpenCV decoding, overlays, per-frame masks."""
import itertools
import os
import os.path as osp
from typing import Iterator, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from pe_dense.datasets.davis import davis_palette, read_label_png, read_palette


class VideoError(ValueError):
    """A video or first mask that cannot be used (names the file)."""


IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.webp', '.tif', '.tiff')


class FrameFolder:
    """A folder of frames (DAVIS ``JPEGImages/480p/<seq>/``) read in name order, with the
    ``cv2.VideoCapture`` calls ``track_video`` uses; OpenCV itself only reads numbered
    patterns (``%05d.jpg``), not folders."""

    def __init__(self, folder: str):
        self.files = sorted(osp.join(folder, f) for f in os.listdir(folder)
                            if f.lower().endswith(IMAGE_EXTENSIONS))
        self.pos = 0

    def isOpened(self) -> bool:  # noqa: N802  (OpenCV's name)
        return bool(self.files)

    def get(self, prop) -> float:
        return float(len(self.files)) if prop == cv2.CAP_PROP_FRAME_COUNT else 0.0

    def read(self):
        if self.pos >= len(self.files):
            return False, None
        path = self.files[self.pos]
        frame = cv2.imread(path, cv2.IMREAD_COLOR)
        if frame is None:
            raise VideoError(f'{path}: OpenCV cannot decode this frame')
        self.pos += 1
        return True, frame

    def release(self):
        self.pos = len(self.files)


def _capture(path: str):
    if osp.isdir(path):
        return FrameFolder(path)
    if '%' in path:  # printf-style numbered frames, e.g. frames/%05d.jpg
        return cv2.VideoCapture(path, cv2.CAP_IMAGES)
    return cv2.VideoCapture(path)


def open_video(path: str) -> Tuple[cv2.VideoCapture, float, Tuple[int, int]]:
    """An opened capture of a video file, a frame folder or a ``%05d.jpg`` pattern, its fps
    (25 if unknown) and frame size (h, w); errors name the file."""
    if osp.isdir(path):
        if not FrameFolder(path).isOpened():
            raise VideoError(f'{path}: folder holds no frames ({", ".join(IMAGE_EXTENSIONS)})')
    elif '%' in path:
        if not osp.isdir(osp.dirname(path) or '.'):
            raise VideoError(f'{path}: folder of the frame pattern not found')
    elif not osp.isfile(path):
        raise VideoError(f'{path}: video file, frame folder or %05d.jpg pattern not found')
    probe = _capture(path)
    ok, frame = probe.read() if probe.isOpened() else (False, None)
    fps = probe.get(cv2.CAP_PROP_FPS)
    probe.release()
    if not ok:
        raise VideoError(f'{path}: OpenCV cannot decode this video (unsupported codec, not '
                         'a video file, or no frame matching the pattern)')
    return _capture(path), fps if fps > 0 else 25.0, frame.shape[:2]


def iter_frames(cap: cv2.VideoCapture, max_frames: Optional[int] = None) -> Iterator[np.ndarray]:
    """RGB frames until the end of the stream (or ``max_frames``)."""
    n = 0
    while max_frames is None or n < max_frames:
        ok, frame = cap.read()
        if not ok:
            break
        n += 1
        yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)


def read_first_mask(path: str, size: Tuple[int, int]) -> Tuple[np.ndarray, List[int]]:
    """Id map (0 = background, 1..K objects) and its palette; must match the frame size."""
    labels = read_label_png(path)
    if labels.shape != tuple(size):
        raise VideoError(f'{path}: mask is {labels.shape[1]}x{labels.shape[0]} (WxH) but the '
                         f'video frames are {size[1]}x{size[0]}')
    ids = [int(i) for i in np.unique(labels) if i not in (0, 255)]
    if not ids:
        raise VideoError(f'{path}: the first mask has no object (only ids 0/255)')
    return labels, read_palette(path) or davis_palette()


def overlay(frame: np.ndarray, labels: np.ndarray, palette: Sequence[int],
            alpha: float = 0.5) -> np.ndarray:
    """Blend object colours into an RGB frame (background untouched)."""
    colours = np.asarray(palette[:768], np.float32).reshape(-1, 3)
    fg = labels > 0
    out = frame.astype(np.float32)
    out[fg] = (1 - alpha) * out[fg] + alpha * colours[labels[fg]]
    return out.round().astype(np.uint8)


class VideoWriter:
    """mp4 (mp4v) writer for RGB frames that fails loudly when the codec is unavailable."""

    def __init__(self, path: str, fps: float, size: Tuple[int, int]):
        os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
        self.writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'mp4v'), fps,
                                      (size[1], size[0]))
        if not self.writer.isOpened():
            raise VideoError(f'{path}: OpenCV cannot open a video writer (mp4v codec missing?)')

    def write(self, frame: np.ndarray):
        self.writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))

    def close(self):
        self.writer.release()


def track_video(cap: cv2.VideoCapture, first: np.ndarray, palette: Sequence[int], propagator,
                out_dir: str, fps: float, alpha: float = 0.5,
                max_frames: Optional[int] = None, progress: bool = True) -> int:
    """Propagate ``first`` through the capture; write masks/<frame>.png and overlay.mp4."""
    from tqdm import tqdm

    from pe_dense.datasets.davis import write_label_png
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or None  # 0 when the container omits it
    if max_frames:
        total = min(total or max_frames, max_frames)
    frames, shown = itertools.tee(iter_frames(cap, max_frames))  # buffers one frame at most
    writer = VideoWriter(osp.join(out_dir, 'overlay.mp4'), fps, first.shape)
    n = 0
    try:
        for frame, labels in tqdm(zip(shown, propagator(frames, first)), total=total,
                                  unit='frame', disable=not progress):
            write_label_png(osp.join(out_dir, 'masks', f'{n:05d}.png'), labels, palette)
            writer.write(overlay(frame, labels, palette, alpha))
            n += 1
    finally:
        writer.close()
    return n
