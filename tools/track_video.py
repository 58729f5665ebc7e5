"""Track objects through a video from a first-frame mask, with frozen PE features.

    python tools/track_video.py clip.mp4 --first-mask mask.png \
        --config configs/davis/pe_spatial_b16_davis.py --checkpoint PE-Spatial-B16-512.pt

The video may also be a folder of frames (DAVIS JPEGImages/480p/<seq>/) or a numbered
pattern (frames/%05d.jpg).

The first mask is a palette PNG (DAVIS style) or a single-channel label PNG with 0 =
background and 1..K = objects, the size of the video frames. Writes <out>/overlay.mp4 and
<out>/masks/00000.png ... (indexed PNGs).
"""
import argparse
import os.path as osp
import sys

import pe_dense.backbone  # noqa: F401  registers PE
from mmengine.config import DictAction


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('video', help='a video file OpenCV decodes, a folder of frames (read in '
                                 'name order, e.g. DAVIS JPEGImages/480p/<seq>) or a numbered '
                                 'pattern such as frames/%%05d.jpg')
    p.add_argument('--first-mask', required=True, help='label/palette PNG of frame 0')
    p.add_argument('--config', default='PE-Spatial-B16-512', help='configs/davis/*.py or arch')
    p.add_argument('--checkpoint', help='PE weights')
    p.add_argument('--random-init', action='store_true', help='random weights (smoke runs)')
    p.add_argument('--layer', type=int)
    p.add_argument('--size', type=int)
    p.add_argument('--max-frames', type=int, help='stop after this many frames')
    p.add_argument('--alpha', type=float, default=0.5, help='overlay opacity')
    p.add_argument('--out', default='work_dirs/track_video', help='output folder')
    p.add_argument('--device', default=None, help='default: cuda if available, else cpu')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--no-progress', action='store_true')
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='override config keys, e.g. propagation.topk=7 backbone.img_size=224')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    import torch

    from pe_dense.tracking.features import build_backbone, build_propagator, load_settings
    from pe_dense.tracking.video import VideoError, open_video, read_first_mask, track_video
    try:
        cap, fps, size = open_video(args.video)
        first, palette = read_first_mask(args.first_mask, size)
    except (VideoError, ValueError) as e:
        sys.exit(f'track_video: {e}')
    backbone_cfg, prop, _ = load_settings(args.config, args.cfg_options)
    prop.update({k: getattr(args, k) for k in ('layer', 'size') if getattr(args, k) is not None})
    torch.manual_seed(args.seed)
    device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    try:
        backbone = build_backbone(backbone_cfg, args.checkpoint, args.random_init, device)
    except (ValueError, FileNotFoundError) as e:  # no weights: a hint, not a traceback
        sys.exit(f'track_video: {e}')
    try:
        n = track_video(cap, first, palette, build_propagator(backbone, **prop), args.out, fps,
                        args.alpha, args.max_frames, not args.no_progress)
    finally:
        cap.release()
    print(f'tracked {int(first.max())} object id(s) through {n} frames -> '
          f'{osp.join(args.out, "overlay.mp4")}, {osp.join(args.out, "masks")}/')
    return n


if __name__ == '__main__':
    main()
