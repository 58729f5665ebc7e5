"""Loading PE weights from every supported layout, and refusing what does not fit."""
import argparse

import pytest
import torch
from safetensors.torch import save_file

from tests.fixtures.global_state import checkpoint_io  # noqa: F401  (fixture)

from pe_dense.models.backbones import PE, CheckpointError
from pe_dense.models.backbones.checkpoint import (convert_file, load_checkpoint_file,
                                                  official_to_timm, vision_state_dict)

TINY = dict(patch_size=16, width=64, depth=2, heads=4, mlp_dim=128, cls_token=True,
            pool='attn', out_dim=32, layer_scale=0.1, ln_post=True, img_size=64)


def _official(seed=0):
    torch.manual_seed(seed)
    return PE(TINY).state_dict()


def _loaded(path, **kw):
    model = PE(TINY, init_cfg=dict(type='Pretrained', checkpoint=str(path)), **kw)
    model.init_weights()
    return model


def _same(sd, model):
    return all(torch.equal(v, model.state_dict()[k]) for k, v in sd.items())


def test_official_to_pe_dense_to_official_round_trip_is_exact(tmp_path):
    sd = _official()
    torch.save(sd, tmp_path / 'official.pt')
    convert_file(str(tmp_path / 'official.pt'), str(tmp_path / 'ours.pth'), to='pe_dense')
    convert_file(str(tmp_path / 'ours.pth'), str(tmp_path / 'back.pt'), to='official')
    back = torch.load(tmp_path / 'back.pt', weights_only=True)
    assert set(back) == set(sd) and all(torch.equal(back[k], sd[k]) for k in sd)


@pytest.mark.parametrize('wrap', [
    lambda sd: sd,
    lambda sd: {f'visual.{k}': v for k, v in sd.items()} | {'text.token_embedding.weight': torch.ones(3)},
    lambda sd: {'state_dict': {f'module.visual.{k}': v for k, v in sd.items()}},
    lambda sd: {'model': {f'module.{k}': v for k, v in sd.items()}, 'epoch': 3},
])
def test_official_wrappers_load(tmp_path, wrap):
    sd = _official()
    torch.save(wrap(sd), tmp_path / 'ckpt.pt')
    assert _same(sd, _loaded(tmp_path / 'ckpt.pt'))


def test_timm_and_safetensors_files_load(tmp_path):
    sd = _official()
    torch.save(official_to_timm(sd), tmp_path / 'timm.pth')
    save_file(official_to_timm(sd), tmp_path / 'timm.safetensors')
    save_file(sd, tmp_path / 'official.safetensors')
    for name in ('timm.pth', 'timm.safetensors', 'official.safetensors'):
        assert _same(sd, _loaded(tmp_path / name)), name


def test_pos_embed_grid_and_patch_kernel_are_resampled(tmp_path):
    sd = _official()
    torch.save(sd, tmp_path / 'ckpt.pt')
    model = _loaded(tmp_path / 'ckpt.pt', img_size=96, patch_size=8)
    assert model.positional_embedding.shape == (1 + 12 * 12, 64)
    assert model.conv1.weight.shape == (64, 3, 8, 8)
    assert torch.equal(model.positional_embedding[0], sd['positional_embedding'][0])


def test_checkpoint_of_another_size_names_keys_and_shapes(tmp_path):
    torch.save(PE(dict(TINY, width=32, heads=2)).state_dict(), tmp_path / 'small.pt')
    with pytest.raises(CheckpointError, match=r'ln_pre.weight: checkpoint \(32,\) vs model \(64,\)'):
        _loaded(tmp_path / 'small.pt')


def test_truncated_file_is_reported(tmp_path):
    torch.save(_official(), tmp_path / 'full.pt')
    data = (tmp_path / 'full.pt').read_bytes()
    (tmp_path / 'cut.pt').write_bytes(data[:len(data) // 2])
    with pytest.raises(CheckpointError, match=r'cut\.pt is not a readable PyTorch checkpoint'):
        load_checkpoint_file(str(tmp_path / 'cut.pt'))


def test_non_checkpoint_files_are_reported(tmp_path):
    (tmp_path / 'notes.pt').write_text('hello, not a checkpoint')
    with pytest.raises(CheckpointError, match='notes.pt'):
        load_checkpoint_file(str(tmp_path / 'notes.pt'))
    (tmp_path / 'bad.safetensors').write_bytes(b'\x00' * 20)
    with pytest.raises(CheckpointError, match='not a readable safetensors'):
        load_checkpoint_file(str(tmp_path / 'bad.safetensors'))
    with pytest.raises(CheckpointError, match='not found'):
        load_checkpoint_file(str(tmp_path / 'missing.pt'))


def test_pickled_objects_outside_the_allowlist_are_refused(tmp_path):
    torch.save({'model': _official(), 'args': argparse.Namespace(lr=1)}, tmp_path / 'args.pt')
    with pytest.raises(CheckpointError, match='refused to unpickle argparse.Namespace'):
        load_checkpoint_file(str(tmp_path / 'args.pt'))
    obj = load_checkpoint_file(str(tmp_path / 'args.pt'), extra_safe_globals=[argparse.Namespace])
    assert isinstance(obj['args'], argparse.Namespace)


def test_missing_and_unexpected_keys_are_logged(tmp_path):
    import logging

    from mmengine.logging import MMLogger
    sd = _official()
    del sd['proj']
    sd['extra.weight'] = torch.ones(1)
    torch.save(sd, tmp_path / 'partial.pt')
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    try:
        missing, unexpected = PE(TINY).load_pretrained(str(tmp_path / 'partial.pt'))
    finally:
        logger.removeHandler(handler)
    assert missing == ['proj'] and unexpected == ['extra.weight']
    assert any("missing keys: ['proj']" in r.getMessage() and r.levelno == logging.WARNING
               for r in records)


def test_vision_state_dict_rejects_tensorless_objects():
    with pytest.raises(CheckpointError, match='no tensors'):
        vision_state_dict({'epoch': 1})


def test_extra_safe_globals_do_not_shrink_the_process_allowlist(tmp_path, checkpoint_io):
    """Loading with extras must leave the tools' resume allowlist (HistoryBuffer...) in place."""
    from mmengine.logging.history_buffer import HistoryBuffer

    torch.save({'w': torch.ones(1)}, tmp_path / 'w.pt')
    load_checkpoint_file(str(tmp_path / 'w.pt'), extra_safe_globals=[HistoryBuffer, argparse.Namespace])
    allowed = torch.serialization.get_safe_globals()
    assert HistoryBuffer in allowed and argparse.Namespace not in allowed
