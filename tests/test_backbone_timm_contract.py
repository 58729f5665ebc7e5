"""PE.forward_intermediates / prune_intermediate_layers side by side with timm's vit_pe_* models.

Both load one random official-layout state dict. The input is non-square and timm is built at
that size (its position embedding given already resampled by the official rule), so every
argument of timm's contract is compared on real, non-square feature maps.
"""
import pytest
import timm
import torch

from pe_dense.models.backbones import ARCH_SETTINGS, PE, TIMM_NAMES, resolve_arch
from pe_dense.models.backbones.checkpoint import official_to_timm
from pe_dense.models.backbones.pos_embed import sample_pos_embed

CASES = {
    'core_t16': ('PE-Core-T16-384', dict(depth=4), (96, 160)),  # cls token, ln_post, attn pool
    'spatial_g14': ('PE-Spatial-G14-448',  # no cls token, LayerScale, no ln_post
                    dict(depth=3, width=96, heads=4, mlp_dim=560), (98, 154)),
}


def _pair(case, seed=0):
    name, overrides, (h, w) = CASES[case]
    settings = dict(ARCH_SETTINGS[name], **overrides)
    ours = PE(settings).eval()
    gen = torch.Generator().manual_seed(seed)
    sd = {k: torch.randn(v.shape, generator=gen) * 0.1 + (1.0 if k.endswith('ln_1.weight') else 0)
          for k, v in ours.state_dict().items()}
    ours.load_state_dict(sd, strict=True)
    p = settings['patch_size']
    grid = (h // p, w // p)
    timm_sd = official_to_timm(dict(sd, positional_embedding=sample_pos_embed(
        sd['positional_embedding'], int(settings['cls_token']), grid)))
    kw = {k: v for k, v in dict(depth=overrides['depth'], embed_dim=overrides.get('width'),
                                num_heads=overrides.get('heads')).items() if v is not None}
    if 'mlp_dim' in overrides:
        kw['mlp_ratio'] = overrides['mlp_dim'] / overrides['width']
    theirs = timm.create_model(TIMM_NAMES[name], pretrained=False, img_size=(h, w),
                               ref_feat_shape=grid, **kw).eval()
    theirs.load_state_dict(timm_sd, strict=True)
    x = torch.randn(1, 3, h, w, generator=gen)
    return ours, theirs, x


def _close(a, b, what):
    if isinstance(a, (tuple, list)):
        assert type(a) is type(b) and len(a) == len(b), what
        for i, (u, v) in enumerate(zip(a, b)):
            _close(u, v, f'{what}[{i}]')
        return
    assert a.shape == b.shape, f'{what}: {tuple(a.shape)} vs {tuple(b.shape)}'
    assert (a - b).abs().max() <= 1e-4, what


# every value of every argument at least once, in mixed company
CALLS = [
    dict(),
    dict(indices=2),
    dict(indices=[0, -1], norm=True),
    dict(indices=[1], output_fmt='NLC', intermediates_only=True),
    dict(indices=[1], stop_early=True),  # final tokens: those of block 1, normed
    dict(indices=None, norm=True, stop_early=True, output_fmt='NLC'),
    dict(indices=[0, -1], norm=True, output_fmt='NLC', return_prefix_tokens=True),
    dict(indices=2, intermediates_only=True, stop_early=True, return_prefix_tokens=True),
]


@pytest.mark.parametrize('case', sorted(CASES))
@torch.no_grad()
def test_forward_intermediates_matches_timm_for_every_argument(case):
    ours, theirs, x = _pair(case)
    for kw in CALLS:
        if kw.get('return_prefix_tokens') and not ours.num_prefix_tokens:
            assert all(p.shape == (1, 0, ours.embed_dim) for _, p in
                       ours.forward_intermediates(x, **dict(kw, intermediates_only=True)))
            continue  # timm's Eva fails there (no prefix tokens to split)
        _close(ours.forward_intermediates(x, **kw), theirs.forward_intermediates(x, **kw), kw)


@torch.no_grad()
def test_intermediates_only_stops_at_the_last_needed_block():
    ours, _, x = _pair('core_t16')
    ran = []
    for i, blk in enumerate(ours.transformer.resblocks):
        blk.register_forward_hook(lambda *a, i=i: ran.append(i))
    ours.forward_intermediates(x, indices=[1], intermediates_only=True)
    assert ran == [0, 1]
    ran.clear()
    ours.forward_intermediates(x, indices=[1])  # the final tokens need every block
    assert ran == [0, 1, 2, 3]


@pytest.mark.parametrize('case,prune_norm', [('core_t16', True), ('core_t16', False),
                                             ('spatial_g14', True)])
@torch.no_grad()
def test_prune_intermediate_layers_matches_timm(case, prune_norm):
    ours, theirs, x = _pair(case)
    assert ours.prune_intermediate_layers([0, -2], prune_norm=prune_norm) == \
        theirs.prune_intermediate_layers([0, -2], prune_norm=prune_norm)
    assert set(official_to_timm(ours.state_dict())) == set(theirs.state_dict())
    for kw in (dict(), dict(norm=True, output_fmt='NLC'), dict(indices=1, stop_early=True)):
        _close(ours.forward_intermediates(x, **kw), theirs.forward_intermediates(x, **kw), kw)
    # the MM-style outputs follow: out_indices=(-1,) is now the last kept block
    last = ours.forward_intermediates(x, indices=[-1], intermediates_only=True)[0]
    assert torch.equal(ours(x)[0], last)


def test_prune_refuses_to_drop_a_block_out_indices_needs():
    model = PE(dict(ARCH_SETTINGS['PE-Spatial-T16-512'], depth=4), out_indices=(1, 3))
    with pytest.raises(IndexError, match=r'out_indices \[3\]'):
        model.prune_intermediate_layers([0, 1])
    assert len(model.transformer.resblocks) == 4  # left as it was


@pytest.mark.parametrize('official,timm_name', sorted(TIMM_NAMES.items()))
def test_arch_accepts_the_timm_names(official, timm_name):
    for name in (timm_name, f'{timm_name}.fb', f'timm/{timm_name}.fb'):
        assert resolve_arch(name) == ARCH_SETTINGS[official]


def test_unknown_arch_mentions_the_timm_names():
    with pytest.raises(KeyError, match='vit_pe_spatial_gigantic_patch14_448'):
        resolve_arch('vit_pe_spatial_huge_patch14_448')
