"""SimpleFPN: DETA mode (official samplers, no norm) and ViTDet mode (output convs, extra level)."""
import pytest
import torch
from mmengine.registry import MODELS

import pe_dense.det  # noqa: F401  registers the det components
from pe_dense.models.necks import LayerNorm2d, SimpleFPN


def test_deta_mode_strides_channels_and_official_names():
    neck = MODELS.build(dict(type='SimpleFPN', in_channels=32, scale_factors=(2.0, 1.0, 0.5)))
    x = torch.randn(2, 32, 6, 8)
    p3, p4, p5 = neck((x, ))
    assert p3.shape == (2, 16, 12, 16) and p4.shape == (2, 32, 6, 8) and p5.shape == (2, 32, 3, 4)
    assert torch.equal(p4, x)                                    # identity
    assert torch.equal(p5, torch.nn.functional.max_pool2d(x, 2))  # 2x2 max-pool
    names = sorted(k for k, _ in neck.state_dict().items())
    assert names == ['fpn1.0.bias', 'fpn1.0.weight']            # official DETA key names
    assert isinstance(neck.fpn1[0], torch.nn.ConvTranspose2d)
    assert neck.fpn1[0].weight.shape == (32, 16, 2, 2)


def test_vitdet_mode_output_convs_and_extra_level():
    neck = MODELS.build(dict(type='SimpleFPN', in_channels=32, out_channels=24,
                             scale_factors=(4.0, 2.0, 1.0, 0.5), num_outs=5,
                             norm_cfg=dict(type='LN2d')))
    outs = neck([torch.randn(1, 32, 8, 8)])
    assert [tuple(o.shape[-2:]) for o in outs] == [(32, 32), (16, 16), (8, 8), (4, 4), (2, 2)]
    assert all(o.shape[1] == 24 for o in outs)
    assert torch.equal(outs[4], outs[3][..., ::2, ::2])          # p6 = stride-2 pool of p5
    assert isinstance(neck.lateral_convs[0].ln, LayerNorm2d)
    assert neck.lateral_convs[0].conv.bias is None               # bias-free convs before a norm
    outs[0].sum().backward()
    assert neck.fpn1[0].weight.grad.abs().sum() > 0


def test_layer_norm_2d_normalises_channels():
    ln = LayerNorm2d(6)
    y = ln(torch.randn(2, 6, 3, 3) * 5 + 2)
    assert torch.allclose(y.mean(1), torch.zeros(2, 3, 3), atol=1e-5)


@pytest.mark.parametrize('kwargs,err', [
    (dict(in_channels=8, scale_factors=(3.0, )), 'scale factor 3.0'),
    (dict(in_channels=[8, 8]), 'one int'),
    (dict(in_channels=8, scale_factors=(2.0, 1.0), num_outs=1), 'num_outs'),
])
def test_bad_arguments(kwargs, err):
    with pytest.raises((ValueError, TypeError), match=err):
        SimpleFPN(**kwargs)
