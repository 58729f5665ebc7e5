"""The core configs parse, inherit the paper's settings, and the toy config builds a model."""
import glob

import pytest
from mmengine.config import Config
from mmengine.registry import MODELS

import pe_dense.core  # noqa: F401  registers the core components

CONFIGS = sorted(glob.glob('configs/core/*.py'))


def test_every_core_config_parses_with_custom_imports():
    assert len(CONFIGS) >= 6
    for path in CONFIGS:
        cfg = Config.fromfile(path)
        assert cfg.custom_imports == dict(imports=['pe_dense.core'], allow_failed_imports=False), path
        assert cfg.model.type == 'PECLIP', path
        assert cfg.randomness.seed is not None, path
        assert [b['type'] for b in cfg.vis_backends] == ['LocalVisBackend',
                                                         'TensorboardVisBackend'], path


@pytest.mark.parametrize('name,arch,sizes', [
    ('b16_224', 'PE-Core-B16-224', [98, 154, 224, 336]),
    ('l14_336', 'PE-Core-L14-336', [98, 154, 224, 336]),
    ('g14_448', 'PE-Core-G14-448', [98, 154, 224, 336, 448]),
])
def test_paper_settings(name, arch, sizes):
    cfg = Config.fromfile(f'configs/core/pe_core_{name}_clip.py')
    assert cfg.model.vision.arch == arch and cfg.model.text.arch == arch
    assert cfg.optim_wrapper.optimizer.type == 'Lamb' and cfg.optim_wrapper.optimizer.lr == 2e-3
    hook = [h for h in cfg.custom_hooks if h['type'] == 'ProgressiveResolutionHook'][0]
    assert [s for _, s in hook['schedule']] == sizes
    assert cfg.model.mask_reg.batch_fraction == pytest.approx(1 / 16)


def test_video_and_distill_configs():
    video = Config.fromfile('configs/core/pe_core_b16_video_ft.py')
    assert video.train_dataloader.dataset.type == 'VideoTextDataset'
    assert video.train_dataloader.dataset.pipeline[0] == dict(type='ClipLoadVideoFrames',
                                                              num_frames=8)
    distill = Config.fromfile('configs/core/pe_core_b16_distill_from_g.py')
    assert distill.model.distill.teacher.vision.arch == 'PE-Core-G14-448'
    assert distill.optim_wrapper.optimizer.weight_decay == 0.0


def test_toy_config_builds():
    cfg = Config.fromfile('configs/core/pe_core_toy.py')
    cfg.model.zero_shot = None
    model = MODELS.build(cfg.model)
    assert model.text.context_length == cfg.model.text.arch.context_length
