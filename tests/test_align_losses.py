"""Alignment losses, token masking, frozen-teacher layer checks."""
import numpy as np
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


# Fixed non-square token sets (N=3 tokens; student width 2, teacher width 3) whose cosines are
# exact by hand: student s1.s3 = 3/5, s2.s3 = 8/10, s1.s2 = 0; teacher t1.t2 = 1/sqrt(2).
S_TOKENS = [[1., 0.], [0., 2.], [3., 4.]]
T_TOKENS = [[1., 0., 0.], [1., 1., 0.], [0., 0., 2.]]
# Pairwise MSE: off-diagonal differences 1/sqrt(2), 0.6, 0.8, each twice, over 9 entries:
# (2 * (0.5 + 0.36 + 0.64)) / 9 = 1/3.
PAIRWISE_S_T = 1 / 3
# Token cosine of S_TOKENS against COS_TARGET: 1 - cos = 0, 1 - 1/sqrt(2), 2 -> mean.
COS_TARGET = [[2., 0.], [1., 1.], [-3., -4.]]
TOKEN_COS_S_T = (3 - 2 ** -0.5) / 3


def _np_pairwise_mse(s, t):
    """The definition (arXiv 2504.13181, section 5: MSE of pairwise token cosines), written with numpy."""
    def cos(x):
        x = np.asarray(x, dtype=np.float64)
        x = x / np.linalg.norm(x, axis=-1, keepdims=True)
        return x @ np.swapaxes(x, -1, -2)
    return float(np.mean((cos(s) - cos(t)) ** 2))


def test_pairwise_loss_pinned_on_hand_values():
    # second image: identical relations in both spaces, so it adds 0 and halves the mean
    s = torch.tensor([S_TOKENS, [[1., 0.], [1., 0.], [0., 1.]]])
    t = torch.tensor([T_TOKENS, [[1., 0., 0.], [2., 0., 0.], [0., 0., 5.]]])
    assert _np_pairwise_mse(S_TOKENS, T_TOKENS) == pytest.approx(PAIRWISE_S_T, abs=1e-12)
    assert pairwise_similarity_loss(s, t).item() == pytest.approx(PAIRWISE_S_T / 2, abs=1e-6)
    assert PairwiseSimilarityLoss(loss_weight=3.0)(s, t).item() == pytest.approx(0.5, abs=1e-6)
    assert pairwise_similarity_loss(s, t).item() == pytest.approx(_np_pairwise_mse(s, t), abs=1e-6)


def test_token_cosine_loss_pinned_on_hand_values():
    s, t = torch.tensor([S_TOKENS]), torch.tensor([COS_TARGET])
    assert token_cosine_loss(s, t).item() == pytest.approx(TOKEN_COS_S_T, abs=1e-6)
    assert TokenCosineLoss(0.5)(s, t).item() == pytest.approx(TOKEN_COS_S_T / 2, abs=1e-6)


@pytest.mark.parametrize('loss_fn, target', [(pairwise_similarity_loss, T_TOKENS),
                                             (token_cosine_loss, COS_TARGET)],
                         ids=['pairwise', 'token_cosine'])
def test_teacher_gets_no_gradient(loss_fn, target):
    s = torch.tensor([S_TOKENS], requires_grad=True)
    t = torch.tensor([target], requires_grad=True)
    loss_fn(s, t).backward()
    assert t.grad is None
    assert s.grad.abs().sum() > 0


def test_aligner_terms_pinned_on_fixed_tokens(monkeypatch):
    """SpatialAligner.loss on fixed student / layer-teacher / cached SAM tokens (grid 1x3)."""
    from pe_dense.models.aligners import SpatialAligner
    torch.manual_seed(0)
    m = SpatialAligner(student=dict(arch=TINY), teacher=dict(backbone=dict(arch=TINY), layer=1),
                       sam_teacher=None, cos_weight=2.0, sam_weight=3.0)
    student = torch.tensor([S_TOKENS], requires_grad=True)
    monkeypatch.setattr(m, 'student_tokens', lambda images, masked: (student, (1, 3)))
    monkeypatch.setattr(m.teacher, 'forward', lambda x: (torch.tensor([COS_TARGET]), (1, 3)))
    sam_maps = torch.tensor(T_TOKENS).T.reshape(3, 1, 3)  # (K, gh, gw): token n = column n
    losses = m.loss(torch.zeros(1, 3, 14, 42), [dict(sam_targets=sam_maps)])
    assert losses['loss_cos'].item() == pytest.approx(2.0 * TOKEN_COS_S_T, abs=1e-6)
    assert losses['loss_sam'].item() == pytest.approx(3.0 * PAIRWISE_S_T, abs=1e-6)
    sum(losses.values()).backward()
    assert student.grad.abs().sum() > 0
