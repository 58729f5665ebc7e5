"""Entry points switch TF32 on unless ``env_cfg.allow_tf32=False`` says otherwise."""
import os

import pytest
import torch
from mmengine.config import Config

import tests.fixtures.tiny_task  # noqa: F401  registers TinyRegressor/TinyRegressionSet
from pe_dense.engine.launch import build_runner

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def tf32_flags():
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


@pytest.mark.parametrize('env, expected', [({}, True), (dict(allow_tf32=False), False),
                                           (dict(allow_tf32=True), True)])
def test_build_runner_sets_tf32(tmp_path, tf32_flags, env, expected):
    cfg = Config.fromfile(os.path.join(ROOT, 'tests', 'fixtures', 'tiny_task_cfg.py'))
    cfg.work_dir = str(tmp_path)
    cfg.visualizer = dict(type='Visualizer', vis_backends=[dict(type='LocalVisBackend')])
    cfg.env_cfg = dict(dist_cfg=dict(backend='gloo'), **env)
    cfg.experiment_name = f'tf32_{tmp_path.name}'
    if not expected:  # turning it off must undo an earlier True
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    build_runner(cfg)
    assert torch.backends.cuda.matmul.allow_tf32 is expected
    assert torch.backends.cudnn.allow_tf32 is expected


def test_dataloaders_pin_memory_on_cuda_only(monkeypatch):
    from pe_dense.engine.launch import pin_memory_on_cuda
    cfg = Config(dict(train_dataloader=dict(batch_size=2), val_dataloader=dict(pin_memory=False),
                      test_dataloader=None))
    pin_memory_on_cuda(cfg)
    assert 'pin_memory' not in cfg.train_dataloader  # no CUDA here
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    pin_memory_on_cuda(cfg)
    assert cfg.train_dataloader.pin_memory is True
    assert cfg.val_dataloader.pin_memory is False  # the config's choice stays


def test_rope_table_cache_is_bounded_lru():
    from pe_dense.models.backbones.rope import Rope2D
    rope = Rope2D(16, mode='eva')
    first = rope(3, 5)
    for n in range(4, 4 + rope.cache_size - 1):
        rope(n, 7)
    assert rope(3, 5) is first  # still cached (and now most recent)
    rope(20, 7)  # one over the bound: evicts the least recently used, (4, 7)
    assert len(rope._cache) == rope.cache_size
    assert rope(3, 5) is first
    assert (4, 7, 0, rope.freqs.device) not in rope._cache
    torch.testing.assert_close(rope(4, 7), Rope2D(16, mode='eva')(4, 7), atol=0, rtol=0)


def test_detection_benchmark_synchronises_around_timed_work(monkeypatch):
    import importlib.util
    from types import SimpleNamespace
    spec = importlib.util.spec_from_file_location(
        'bench_detection', os.path.join(ROOT, 'benchmarks', 'detection.py'))
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    events = []
    monkeypatch.setattr(torch.cuda, 'synchronize', lambda device=None: events.append('sync'))
    gpu = SimpleNamespace(device=torch.device('cuda', 0))
    model = SimpleNamespace(parameters=lambda: iter([gpu]), eval=lambda: None,
                            test_step=lambda batch: events.append('test'))
    bench.time_inference(model, [dict(inputs=[0, 1])], num_images=2)
    assert events == ['sync', 'test', 'sync']


def test_pe_depth_override_keeps_the_first_blocks():
    from pe_dense.models.backbones import PE
    arch = dict(patch_size=16, width=32, depth=5, heads=2, mlp_dim=64, cls_token=False,
                pool=None, out_dim=None, layer_scale=0.1, ln_post=False, img_size=64)
    torch.manual_seed(0)
    full = PE(arch=arch, global_attn_indexes=(4, ), window_size=2)
    short = PE(arch=arch, depth=2, global_attn_indexes=(4, ), window_size=2)
    assert len(short.transformer.resblocks) == 2 and short.depth == 2
    missing, unexpected = short.load_state_dict(full.state_dict(), strict=False)
    assert not missing and all(k.startswith(tuple(f'transformer.resblocks.{i}.' for i in (2, 3, 4)))
                               for k in unexpected)
    with pytest.raises(ValueError, match='depth must be in'):
        PE(arch=arch, depth=6)
