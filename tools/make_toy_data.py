"""Write a toy dataset in a real on-disk format.

    python tools/make_toy_data.py coco --out data/toy_coco [--num-train 64 --num-val 16
        --size 144x96 --seed 0 --classes circle,square,triangle]
    python tools/make_toy_data.py sa1b --out data/toy_sa1b [--size 160x112]
"""
import argparse
import inspect
import json
import sys

from pe_dense.toy import GENERATORS, make_toy


def build_parser():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('kind', choices=sorted(GENERATORS))
    p.add_argument('--out', required=True, help='output directory')
    p.add_argument('--num-train', type=int, help='training items (images / sequences)')
    p.add_argument('--num-val', type=int, help='validation items')
    p.add_argument('--size', help='image size: S or WxH')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--classes', help='comma-separated shape names (coco, ade20k, imagetext)')
    p.add_argument('--colors', help='imagetext: comma-separated colour names')
    p.add_argument('--mask-format', choices=['polygon', 'rle'], help='coco segmentation format')
    p.add_argument('--layout', choices=['folder', 'sa1b'], help='images: output layout')
    p.add_argument('--frames', type=int, help='davis / imagetext videos: frames per video')
    p.add_argument('--num-videos', type=int, help='imagetext: number of captioned videos')
    p.add_argument('--max-count', type=int, help='imagetext: most shapes per colour-shape group')
    p.add_argument('--max-groups', type=int,
                   help='imagetext: most colour-shape groups per train picture')
    p.add_argument('--radius', help='imagetext: MIN,MAX object radius (fraction of short side)')
    p.add_argument('--background', choices=['picture', 'blurred', 'flat'],
                   help='imagetext: real picture, blurred picture or its flat mean colour')
    p.add_argument('--stereo', type=int, help='nyu: extra train crops of the motorcycle pair')
    p.add_argument('--no-progress', action='store_true', help='hide the progress bar')
    return p


def to_kwargs(args) -> dict:
    """Only the options that were given, so each generator keeps its own defaults."""
    kw = dict(seed=args.seed, progress_bar=not args.no_progress)
    for name in ('num_train', 'num_val', 'size', 'mask_format', 'layout', 'frames', 'stereo',
                 'num_videos', 'max_count', 'max_groups', 'background'):
        if getattr(args, name) is not None:
            kw[name] = getattr(args, name)
    for name in ('classes', 'colors'):
        if getattr(args, name):
            kw[name] = tuple(c.strip() for c in getattr(args, name).split(',') if c.strip())
    if args.radius:
        kw['radius'] = tuple(float(r) for r in args.radius.split(','))
    return kw


def parse_args(argv=None):
    return build_parser().parse_args(argv)


def check_flags(parser, args, kwargs) -> None:
    """Refuse flags the chosen kind does not take, naming flags (not keyword names)."""
    flags = {a.dest: a.option_strings[0] for a in parser._actions if a.option_strings}
    flags['progress_bar'] = '--no-progress'
    params = inspect.signature(GENERATORS[args.kind]).parameters
    unknown = [flags.get(k, k) for k in kwargs if k not in params]
    if unknown:
        takes = [flags[k] for k in flags if k in params]
        parser.error(f'{args.kind} does not take {", ".join(unknown)}; '
                     f'its flags: {" ".join(sorted(takes))}')


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    kwargs = to_kwargs(args)
    check_flags(parser, args, kwargs)
    try:
        summary = make_toy(args.kind, args.out, **kwargs)
    except ValueError as e:  # bad option value, or an option the chosen kind does not take
        sys.exit(f'make_toy_data {args.kind}: {e}')
    print(json.dumps(summary, indent=2))


if __name__ == '__main__':
    main()
