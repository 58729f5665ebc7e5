"""Alignment losses, token masking, frozen-teacher layer checks."""
import pytest
import torch

from pe_dense.models.aligners import random_token_mask
from pe_dense.models.losses import (PairwiseSimilarityLoss, TokenCosineLoss, pairwise_cosine,
                                    pairwise_similarity_loss, token_cosine_loss)
from pe_dense.models.teachers import FrozenPETeacher

TINY = dict(patch_size=16, width=32, depth=3, heads=2, mlp_dim=64, cls_token=True, img_size=64)


def test_pairwise_zero_for_identical_and_scale_invariant():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 10, 8, generator=g)
    assert pairwise_similarity_loss(x, x.clone()).item() == pytest.approx(0.0, abs=1e-7)
    scale = torch.rand(2, 10, 1, generator=g) * 5 + 0.1  # positive per-token scale
    assert pairwise_similarity_loss(x * scale, x).item() == pytest.approx(0.0, abs=1e-7)
    y = torch.randn(2, 10, 8, generator=g)
    assert pairwise_similarity_loss(y, x).item() > 1e-2


def test_pairwise_widths_differ_and_gradient():
    g = torch.Generator().manual_seed(1)
    s = torch.randn(1, 6, 4, generator=g, requires_grad=True)
    t = torch.randn(1, 6, 12, generator=g)
    loss = PairwiseSimilarityLoss(loss_weight=2.0)(s, t)
    assert loss.item() == pytest.approx(2 * pairwise_similarity_loss(s, t).item())
    loss.backward()
    assert s.grad.abs().sum() > 0
    sim = pairwise_cosine(t)
    assert torch.allclose(torch.diagonal(sim, dim1=1, dim2=2), torch.ones(1, 6), atol=1e-6)
    with pytest.raises(ValueError, match='share'):
        pairwise_similarity_loss(s, t[:, :5])


def test_token_cosine():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, 5, 8, generator=g)
    assert token_cosine_loss(3 * x, x).item() == pytest.approx(0.0, abs=1e-6)
    assert token_cosine_loss(-x, x).item() == pytest.approx(2.0, abs=1e-6)
    assert TokenCosineLoss(0.5)(-x, x).item() == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(ValueError, match='project'):
        token_cosine_loss(x, x[..., :4])


def test_random_token_mask_exact_ratio():
    m = random_token_mask(3, 64, 0.75, generator=torch.Generator().manual_seed(0))
    assert m.dtype == torch.bool and m.sum(1).tolist() == [48, 48, 48]
    assert not torch.equal(m[0], m[1])  # independent per image
    with pytest.raises(ValueError, match='mask_ratio'):
        random_token_mask(1, 4, 1.0)


def test_frozen_teacher_layer_checks_and_stops_early():
    teacher = FrozenPETeacher(dict(arch=TINY), layer=1)
    assert not any(p.requires_grad for p in teacher.parameters())
    x = torch.randn(2, 3, 64, 64)
    tokens, hw = teacher(x)
    assert hw == (4, 4) and tokens.shape == (2, 16, 32)
    full, _ = teacher.pe.forward_tokens(x, [1, 2])
    assert torch.allclose(tokens, full[0][:, 1:])
    called = []
    teacher.pe.transformer.resblocks[2].register_forward_hook(lambda *a: called.append(1))
    teacher(x)
    assert not called  # blocks past the teacher layer never run
    with pytest.raises(ValueError, match='teacher layer 3 is outside'):
        FrozenPETeacher(dict(arch=TINY), layer=3)
