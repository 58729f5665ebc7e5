#!/usr/bin/env python
"""Convert PE checkpoints between layouts.

  backbone: official / timm / safetensors / pe_dense vision tower -> another layout
      tools/convert_checkpoint.py backbone SRC DST [--to pe_dense|official|timm]
  deta: official DETA_pe detector (deta_coco_1824pix.pth) -> pe_dense DETA (MMEngine load_from)
      tools/convert_checkpoint.py deta SRC DST [--class-map coco|none|1,2,3...]
  maskrcnn: official PE Mask R-CNN (mask_rcnn_PE*_G_*.pth) -> pe_dense Mask R-CNN (load_from);
      a backbone-only pev1_rc2_*_d2.pt -> a PE tower for model.backbone.init_cfg.checkpoint
      tools/convert_checkpoint.py maskrcnn SRC DST

SRC is a file or a name, fetched into the Hugging Face cache (HF_HUB_OFFLINE=1 reads only it):
  hf://facebook/PE-Spatial-G14-448:PE-Spatial-G14-448.pt, hf-hub:facebook/PE-Spatial-G14-448,
  timm/vit_pe_spatial_gigantic_patch14_448.fb, hf://facebook/PE-Detection:deta_coco_1824pix.pth,
  or an http(s) URL.
"""
import argparse

from pe_dense.models.backbones import checkpoint
from pe_dense.models.detectors import deta_convert, maskrcnn_convert


def _class_map(text):
    if text == 'coco':
        return deta_convert.COCO_CATEGORY_IDS
    if text == 'none':
        return None
    try:
        return tuple(int(v) for v in text.split(','))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--class-map must be 'coco', 'none' or comma-separated integers, got {text!r}")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest='kind', required=True)
    bb = sub.add_parser('backbone', help='PE vision tower')
    bb.add_argument('src')
    bb.add_argument('dst')
    bb.add_argument('--to', default='pe_dense', choices=['pe_dense', 'official', 'timm'])
    det = sub.add_parser('deta', help='official DETA_pe detector')
    det.add_argument('src')
    det.add_argument('dst')
    det.add_argument('--class-map', type=_class_map, default=deta_convert.COCO_CATEGORY_IDS,
                     help="official class row of each of our labels: 'coco' (80 COCO ids, "
                          "default), 'none' (keep every row) or a comma-separated list")
    det.add_argument('--num-dec-layers', type=int, default=6)
    mrc = sub.add_parser('maskrcnn', help='official PE Mask R-CNN (detectron2) or its backbone')
    mrc.add_argument('src')
    mrc.add_argument('dst')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.kind == 'backbone':
        sd = checkpoint.convert_file(args.src, args.dst, to=args.to)
    elif args.kind == 'maskrcnn':
        sd = maskrcnn_convert.convert_file(args.src, args.dst)
    else:
        sd = deta_convert.convert_file(args.src, args.dst, args.class_map, args.num_dec_layers)
    n = sum(v.numel() for v in sd.values())
    print(f'{args.kind}: wrote {len(sd)} tensors ({n / 1e6:.1f} M values) to {args.dst}')


if __name__ == '__main__':
    main()
