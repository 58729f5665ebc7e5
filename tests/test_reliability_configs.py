"""Every trainer's config resumes RNG states: RNGStateHook comes in through its runtime base."""
import os

import pytest
from mmengine.config import Config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = ['configs/demo/pe_deta_toy.py', 'configs/deta/pe_spatial_g_coco_stage3_1728.py',
           'configs/maskrcnn/mask_rcnn_PEspatial_G_coco36ep.py', 'configs/align/toy_align_tiny.py',
           'configs/align/pe_spatial_align_g14_448.py', 'configs/core/pe_core_toy.py',
           'configs/core/pe_core_g14_448_clip.py', 'configs/core/pe_core_b16_video_ft.py',
           'configs/core/pe_core_b16_distill_from_g.py',
           'configs/ade20k/pe_spatial_g14_upernet_448_ade20k.py',
           'configs/nyu/pe_spatial_g14_dpt_nyu.py']


@pytest.mark.parametrize('path', CONFIGS)
def test_config_has_rng_state_hook(path):
    cfg = Config.fromfile(os.path.join(ROOT, path))
    types = [h['type'] for h in cfg.get('custom_hooks', [])]
    assert 'RNGStateHook' in types, f'{path}: custom_hooks={types}'
