"""Behaviour of the PE backbone: sizes, taps, windows, freezing, checkpointing, bad input."""
import pytest
import torch

from mmengine.registry import MODELS
from pe_dense.models.backbones import PE

TINY = dict(patch_size=16, width=64, depth=4, heads=4, mlp_dim=128, cls_token=True,
            pool='attn', out_dim=32, layer_scale=None, ln_post=True, img_size=64)


def test_registered_in_mmengine_mmdet_and_mmseg_scopes():
    import mmdet.registry
    import mmseg.registry
    for registry in (MODELS, mmdet.registry.MODELS, mmseg.registry.MODELS):
        model = registry.build(dict(type='PE', arch=TINY))
        assert isinstance(model, PE)


@pytest.mark.parametrize('name', ['PE-Core-G14-448', 'PE-Lang-G14-448', 'PE-Spatial-L14-448'])
def test_every_released_arch_builds_on_meta(name):
    with torch.device('meta'):
        model = PE(name)
    from pe_dense.models.backbones import ARCH_SETTINGS
    s = ARCH_SETTINGS[name]
    assert len(model.transformer.resblocks) == s['depth']
    assert model.transformer.resblocks[0].mlp.c_fc.out_features == s['mlp_dim']
    assert hasattr(model, 'class_embedding') == s['cls_token']
    assert hasattr(model, 'attn_pool') == (s['pool'] == 'attn')
    assert hasattr(model, 'ln_post') == s['ln_post']


def test_out_indices_shapes_and_negative_indices():
    model = PE(TINY, out_indices=(0, -1, 2), with_embedding=True).eval()
    outs = model(torch.randn(2, 3, 64, 96))
    assert [tuple(o.shape) for o in outs] == [(2, 64, 4, 6)] * 3 + [(2, 32)]
    with torch.no_grad():
        tokens, hw = model.forward_tokens(torch.randn(1, 3, 64, 96), [3])
    assert hw == (4, 6) and tokens[0].shape == (1, 1 + 24, 64)


def test_out_index_beyond_depth_names_the_problem():
    with pytest.raises(IndexError, match='out index 4'):
        PE(TINY, out_indices=(4,))


def test_inputs_not_divisible_by_patch_are_padded_or_rejected():
    x = torch.randn(1, 3, 70, 50)
    assert PE(TINY)(x)[0].shape[-2:] == (5, 4)
    with pytest.raises(ValueError, match='not divisible by the patch size 16'):
        PE(TINY, pad_to_patch=False)(x)


def test_image_smaller_than_a_patch_is_rejected():
    with pytest.raises(ValueError, match='smaller than one 16x16 patch'):
        PE(TINY)(torch.randn(1, 3, 8, 40))


def test_unknown_arch_lists_known_names():
    with pytest.raises(KeyError, match='PE-Core-B16-224'):
        PE('PE-Core-X99')


def test_final_norm_and_embedding_need_the_heads_the_arch_has():
    with pytest.raises(ValueError, match='ln_post'):
        PE('PE-Spatial-T16-512', final_norm=True)
    with pytest.raises(ValueError, match='attention-pooled'):
        PE('PE-Spatial-T16-512', with_embedding=True)


@torch.no_grad()
def test_one_window_over_the_whole_grid_equals_global_attention():
    arch = dict(TINY, cls_token=False)
    glob = PE(arch).eval()
    win = PE(arch, window_size=4).eval()
    win.load_state_dict(glob.state_dict())
    x = torch.randn(1, 3, 64, 64)
    assert torch.allclose(glob(x)[0], win(x)[0], atol=1e-5)


@torch.no_grad()
def test_window_attention_pads_and_keeps_global_blocks():
    model = PE(dict(TINY, cls_token=False), window_size=3, global_attn_indexes=(1, -1)).eval()
    assert [b.window_size for b in model.transformer.resblocks] == [3, 0, 3, 0]
    out = model(torch.randn(1, 3, 80, 112))[0]  # 5x7 grid, padded to 6x9 inside windows
    assert out.shape == (1, 64, 5, 7) and torch.isfinite(out).all()


def test_window_attention_drops_the_cls_token():
    model = PE(TINY, window_size=2)
    assert model.num_prefix_tokens == 0
    assert model(torch.randn(1, 3, 64, 64))[0].shape == (1, 64, 4, 4)


@torch.no_grad()
def test_tile_mode_repeats_the_grid():
    model = PE(dict(TINY, cls_token=False, img_size=32), pos_embed_mode='tile')
    tokens_pos = []
    model.ln_pre.register_forward_hook(lambda m, i, o: tokens_pos.append(i[0]))
    model.conv1.weight.zero_()
    model(torch.randn(1, 3, 80, 80))
    pos = tokens_pos[0][0].reshape(5, 5, -1)
    grid = model.positional_embedding.reshape(2, 2, -1)
    assert torch.equal(pos[3, 4], grid[1, 0]) and torch.equal(pos[4, 2], grid[0, 0])


def test_frozen_backbone_stays_in_eval_and_computes_no_grads():
    model = PE(TINY, frozen=True)
    model.train()
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    out = model(torch.randn(1, 3, 64, 64))[0]
    assert not out.requires_grad


def test_frozen_stages_freeze_the_stem_and_first_blocks():
    model = PE(TINY, frozen_stages=2).train()
    assert not model.conv1.weight.requires_grad and not model.positional_embedding.requires_grad
    assert not any(p.requires_grad for p in model.transformer.resblocks[1].parameters())
    assert all(p.requires_grad for p in model.transformer.resblocks[2].parameters())
    assert not model.transformer.resblocks[0].training and model.transformer.resblocks[2].training


def test_activation_checkpointing_gives_the_same_values_and_grads():
    torch.manual_seed(0)
    plain = PE(TINY).train()
    cp = PE(TINY, with_cp=True).train()
    cp.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 64, 64)
    plain(x)[0].square().mean().backward()
    cp(x)[0].square().mean().backward()
    for (name, a), b in zip(plain.named_parameters(), cp.parameters()):
        assert (a.grad is None) == (b.grad is None), name
        if a.grad is not None:
            assert torch.allclose(a.grad, b.grad, atol=1e-6), name


def test_drop_path_is_stochastic_in_training_only():
    model = PE(TINY, drop_path_rate=0.5)
    x = torch.randn(4, 3, 64, 64)
    model.train()
    torch.manual_seed(1)
    a = model(x)[0]
    torch.manual_seed(2)
    b = model(x)[0]
    assert not torch.allclose(a, b)
    model.eval()
    assert torch.equal(model(x)[0], model(x)[0])


def test_layer_scale_override_adds_gammas():
    model = PE(TINY, layer_scale_init=0.1)
    assert torch.allclose(model.transformer.resblocks[0].ls_1.gamma, torch.full((64,), 0.1))


@torch.no_grad()
def test_token_mask_replaces_patch_tokens_before_the_blocks():
    model = PE(TINY).eval()
    x = torch.randn(1, 3, 64, 64)
    mask = torch.zeros(1, 16, dtype=torch.bool)
    mask[0, :8] = True
    token = torch.randn(64)
    masked, _ = model.forward_tokens(x, [0], token_mask=mask, mask_token=token)
    other = x.clone()
    other[..., :32, :] = torch.randn(1, 3, 32, 64)  # the masked half's pixels must not matter
    masked2, _ = model.forward_tokens(other, [0], token_mask=mask, mask_token=token)
    assert torch.allclose(masked[0], masked2[0], atol=1e-6)


def test_forward_intermediates_taps_every_block():
    model = PE(TINY).eval()
    final, inter = model.forward_intermediates(torch.randn(1, 3, 64, 64))
    assert len(inter) == 4 and inter[0].shape == (1, 64, 4, 4) and final.shape == (1, 17, 64)
    assert len(model.forward_intermediates(torch.randn(1, 3, 64, 64), indices=2,
                                           intermediates_only=True)) == 2


def test_cls_tokens_follow_the_maps():
    model = PE(TINY, out_indices=(1, 3), out_cls_token=True, with_embedding=True).eval()
    outs = model(torch.randn(2, 3, 64, 64))
    assert [tuple(o.shape) for o in outs] == [(2, 64, 4, 4)] * 2 + [(2, 64)] * 2 + [(2, 32)]
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        tokens, _ = model.forward_tokens(x, [1])
        assert torch.equal(model(x)[2], tokens[0][:, 0])
    with pytest.raises(ValueError, match='needs a cls token'):
        PE(dict(TINY, cls_token=False), out_cls_token=True)


@torch.no_grad()
@pytest.mark.parametrize('name', ['PE-Spatial-T16-512', 'PE-Spatial-S16-512',
                                  'PE-Spatial-B16-512', 'PE-Spatial-L14-448'])
def test_tile_mode_with_a_cls_token_tiles_the_patch_grid_and_keeps_the_cls_row(name):
    """Towers with a cls token (T/S/B/L shapes, one block): the cls token gets row 0, patch
    (i, j) row 1 + (i % g) * g + (j % g); the oracle indexes the table by hand."""
    from pe_dense.models.backbones import ARCH_SETTINGS
    s = dict(ARCH_SETTINGS[name], depth=1)
    assert s['cls_token']
    torch.manual_seed(0)
    model = PE(s, pos_embed_mode='tile').eval()
    p, g = s['patch_size'], s['img_size'] // s['patch_size']
    gh, gw = g + 3, g + 1  # non-square, larger than the table in both directions
    seen = []
    model.ln_pre.register_forward_hook(lambda m, i, o: seen.append(i[0]))
    model.conv1.weight.zero_()
    model.class_embedding.zero_()
    out = model(torch.randn(1, 3, gh * p, gw * p))[0]
    assert out.shape == (1, s['width'], gh, gw)
    table = model.positional_embedding
    expected = torch.stack([table[0]] + [table[1 + (i % g) * g + (j % g)]
                                         for i in range(gh) for j in range(gw)])
    assert seen[0].shape == (1, 1 + gh * gw, s['width'])
    torch.testing.assert_close(seen[0][0], expected, rtol=0, atol=0)
