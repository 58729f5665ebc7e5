"""Zero-shot DAVIS 2017 (semi-supervised) with frozen PE features: propagate, then J&F.

    python tools/test_davis.py configs/davis/pe_spatial_g14_davis.py \
        --checkpoint checkpoints/PE-Spatial-G14-448.pt --data-root data/DAVIS
    python tools/test_davis.py PE-Core-L14-336 --checkpoint PE-Core-L14-336.pt \
        --data-root data/DAVIS --layer 16 --size 480
    python tools/test_davis.py PE-Core-L14-336 ... --layer 8 12 16 20 -1   # layer sweep
    python tools/test_davis.py --eval-only --results work_dirs/x/results --data-root data/DAVIS

Writes <work-dir>/results/<sequence>/<frame>.png (indexed PNGs, DAVIS layout),
<work-dir>/global_results-<split>.csv and per-sequence_results-<split>.csv, and prints the table.
"""
import argparse
import json
import os
import os.path as osp
import sys
import time

import pe_dense.backbone  # noqa: F401  registers PE
from mmengine.config import DictAction


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('config', nargs='?', help='configs/davis/*.py or a PE arch name')
    p.add_argument('--checkpoint', help='PE weights (official .pt, timm, safetensors)')
    p.add_argument('--random-init', action='store_true', help='random weights (smoke runs)')
    p.add_argument('--data-root', required=True, help='DAVIS 2017 root')
    p.add_argument('--split', default='val')
    p.add_argument('--resolution', default='480p')
    p.add_argument('--sequences', help='comma-separated subset of the split')
    p.add_argument('--layer', type=int, nargs='+',
                   help='PE block(s) whose tokens are used (default: config); several values '
                        'run a layer sweep into <work-dir>/layer<i>/')
    p.add_argument('--size', type=int, help='short side of the network input (default: config)')
    for name in ('n-last', 'topk', 'radius'):
        p.add_argument(f'--{name}', type=int)
    p.add_argument('--temperature', type=float)
    p.add_argument('--work-dir', help='default: work_dirs/<config or arch name>')
    p.add_argument('--device', default=None, help='default: cuda if available, else cpu')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--eval-only', action='store_true', help='only evaluate --results')
    p.add_argument('--results', help='folder of predicted masks (<seq>/<frame>.png)')
    p.add_argument('--no-progress', action='store_true')
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='override config keys, e.g. propagation.topk=7 backbone.img_size=224')
    args = p.parse_args(argv)
    if args.eval_only and not args.results:
        p.error('--eval-only needs --results DIR')
    if not args.eval_only and not args.config:
        p.error('give a config or arch name (or --eval-only --results DIR)')
    if args.results and args.layer and len(args.layer) > 1:
        p.error('--results holds one set of masks; a layer sweep writes <work-dir>/layer<i>/')
    return args


def build(args):
    """The frozen backbone, the propagation settings and the work dir."""
    import torch

    from pe_dense.tracking.features import build_backbone, load_settings

    backbone_cfg, prop, name = load_settings(args.config, args.cfg_options)
    for key in ('size', 'n_last', 'topk', 'radius', 'temperature'):
        if getattr(args, key) is not None:
            prop[key] = getattr(args, key)
    work_dir = args.work_dir or osp.join('work_dirs', name)
    os.makedirs(work_dir, exist_ok=True)
    torch.manual_seed(args.seed)
    device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    try:
        backbone = build_backbone(backbone_cfg, args.checkpoint, args.random_init, device)
    except (ValueError, FileNotFoundError) as e:  # no weights: a hint, not a traceback
        sys.exit(f'test_davis: {e}')
    with open(osp.join(work_dir, 'davis_settings.json'), 'w') as fh:
        json.dump(dict(config=args.config, checkpoint=args.checkpoint, backbone=backbone_cfg,
                       propagation=prop, layers=args.layer, data_root=args.data_root,
                       split=args.split, random_init=args.random_init), fh, indent=2,
                  default=str)
    return backbone, prop, work_dir


def propagate_and_evaluate(args, dataset, backbone, prop, work_dir):
    """Masks under <work_dir>/results, then J&F and the CSVs in <work_dir>."""
    from pe_dense.evaluation.davis_metric import evaluate_results
    from pe_dense.tracking.davis_runner import propagate_davis
    from pe_dense.tracking.features import build_propagator

    results = args.results or osp.join(work_dir, 'results')
    start = time.time()
    n = propagate_davis(dataset, build_propagator(backbone, **prop), results,
                        progress=not args.no_progress)
    print(f'propagated {n} frames of {len(dataset)} sequences in {time.time() - start:.1f}s '
          f'(layer {prop["layer"]}, size {prop["size"]}) -> {results}')
    return report(args, evaluate_results(dataset, results, progress=not args.no_progress),
                  work_dir)


def report(args, summary, work_dir):
    from pe_dense.evaluation.davis_metric import format_tables, write_csvs
    os.makedirs(work_dir, exist_ok=True)
    paths = write_csvs(summary, work_dir, args.split)
    print(format_tables(summary, args.split))
    print('wrote ' + ', '.join(paths))
    return summary


def main(argv=None):
    """Returns the summary (one layer) or {layer: summary} (a sweep)."""
    args = parse_args(argv)
    from pe_dense.datasets.davis import DavisDataset
    from pe_dense.evaluation.davis_metric import evaluate_results

    seqs = args.sequences.split(',') if args.sequences else None
    dataset = DavisDataset(args.data_root, args.split, resolution=args.resolution,
                           sequences=seqs)
    if args.eval_only:
        if not osp.isdir(args.results):
            sys.exit(f'test_davis: results folder {args.results} not found')
        summary = evaluate_results(dataset, args.results, progress=not args.no_progress)
        return report(args, summary, args.work_dir or args.results)
    backbone, prop, work_dir = build(args)
    layers = args.layer or [prop['layer']]
    if len(layers) == 1:
        return propagate_and_evaluate(args, dataset, backbone, dict(prop, layer=layers[0]),
                                      work_dir)
    sweep = {layer: propagate_and_evaluate(args, dataset, backbone, dict(prop, layer=layer),
                                           osp.join(work_dir, f'layer{layer}'))
             for layer in layers}
    print('layer sweep (J&F-Mean, %): ' + ', '.join(
        f'{layer}: {100 * s["global"]["J&F-Mean"]:.1f}' for layer, s in sweep.items()))
    return sweep


if __name__ == '__main__':
    main()
