"""Datasets not covered by MMDetection/MMSegmentation.

The mmdet / mmseg ones (``coco_checked``, ``seg_checks``) are imported by ``pe_dense.det`` /
``pe_dense.seg``, so this package needs neither library.
"""
from .image_text import ImageTextDataset, WebImageTextDataset  # noqa: F401,E402
from .video_text import VideoTextDataset  # noqa: F401,E402
from .transforms import clip_transforms  # noqa: F401,E402
from .image_folder import ImageFolderDataset  # noqa: F401,E402
from .sa1b import SA1BDataset  # noqa: F401,E402
from .sam_target_cache import SAMTargetCache, fill_cache, read_rgb  # noqa: F401,E402
from .transforms import align_transforms  # noqa: F401,E402
from . import robust_loading  # noqa: F401,E402  LoadImageRobust (mmengine TRANSFORMS)
