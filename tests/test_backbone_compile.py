"""The PE backbone compiles as one graph (no graph breaks), so MMEngine's ``compile=True``
captures it whole; the compiled forward equals eager."""
import pytest
import torch

from pe_dense.models.backbones import PE


@pytest.mark.parametrize('arch_extra, kw', [
    (dict(cls_token=True, layer_scale=None), dict(rope_mode='eva', out_indices=(-1,))),
    (dict(cls_token=False, layer_scale=0.1), dict(rope_mode='eva', out_indices=(0, 1),
                                                   pos_embed_mode='tile')),
])
def test_backbone_compiles_fullgraph_and_equals_eager(arch_extra, kw):
    torch._dynamo.reset()
    torch.manual_seed(0)
    arch = dict(patch_size=8, width=32, depth=2, heads=2, mlp_dim=64, pool=None, out_dim=None,
                ln_post=False, img_size=32, **arch_extra)
    model = PE(arch=arch, **kw).eval()
    x = torch.randn(2, 3, 40, 56)  # non-square, not the pretraining size
    with torch.no_grad():
        ref = model(x)
        # dynamo tracing is what breaks graphs; the eager backend checks it without codegen
        out = torch.compile(model, fullgraph=True, backend='eager')(x)
    assert len(out) == len(ref) == len(kw['out_indices'])
    for a, b in zip(ref, out):
        assert a.shape == (2, 32, 5, 7)
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
