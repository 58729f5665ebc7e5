"""fp32 where bf16 breaks: under CPU bf16 autocast (CUDA's casting rules for these ops) the
deformable attention, the DETA losses and boxes, the pairwise cosine matrices and the SAM
decoder's expanded LayerNorm variance receive and compute fp32 tensors."""
import importlib

import torch

from pe_dense.models.losses.pairwise_similarity import pairwise_cosine

from tests.test_deta_model import build, samples
from tests.test_sam_teacher import _tiny_decoder_inputs


def _recorder(monkeypatch, module, name, seen):
    orig = getattr(module, name)

    def run(*args, **kwargs):
        seen.setdefault(name, set()).update(
            a.dtype for a in args if isinstance(a, torch.Tensor) and a.is_floating_point())
        return orig(*args, **kwargs)
    monkeypatch.setattr(module, name, run)


def test_deta_ops_receive_fp32_under_bf16_autocast(monkeypatch):
    seen = {}
    for mod, name in (('mmcv.ops.multi_scale_deform_attn', 'multi_scale_deformable_attn_pytorch'),
                      ('mmdet.models.losses.focal_loss', 'py_sigmoid_focal_loss'),
                      ('mmdet.models.losses.smooth_l1_loss', 'l1_loss'),
                      ('mmdet.models.losses.iou_loss', 'giou_loss')):
        _recorder(monkeypatch, importlib.import_module(mod), name, seen)
    model = build(num_queries=10)
    boxes = []
    model.bbox_head.register_forward_hook(lambda m, i, out: boxes.append(out[1].dtype))
    torch.manual_seed(0)
    x = torch.randn(2, 3, 64, 48)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        losses = model.loss(x, samples(shapes=((64, 48), (40, 48)), batch=(64, 48)))
    assert set(seen) == {'multi_scale_deformable_attn_pytorch', 'py_sigmoid_focal_loss',
                         'l1_loss', 'giou_loss'}
    assert all(dtypes == {torch.float32} for dtypes in seen.values()), seen
    assert boxes == [torch.float32]  # the reference addition of the head
    assert all(v.dtype == torch.float32 and torch.isfinite(v) for v in losses.values())


def test_deta_fp32_attention_keeps_checkpoint_layout():
    from mmcv.ops import MultiScaleDeformableAttention
    model = build(num_queries=10)
    attn = [m for m in model.modules() if isinstance(m, MultiScaleDeformableAttention)]
    assert len(attn) == 4 and all(type(m).__name__.startswith('FP32') for m in attn)
    assert any(k.startswith('encoder.layers.0.self_attn.value_proj') for k in model.state_dict())


def test_pairwise_cosine_is_fp32_under_autocast():
    torch.manual_seed(0)
    tokens = torch.randn(2, 7, 5) + 3  # near-parallel tokens: cosines close to 1
    ref = pairwise_cosine(tokens)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        got = pairwise_cosine(tokens.bfloat16())
    oracle = torch.nn.functional.cosine_similarity(
        tokens.bfloat16().double()[:, :, None], tokens.bfloat16().double()[:, None], dim=-1)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got.double(), oracle, atol=1e-6, rtol=0)
    assert (ref - got).abs().max() < 0.05  # inputs were rounded to bf16, the product was not


def test_sam_factorised_variance_is_fp32_under_autocast(monkeypatch):
    from pe_dense.models.teachers.sam_fast_decoder import FactorisedMaskDecoder
    sam, embed, high, sparse = _tiny_decoder_inputs(3)
    seen = []
    rsqrt = torch.rsqrt
    monkeypatch.setattr(torch, 'rsqrt', lambda x: seen.append(x.dtype) or rsqrt(x))
    with torch.no_grad():
        fd = FactorisedMaskDecoder(sam)
        ref_masks, ref_iou = fd(fd.prepare(embed, high), sparse)
        seen.clear()
        with torch.autocast('cpu', dtype=torch.bfloat16):
            masks, iou = fd(fd.prepare(embed, high), sparse)
    assert seen and set(seen) == {torch.float32}
    torch.testing.assert_close(masks, ref_masks, atol=1e-5, rtol=0)
    torch.testing.assert_close(iou, ref_iou, atol=1e-6, rtol=0)
