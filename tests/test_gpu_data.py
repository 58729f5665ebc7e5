"""GPU-sized settings that must not change results: the SAM teacher's prompt batch chosen by
device, and a target cache that ignores the settings that only change speed."""
import json

import pytest
import torch

from pe_dense.datasets.sam_target_cache import SAMTargetCache
from pe_dense.models.teachers import SAM2Teacher


def test_sam_chunk_follows_the_device_unless_set():
    t = SAM2Teacher('t', grid=2, image_size=128)
    assert t.chunk_for(torch.device('cpu')) == 4
    assert t.chunk_for('cuda') == 64
    assert SAM2Teacher('t', grid=2, image_size=128, chunk=6).chunk_for('cuda') == 6
    with pytest.raises(ValueError, match='chunk'):
        SAM2Teacher('t', grid=2, image_size=128, chunk=0)


def test_sam_targets_equal_for_any_chunk():
    torch.manual_seed(0)
    t = SAM2Teacher('t', grid=3, image_size=128)
    x = torch.rand(1, 3, 96, 128) * 255
    with torch.no_grad():
        auto = t(x, (3, 4))
        t.chunk = 7
        seven = t(x, (3, 4))
    torch.testing.assert_close(seven, auto, atol=1e-5, rtol=0)


def test_cache_meta_ignores_chunk_compile_decoder(tmp_path):
    sam = dict(type='SAM2Teacher', size='t', grid=32, chunk=4, compile=False)
    cache = SAMTargetCache(str(tmp_path))
    cache.check_meta(dict(sam=sam, grid_hw=[32, 32]))
    stored = json.load(open(tmp_path / 'cache_meta.json'))
    assert stored == dict(sam=dict(type='SAM2Teacher', size='t', grid=32), grid_hw=[32, 32])
    cache.check_meta(dict(sam=dict(sam, chunk=64, compile=True, decoder='sam2'),
                          grid_hw=[32, 32]))
    with pytest.raises(ValueError, match='was made with'):
        cache.check_meta(dict(sam=dict(sam, grid=16), grid_hw=[32, 32]))


def test_cache_made_by_older_versions_with_chunk_is_reused(tmp_path):
    with open(tmp_path / 'cache_meta.json', 'w') as f:
        json.dump(dict(sam=dict(size='t', grid=32, chunk=4), grid_hw=[32, 32]), f)
    SAMTargetCache(str(tmp_path)).check_meta(dict(sam=dict(size='t', grid=32, chunk=64),
                                                  grid_hw=[32, 32]))


CAPTIONS = ['a red fox', 'two dogs playing in the snow beside a wooden fence at the edge of a '
            'dark pine forest while their owner throws a bright orange ball across the frozen lake']


def test_captions_tokenised_in_the_pipeline_equal_the_models_tokens():
    import numpy as np
    from mmengine.dataset import default_collate

    from pe_dense.datasets.transforms.clip_transforms import PackClipInputs
    from pe_dense.models.clip.tokenizer import PETokenizer, fit_context
    pack = PackClipInputs()
    img = np.zeros((8, 12, 3), np.uint8)
    batch = default_collate([pack(dict(img=img, caption=c)) for c in CAPTIONS])
    text = batch['data_samples']['text']
    assert text.shape == (2, 77) and text.dtype == torch.long
    oracle = PETokenizer(32)(CAPTIONS)  # tokenised directly at a 32-token tower's context
    assert (oracle[1] != 0).all()  # the long caption is cut at 32
    assert torch.equal(fit_context(text, 32, PETokenizer(32).eot_token_id), oracle)
    assert 'text' not in PackClipInputs(context_length=None)(dict(img=img, caption='a'))[
        'data_samples']


def test_clip_loss_uses_pipeline_tokens_without_tokenising(monkeypatch):
    import os

    from mmengine.config import Config
    from mmengine.registry import MODELS

    import pe_dense.core  # noqa: F401  registers the CLIP parts
    from pe_dense.models.clip.tokenizer import PETokenizer
    cfg = Config.fromfile(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(
        __file__))), 'configs', 'core', 'pe_core_toy.py')).model
    cfg.update(mask_reg=None, zero_shot=None)
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    images = torch.rand(2, 3, 32, 32)
    ref = model.loss(images, dict(caption=CAPTIONS))['loss_clip']

    text = PETokenizer(77)(CAPTIONS)

    def refuse(self, texts):
        raise AssertionError('the model tokenised captions itself')
    monkeypatch.setattr(PETokenizer, '__call__', refuse)
    got = model.loss(images, dict(caption=CAPTIONS, text=text))['loss_clip']
    torch.testing.assert_close(got, ref, atol=0, rtol=0)
