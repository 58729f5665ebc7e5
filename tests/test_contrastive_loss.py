"""Contrastive / distillation / mask losses against direct computations, and the gathered loss
under a real 2-process gloo group against the single-process loss on the global batch."""
import math
import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

from pe_dense.engine.cpu_distributed import end_distributed
from pe_dense.models.losses.contrastive import (ClipContrastiveLoss, ClipDistillLoss,
                                                masked_token_cosine_loss)


def _direct_clip_loss(img, txt, scale):
    """Textbook symmetric InfoNCE written with explicit sums."""
    n = img.shape[0]
    sim = [[scale * float(img[i] @ txt[j]) for j in range(n)] for i in range(n)]
    i2t = -sum(sim[i][i] - math.log(sum(math.exp(s) for s in sim[i])) for i in range(n)) / n
    t2i = -sum(sim[j][j] - math.log(sum(math.exp(sim[i][j]) for i in range(n)))
               for j in range(n)) / n
    return (i2t + t2i) / 2


def test_contrastive_loss_matches_hand_computation():
    img = F.normalize(torch.tensor([[1., 0.], [0., 1.], [1., 1.]]), dim=-1)
    txt = F.normalize(torch.tensor([[1., 0.2], [0.1, 1.], [0.5, 1.]]), dim=-1)
    loss = ClipContrastiveLoss()(img, txt, torch.tensor(10.))
    assert loss.item() == pytest.approx(_direct_clip_loss(img, txt, 10.), rel=1e-5)
    # perfectly aligned, large scale -> near zero; swapped pairs -> large
    assert ClipContrastiveLoss()(img, img, torch.tensor(100.)).item() < 0.05
    assert ClipContrastiveLoss()(img, img.flip(0), torch.tensor(100.)).item() > 5
    with pytest.raises(ValueError, match='pair one to one'):
        ClipContrastiveLoss()(img, txt[:2], torch.tensor(1.))


def test_distill_loss_is_kl_of_softened_similarities():
    torch.manual_seed(0)
    s_i, s_t, t_i, t_t = (F.normalize(torch.randn(4, 8), dim=-1) for _ in range(4))
    T = 2.0
    loss = ClipDistillLoss(temperature=T)(s_i, s_t, torch.tensor(10.), t_i, t_t, torch.tensor(20.))
    s, t = 10 * s_i @ s_t.t(), 20 * t_i @ t_t.t()

    def kl(a, b):  # mean over rows of KL(softmax(b/T) || softmax(a/T))
        p, q = F.softmax(b / T, -1), F.softmax(a / T, -1)
        return float((p * (p.log() - q.log())).sum(-1).mean())
    expected = T * T * (kl(s, t) + kl(s.t(), t.t())) / 2
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    # identical student and teacher -> zero
    same = ClipDistillLoss(temperature=T)(s_i, s_t, torch.tensor(10.), s_i, s_t, torch.tensor(10.))
    assert same.item() == pytest.approx(0., abs=1e-6)
    with pytest.raises(ValueError, match='temperature'):
        ClipDistillLoss(temperature=0)


def test_masked_token_cosine_loss_only_counts_masked_tokens():
    target = torch.randn(2, 5, 4)
    pred = target.clone()
    mask = torch.zeros(2, 5, dtype=torch.bool)
    mask[0, 1] = mask[1, 3] = True
    pred[0, 2] = -target[0, 2]  # unmasked token: ignored
    assert masked_token_cosine_loss(pred, target, mask).item() == pytest.approx(0., abs=1e-6)
    pred[1, 3] = -target[1, 3]  # masked, opposite -> 1 - (-1) = 2, mean over 2 masked = 1
    assert masked_token_cosine_loss(pred, target, mask).item() == pytest.approx(1.0, abs=1e-5)
    pred.requires_grad_(True)
    masked_token_cosine_loss(pred, target.requires_grad_(True), mask).backward()
    assert target.grad is None  # the target is detached


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _nccl_on_gloo():
    """NCCL's code path on gloo: the backend name and a reduce-scatter built from all-reduce."""
    def reduce_scatter_tensor(out, inp):
        total = inp.clone()
        dist.all_reduce(total)
        out.copy_(total.chunk(dist.get_world_size())[dist.get_rank()])
    dist.get_backend = lambda *a, **k: dist.Backend.NCCL
    dist.reduce_scatter_tensor = reduce_scatter_tensor


def _worker(rank, world, port, img, txt, scale, out_dir, nccl=False):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=world)
    if nccl:
        _nccl_on_gloo()
    try:
        b = img.shape[0] // world
        li = img[rank * b:(rank + 1) * b].clone().requires_grad_(True)
        lt = txt[rank * b:(rank + 1) * b].clone().requires_grad_(True)
        loss = ClipContrastiveLoss()(li, lt, scale)
        loss.backward()
        torch.save(dict(loss=loss.detach(), gi=li.grad, gt=lt.grad),
                   os.path.join(out_dir, f'rank{rank}.pt'))
    except BaseException:
        dist.destroy_process_group()
        raise
    end_distributed()  # as the tools end: no interpreter teardown for gloo to abort in


@pytest.mark.parametrize('nccl', [False, True], ids=['gloo', 'nccl-path'])
def test_gathered_loss_and_grads_match_single_process(tmp_path, nccl):
    torch.manual_seed(0)
    world, n = 2, 6
    img = F.normalize(torch.randn(n, 8), dim=-1)
    txt = F.normalize(torch.randn(n, 8), dim=-1)
    scale = torch.tensor(7.)
    mp.spawn(_worker, args=(world, _free_port(), img, txt, scale, str(tmp_path), nccl),
             nprocs=world)

    gi, gt = img.clone().requires_grad_(True), txt.clone().requires_grad_(True)
    ref = ClipContrastiveLoss(gather=False)(gi, gt, scale)
    ref.backward()
    ranks = [torch.load(tmp_path / f'rank{r}.pt') for r in range(world)]
    # DDP averages over ranks: mean of local losses and of local gradients == global ones
    assert torch.stack([r['loss'] for r in ranks]).mean().item() == pytest.approx(ref.item(), rel=1e-5)
    grad_i = torch.cat([r['gi'] for r in ranks]) / world
    grad_t = torch.cat([r['gt'] for r in ranks]) / world
    torch.testing.assert_close(grad_i, gi.grad, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grad_t, gt.grad, rtol=1e-5, atol=1e-6)
