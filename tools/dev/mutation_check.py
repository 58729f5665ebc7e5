"""Plant realistic one-line bugs in the critical modules and report which the fast tests catch.

Each mutant replaces one exact snippet of one source file, runs the fast test file(s) of that
module (``pytest -x -q -m "not slow"``) and puts the file back -- always: in a ``finally``, on
Ctrl-C / SIGTERM, and at the next start if a run was killed (a ``.mutation-orig`` copy is kept
beside the file while it is mutated). A mutant whose snippet no longer appears is reported as
stale: update the list when the code moves.

The list holds bugs a person could plausibly write (a swapped axis, a missing ``detach``, an
off-by-one threshold), not ones picked because a test already catches them.

Usage::

    python tools/dev/mutation_check.py --list
    python tools/dev/mutation_check.py --only davis-precision-over-gt rope-xy-swapped
    python tools/dev/mutation_check.py --module losses --module rope
    python tools/dev/mutation_check.py              # everything (minutes: CPU-heavy)
"""
import argparse
import json
import os
import os.path as osp
import signal
import subprocess
import sys
import time
from typing import List, NamedTuple, Sequence

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
BACKUP_SUFFIX = '.mutation-orig'


class Mutant(NamedTuple):
    name: str
    module: str           # group reported in the summary
    path: str             # source file, relative to the repository root
    old: str              # exact snippet (must occur once)
    new: str
    tests: Sequence[str]  # fast test files that should catch it


_ASSIGN = 'pe_dense/models/task_modules/assigners/deta_assigners.py'
_HEAD = 'pe_dense/models/dense_heads/deta_head.py'
_DETA = 'pe_dense/models/detectors/deta.py'
_PAIR = 'pe_dense/models/losses/pairwise_similarity.py'
_TOKCOS = 'pe_dense/models/losses/token_cosine.py'
_ALIGN = 'pe_dense/models/aligners/spatial_aligner.py'
_ROPE = 'pe_dense/models/backbones/rope.py'
_POS = 'pe_dense/models/backbones/pos_embed.py'
_DAVIS = 'pe_dense/evaluation/davis_metric.py'
_PROP = 'pe_dense/tracking/label_propagation.py'
_SAFE = 'pe_dense/engine/safe_checkpoint.py'
_NMS = 'pe_dense/models/task_modules/soft_nms.py'
_CKPT = 'pe_dense/models/backbones/checkpoint.py'
_DCONV = 'pe_dense/models/detectors/deta_convert.py'

T_ASSIGN = ('tests/test_deta_assigners.py',)
T_DETA = ('tests/test_deta_model.py',)
T_LOSS = ('tests/test_align_losses.py',)
T_ROPE = ('tests/test_backbone_rope.py', 'tests/test_detection_deta_convert.py')
T_POS = ('tests/test_backbone_features.py', 'tests/test_backbone_timm_contract.py')
T_DAVIS = ('tests/test_davis_metric.py',)
T_PROP = ('tests/test_label_propagation.py',)
T_SAFE = ('tests/test_engine_safe_checkpoint.py',)
T_NMS = ('tests/test_detection_tta.py',)
T_CKPT = ('tests/test_backbone_checkpoint.py',)
T_DCONV = ('tests/test_detection_deta_convert.py',)

MUTANTS: List[Mutant] = [
    # assigners
    Mutant('assign-topk-count-off-by-one', 'assigners', _ASSIGN,
           'torch.arange(k, device=best.device)[None] < counts[:, None]',
           'torch.arange(k, device=best.device)[None] <= counts[:, None]', T_ASSIGN),
    Mutant('assign-ties-not-all', 'assigners', _ASSIGN,
           'positive |= (ious == ious.max(dim=1, keepdim=True).values).any(0)',
           'positive[ious.argmax(dim=1)] = True', T_ASSIGN),
    Mutant('assign-stage2-fraction-of-stage1', 'assigners', _ASSIGN,
           'pos_iou_thr: float = 0.6, neg_iou_thr: float = 0.6,\n                 pos_fraction: float = 0.25',
           'pos_iou_thr: float = 0.6, neg_iou_thr: float = 0.6,\n                 pos_fraction: float = 0.5',
           T_ASSIGN),
    Mutant('assign-stage1-pos-thr', 'assigners', _ASSIGN,
           'pos_iou_thr: float = 0.7, neg_iou_thr: float = 0.3',
           'pos_iou_thr: float = 0.6, neg_iou_thr: float = 0.3', T_ASSIGN),
    # DETA head
    Mutant('head-box-norm-wh-swapped', 'deta_head', _HEAD,
           '[w, h, w, h], dtype=torch.float32)', '[h, w, h, w], dtype=torch.float32)', T_DETA),
    Mutant('head-objectness-takes-class-labels', 'deta_head', _HEAD,
           'enc_targets = [(b, torch.zeros_like(lbl), c) for b, lbl, c in targets]',
           'enc_targets = [(b, lbl, c) for b, lbl, c in targets]', T_DETA),
    Mutant('head-decoder-uses-stage1-assigner', 'deta_head', _HEAD,
           'dec_assign = [self._assign(self.assigner, ref, t)',
           'dec_assign = [self._assign(self.enc_assigner, ref, t)', T_DETA),
    Mutant('head-predict-label-from-query', 'deta_head', _HEAD,
           'labels = idx % num_classes', 'labels = idx // num_classes', T_DETA),
    # losses and the aligner's terms
    Mutant('loss-pairwise-l1', 'losses', _PAIR, 'F.mse_loss(', 'F.l1_loss(', T_LOSS),
    Mutant('loss-pairwise-teacher-grad', 'losses', _PAIR,
           'pairwise_cosine(teacher).detach()', 'pairwise_cosine(teacher)', T_LOSS),
    Mutant('loss-token-cosine-teacher-grad', 'losses', _TOKCOS,
           'teacher.detach().float()', 'teacher.float()', T_LOSS),
    Mutant('loss-aligner-sam-self', 'losses', _ALIGN,
           'pairwise_similarity_loss(student, sam)', 'pairwise_similarity_loss(student, student)',
           T_LOSS),
    # RoPE
    Mutant('rope-xy-swapped', 'rope', _ROPE,
           'torch.cat([ax, ay], dim=-1)', 'torch.cat([ay, ax], dim=-1)', T_ROPE),
    Mutant('rope-eva-no-plus-one', 'rope', _ROPE,
           'pos = pos / n * self.pt_seq_len + 1', 'pos = pos / n * self.pt_seq_len', T_ROPE),
    Mutant('rope-freq-over-head-dim', 'rope', _ROPE, '/ axis_dim)', '/ (2 * axis_dim))', T_ROPE),
    Mutant('rope-columns-sized-by-rows', 'rope', _ROPE,
           'ax = self._axis_angles(grid_w, device)', 'ax = self._axis_angles(grid_h, device)',
           T_ROPE),
    # position-embedding resampling
    Mutant('pos-align-corners', 'pos_embed', _POS,
           'mode=interpolation,\n                             align_corners=False)',
           'mode=interpolation,\n                             align_corners=True)', T_POS),
    Mutant('pos-tile-cols-by-rows', 'pos_embed', _POS,
           'cols = torch.arange(gw, device=grid.device) % side',
           'cols = torch.arange(gh, device=grid.device) % side', T_POS),
    Mutant('pos-resample-hw-swapped', 'pos_embed', _POS,
           'size=(gh, gw), mode=interpolation', 'size=(gw, gh), mode=interpolation', T_POS),
    # DAVIS metric
    Mutant('davis-precision-over-gt', 'davis_metric', _DAVIS,
           'np.sum(pb & gt_dil) / n_pred', 'np.sum(pb & gt_dil) / n_gt', T_DAVIS),
    Mutant('davis-tolerance-round', 'davis_metric', _DAVIS,
           'math.ceil(bound_th', 'round(bound_th', T_DAVIS),
    Mutant('davis-recall-at-half', 'davis_metric', _DAVIS,
           'np.nanmean(values > 0.5)', 'np.nanmean(values >= 0.5)', T_DAVIS),
    Mutant('davis-empty-union-zero', 'davis_metric', _DAVIS,
           'np.where(union == 0, 1.0, j)', 'np.where(union == 0, 0.0, j)', T_DAVIS),
    # label propagation
    Mutant('prop-temperature-multiplies', 'label_propagation', _PROP,
           'torch.softmax(vals / temperature, dim=1)', 'torch.softmax(vals * temperature, dim=1)',
           T_PROP),
    Mutant('prop-radius-exclusive', 'label_propagation', _PROP,
           '((ys[:, None] - ys[None]).abs() <= radius)', '((ys[:, None] - ys[None]).abs() < radius)',
           T_PROP),
    Mutant('prop-topk-within-one-frame', 'label_propagation', _PROP,
           'topk(min(topk, m * n), dim=1)', 'topk(min(topk, n), dim=1)', T_PROP),
    Mutant('prop-void-kept-as-object', 'label_propagation', _PROP,
           'labels = np.where(first_labels == 255, 0, first_labels)', 'labels = first_labels',
           T_PROP),
    # safe loading
    Mutant('safe-builtin-getattr', 'safe_loading', _SAFE,
           "(history_buffer_getattr, 'builtins.getattr')]", "(getattr, 'builtins.getattr')]",
           T_SAFE),
    Mutant('safe-getattr-any-name', 'safe_loading', _SAFE,
           'if issubclass(owner, HistoryBuffer) and name in allowed:',
           'if issubclass(owner, HistoryBuffer):', T_SAFE),
    Mutant('safe-weights-only-off', 'safe_loading', _SAFE,
           'map_location=map_location, weights_only=True)',
           'map_location=map_location, weights_only=False)', T_SAFE),
    # soft-NMS
    Mutant('nms-class-agnostic', 'soft_nms', _NMS,
           'members = torch.nonzero(labels == c).flatten()',
           'members = torch.arange(len(labels), device=labels.device)', T_NMS),
    Mutant('nms-quad-squared', 'soft_nms', _NMS,
           '(1 - iou) ** quad_scale', '(1 - iou) ** 2', T_NMS),
    Mutant('nms-gaussian-linear-iou', 'soft_nms', _NMS,
           'torch.exp(-torch.pow(iou, 2) / sigma)', 'torch.exp(-iou / sigma)', T_NMS),
    Mutant('nms-keeps-position-not-index', 'soft_nms', _NMS,
           'kept_idx.append(grid_idx[rows, top])', 'kept_idx.append(top)', T_NMS),
    # query selection
    Mutant('query-nms-across-levels', 'query_selection', _DETA,
           'logits[pre], level_ids[pre],', 'logits[pre], torch.zeros_like(level_ids[pre]),',
           T_DETA),
    Mutant('query-per-level-off-by-one', 'query_selection', _DETA,
           'onehot.cumsum(1) <= per_level', 'onehot.cumsum(1) < per_level', T_DETA),
    Mutant('query-keep-not-mapped', 'query_selection', _DETA,
           'keep = pre[batched_nms(boxes[pre], logits[pre], level_ids[pre], nms_iou)]',
           'keep = batched_nms(boxes[pre], logits[pre], level_ids[pre], nms_iou)', T_DETA),
    # converters
    Mutant('conv-timm-proj-not-transposed', 'converters', _CKPT,
           "out['proj'] = val.t().contiguous()", "out['proj'] = val.contiguous()", T_CKPT),
    Mutant('conv-timm-kv-split', 'converters', _CKPT,
           'dim = val.shape[0] // 3', 'dim = val.shape[0] // 2', T_CKPT),
    Mutant('conv-deta-bbox-seq-index', 'converters', _DCONV,
           "reg_branches.{m.group(1)}.{2 * int(m.group(2))}.", "reg_branches.{m.group(1)}.{int(m.group(2))}.",
           T_DCONV),
    Mutant('conv-deta-objectness-row', 'converters', _DCONV,
           'rows = [0] + rows[1:]', 'rows = list(class_map)', T_DCONV),
]


def restore_leftovers(mutants: Sequence[Mutant]) -> None:
    """Put back any file a killed run left mutated."""
    for path in sorted({m.path for m in mutants}):
        full = osp.join(ROOT, path)
        if osp.exists(full + BACKUP_SUFFIX):
            os.replace(full + BACKUP_SUFFIX, full)
            print(f'restored {path} left mutated by an interrupted run')


def run_one(m: Mutant, timeout: float) -> str:
    """'caught', 'survived', 'timeout' or 'stale'; the source file is always restored."""
    full = osp.join(ROOT, m.path)
    if not osp.exists(full):
        return 'stale'
    with open(full) as fh:
        original = fh.read()
    if original.count(m.old) != 1:
        return 'stale'
    with open(full + BACKUP_SUFFIX, 'w') as fh:
        fh.write(original)
    try:
        with open(full, 'w') as fh:
            fh.write(original.replace(m.old, m.new))
        env = dict(os.environ, PYTHONPATH=ROOT)
        cmd = [sys.executable, '-m', 'pytest', '-x', '-q', '-p', 'no:cacheprovider',
               '-m', 'not slow', *m.tests]
        try:
            proc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, timeout=timeout)
        except subprocess.TimeoutExpired:
            return 'timeout'
        # 1: tests failed; 2/3/4: collection/usage errors also mean the mutant was noticed
        return 'caught' if proc.returncode != 0 and proc.returncode != 5 else 'survived'
    finally:
        with open(full, 'w') as fh:
            fh.write(original)
        os.remove(full + BACKUP_SUFFIX)


def _sigterm(signum, frame):
    raise KeyboardInterrupt(f'signal {signum}')


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--list', action='store_true',
                        help='list the mutants (marking stale ones) and exit')
    parser.add_argument('--only', nargs='+', default=(), metavar='NAME', help='mutants by name')
    parser.add_argument('--module', action='append', default=[], help='mutants of a module group')
    parser.add_argument('--timeout', type=float, default=900, help='seconds per mutant')
    parser.add_argument('--json', metavar='FILE', help='also write the results as JSON')
    parser.add_argument('--min-caught', type=float, default=0.9,
                        help='exit 1 if fewer than this share of the run mutants are caught')
    args = parser.parse_args(argv)

    chosen = [m for m in MUTANTS if (not args.only or m.name in args.only)
              and (not args.module or m.module in args.module)]
    unknown = set(args.only) - {m.name for m in MUTANTS}
    if unknown:
        parser.error(f'unknown mutant(s): {", ".join(sorted(unknown))} (see --list)')
    if args.list:
        for m in chosen:
            full = osp.join(ROOT, m.path)
            ok = osp.exists(full) and open(full).read().count(m.old) == 1
            print(f'{m.module:18s} {m.name:40s} {"" if ok else "STALE "}{m.path}  '
                  f'[{" ".join(m.tests)}]')
        return 0
    restore_leftovers(MUTANTS)
    signal.signal(signal.SIGTERM, _sigterm)
    results = []
    try:
        for m in chosen:
            start = time.monotonic()
            outcome = run_one(m, args.timeout)
            results.append(dict(name=m.name, module=m.module, path=m.path, outcome=outcome,
                                seconds=round(time.monotonic() - start, 1)))
            print(f'{outcome:9s} {m.module:18s} {m.name}  ({results[-1]["seconds"]} s)',
                  flush=True)
    except KeyboardInterrupt:
        print('interrupted: the mutated file was restored; partial results below')
    run = [r for r in results if r['outcome'] != 'stale']
    caught = sum(r['outcome'] == 'caught' for r in run)
    share = caught / len(run) if run else 0.0
    print(f'\n{caught}/{len(run)} mutants caught ({100 * share:.0f}%); '
          f'{len(results) - len(run)} stale')
    for module in sorted({r['module'] for r in results}):
        rs = [r for r in results if r['module'] == module]
        missed = [r['name'] for r in rs if r['outcome'] != 'caught']
        print(f'  {module:18s} {len(rs) - len(missed)}/{len(rs)}'
              + (f'  not caught: {", ".join(missed)}' if missed else ''))
    if args.json:
        with open(args.json, 'w') as fh:
            json.dump(dict(results=results, caught=caught, run=len(run)), fh, indent=1)
    return 0 if run and share >= args.min_caught else 1


if __name__ == '__main__':
    sys.exit(main())
