"""Per-GPU memory of PE-G training under DDP vs FSDP, computed; docs/distributed.md prints the table.

Run ``python tests/test_reliability_memory.py`` to print the table. Model: PE-Spatial-G14
(width 1536, depth 50, mlp 8960, official core/vision_encoder/config.py). Assumptions (stated in the doc): fp32
master weights, fp32 grads, AdamW with 2 fp32 states, bf16 activations, one image per GPU,
activation checkpointing per block (stored: every block's input; live: one block's
internals during recompute), windowed attention via SDPA (no N^2 score matrix kept).
"""
import math

GB = 1024 ** 3
WIDTH, DEPTH, MLP, PATCH = 1536, 50, 8960, 14


def pe_g_params() -> int:
    block = 4 * WIDTH * WIDTH + 4 * WIDTH + 2 * WIDTH * MLP + MLP + WIDTH + 4 * WIDTH
    return DEPTH * block + 3 * PATCH * PATCH * WIDTH


def activation_bytes(px: int, checkpoint: bool = True, batch: int = 1, act_bytes: int = 2) -> int:
    tokens = math.ceil(px / PATCH) ** 2
    inside = (8 * WIDTH + 2 * MLP) * tokens * batch * act_bytes  # ln, qkv, attn out, mlp, residual
    stored = DEPTH * WIDTH * tokens * batch * act_bytes
    return stored + inside if checkpoint else DEPTH * inside


def per_gpu_bytes(px: int, n_gpus: int, strategy: str, checkpoint: bool = True) -> dict:
    p = pe_g_params()
    shard = n_gpus if strategy == 'fsdp' else 1
    out = dict(params=4 * p / shard, grads=4 * p / shard, optimizer=8 * p / shard,
               activations=activation_bytes(px, checkpoint))
    if strategy == 'fsdp':  # one block gathered unsharded (bf16 params + grads) at a time
        out['gathered'] = 2 * 2 * p / DEPTH
    out['total'] = sum(out.values())
    return out


def table() -> str:
    rows = ['| px | GPUs | strategy | params | grads | AdamW states | activations | total (GiB) |',
            '|---|---|---|---|---|---|---|---|']
    for px in (1024, 1728):
        for n in (8, 64):
            for s in ('ddp', 'fsdp'):
                m = per_gpu_bytes(px, n, s)
                rows.append(f"| {px} | {n} | {s} | {m['params'] / GB:.1f} | {m['grads'] / GB:.1f} | "
                            f"{m['optimizer'] / GB:.1f} | {m['activations'] / GB:.1f} | "
                            f"{m['total'] / GB:.1f} |")
    return '\n'.join(rows)


def test_param_count_matches_the_stated_1_9b():
    assert 1.8e9 < pe_g_params() < 2.0e9


def test_fsdp_shards_states_and_checkpointing_cuts_activations():
    ddp, fsdp = per_gpu_bytes(1728, 8, 'ddp'), per_gpu_bytes(1728, 8, 'fsdp')
    assert ddp['optimizer'] == 8 * fsdp['optimizer'] and fsdp['total'] < ddp['total']
    assert activation_bytes(1728, True) * 10 < activation_bytes(1728, False)
    assert per_gpu_bytes(1024, 8, 'ddp')['total'] / GB > 24  # DDP PE-G misses a 24 GB card


def test_doc_prints_the_computed_table():
    import os
    doc = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                       'docs', 'distributed.md')
    assert table() in open(doc).read(), 'docs/distributed.md table is stale: rerun this file'


if __name__ == '__main__':
    print(table())


def test_fsdp_base_config_resolves():
    import os

    from mmengine.config import Config
    import mmengine._strategy  # noqa: F401  registers the strategies
    import mmengine.runner  # noqa: F401  registers FlexibleRunner
    from mmengine.registry import RUNNERS, STRATEGIES
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    cfg = Config.fromfile(os.path.join(root, 'configs', '_base_', 'fsdp_g14.py'))
    assert RUNNERS.get(cfg.runner_type) is not None
    assert STRATEGIES.get(cfg.strategy['type']) is not None
    assert cfg.model.backbone.with_cp is True
