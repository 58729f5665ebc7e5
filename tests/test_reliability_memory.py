"""Per-GPU memory of PE-G training under DDP vs FSDP (pe_dense/engine/memory.py), checked
against hand arithmetic; docs/distributed.md prints the computed table."""
import os

from pe_dense.engine.memory import (GB, activation_bytes, encoder_activation_bytes,
                                    pe_g_params, per_gpu_bytes, table)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_param_count_matches_the_stated_1_9b():
    assert 1.8e9 < pe_g_params() < 2.0e9


def test_deta_1824_ddp_equals_hand_arithmetic():
    """1824 px, patch 16, DDP on 8 GPUs, worked out by hand:
    block = 4*1536^2 + 4*1536 + 2*1536*8960 + 8960 + 1536 + 4*1536 = 36,985,088;
    params p = 50 * 36,985,088 + 3*16*16*1536 = 1,850,434,048;
    weights + grads + DDP buckets (4 bytes each) + AdamW (8) = 20 p = 37,008,680,960;
    backbone: 114^2 = 12,996 tokens; stored 50*1536*12,996*2 = 1,996,185,600,
    one block's internals (8*1536 + 2*8960)*12,996*2 = 785,166,336;
    encoder tokens 228^2 + 114^2 + 57^2 + 29^2 + 15^2 = 69,295; floats per token and layer
    7*256 + 6*160 + 2*2048 = 6,848; 6 layers * 69,295 * 6,848 * 4 bytes = 11,388,771,840."""
    m = per_gpu_bytes(1824, 8, 'ddp', patch=16, encoder=True)
    assert pe_g_params(16) == 1_850_434_048
    assert m['params'] + m['grads'] + m['buckets'] + m['optimizer'] == 37_008_680_960
    assert m['buckets'] == m['grads']
    assert m['activations'] == 1_996_185_600 + 785_166_336
    assert encoder_activation_bytes(1824) == m['encoder'] == 11_388_771_840
    assert m['total'] == 51_178_804_736


def test_fsdp_shards_states_and_checkpointing_cuts_activations():
    ddp, fsdp = per_gpu_bytes(1728, 8, 'ddp'), per_gpu_bytes(1728, 8, 'fsdp')
    assert ddp['optimizer'] == 8 * fsdp['optimizer'] and fsdp['total'] < ddp['total']
    assert fsdp['buckets'] == 0
    assert activation_bytes(1728, True) * 10 < activation_bytes(1728, False)
    assert per_gpu_bytes(1024, 8, 'ddp')['total'] / GB > 24  # DDP PE-G misses a 24 GB card


def test_doc_prints_the_computed_table():
    doc = os.path.join(ROOT, 'docs', 'distributed.md')
    assert table() in open(doc).read(), \
        'docs/distributed.md table is stale: python -m pe_dense.engine.memory prints it'


def test_fsdp_base_config_resolves():
    from mmengine.config import Config
    import mmengine._strategy  # noqa: F401  registers the strategies
    import pe_dense.engine  # noqa: F401  registers FullyShardStrategy
    import mmengine.runner  # noqa: F401  registers FlexibleRunner
    from mmengine.registry import RUNNERS, STRATEGIES
    cfg = Config.fromfile(os.path.join(ROOT, 'configs', '_base_', 'fsdp_g14.py'))
    assert RUNNERS.get(cfg.runner_type) is not None
    assert STRATEGIES.get(cfg.strategy['type']) is not None
    assert cfg.model.backbone.with_cp is True
