"""CLIP losses: contrastive (features gathered across ranks), soft-target distillation, mask
regularisation.

Gathering is differentiable: each rank scores only its own rows against the global batch
("local loss"), and the backward pass sends every rank the gradient other ranks' losses put on its
features. After DDP averages parameter gradients, the update equals the gradient of the
single-process loss on the global batch.
"""
from typing import Tuple

import torch
import torch.distributed as dist
import torch.nn.functional as F
from mmengine.registry import MODELS
from torch import nn


def _world() -> Tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class _GatherRows(torch.autograd.Function):
    """All-gather whose backward sums every rank's gradient and keeps this rank's rows.

    ``torch.distributed.nn.functional.all_gather`` emulates that sum with an all-to-all on gloo,
    whose worker threads can outlive ``destroy_process_group`` and abort the process at exit
    ("terminate called without an active exception"); an all-reduce (or NCCL's reduce-scatter)
    computes the same sum.
    """

    @staticmethod
    def forward(ctx, x):
        world, rank = dist.get_world_size(), dist.get_rank()
        parts = [torch.empty_like(x) for _ in range(world)]
        dist.all_gather(parts, x.contiguous())
        ctx.rank, ctx.rows = rank, x.shape[0]
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad):
        grad = grad.contiguous()
        if dist.get_backend() == dist.Backend.NCCL:
            out = grad.new_empty((ctx.rows,) + grad.shape[1:])
            dist.reduce_scatter_tensor(out, grad)
            return out
        grad = grad.clone()  # all_reduce works in place; autograd may still hold the input
        dist.all_reduce(grad)
        return grad[ctx.rank * ctx.rows:(ctx.rank + 1) * ctx.rows]


def gather_with_grad(x: torch.Tensor) -> Tuple[torch.Tensor, int]:
    """All ranks' ``x`` concatenated (rank order, grads kept) and this rank's row offset."""
    rank, world = _world()
    if world == 1:
        return x, 0
    sizes = [torch.zeros(1, dtype=torch.long, device=x.device) for _ in range(world)]
    dist.all_gather(sizes, torch.tensor([x.shape[0]], device=x.device))
    if len({int(s) for s in sizes}) != 1:
        raise ValueError(f'contrastive gather needs equal per-rank batches, got '
                         f'{[int(s) for s in sizes]} (use drop_last=True)')
    return _GatherRows.apply(x), rank * x.shape[0]


def contrastive_logits(image: torch.Tensor, text: torch.Tensor, scale: torch.Tensor, gather: bool):
    """Local-rows logits (image->all texts, text->all images) and their target columns."""
    img_all, offset = gather_with_grad(image) if gather else (image, 0)
    txt_all, _ = gather_with_grad(text) if gather else (text, 0)
    logits_i = scale * image @ txt_all.t()
    logits_t = scale * text @ img_all.t()
    labels = torch.arange(image.shape[0], device=image.device) + offset
    return logits_i, logits_t, labels


@MODELS.register_module()
class ClipContrastiveLoss(nn.Module):
    """Symmetric InfoNCE over L2-normalised image/text features with a learned scale."""

    def __init__(self, loss_weight: float = 1.0, gather: bool = True):
        super().__init__()
        self.loss_weight = loss_weight
        self.gather = gather

    def forward(self, image: torch.Tensor, text: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        if image.shape != text.shape:
            raise ValueError(f'image features {tuple(image.shape)} and text features '
                             f'{tuple(text.shape)} must pair one to one')
        li, lt, labels = contrastive_logits(image, text, scale, self.gather)
        return self.loss_weight * (F.cross_entropy(li, labels) + F.cross_entropy(lt, labels)) / 2


def _soft_ce(student: torch.Tensor, teacher: torch.Tensor, t: float) -> torch.Tensor:
    target = F.softmax(teacher / t, dim=-1)
    return F.kl_div(F.log_softmax(student / t, dim=-1), target, reduction='batchmean') * t * t


@MODELS.register_module()
class ClipDistillLoss(nn.Module):
    """KL from the teacher's temperature-softened CLIP similarities to the student's (both
    directions, scaled by T^2 so gradients keep their size as T changes)."""

    def __init__(self, temperature: float = 1.0, loss_weight: float = 1.0, gather: bool = True):
        super().__init__()
        if temperature <= 0:
            raise ValueError(f'temperature must be > 0, got {temperature}')
        self.temperature = temperature
        self.loss_weight = loss_weight
        self.gather = gather

    def forward(self, s_image, s_text, s_scale, t_image, t_text, t_scale) -> torch.Tensor:
        si, st, _ = contrastive_logits(s_image, s_text, s_scale, self.gather)
        with torch.no_grad():
            ti, tt, _ = contrastive_logits(t_image, t_text, t_scale, self.gather)
        t = self.temperature
        return self.loss_weight * (_soft_ce(si, ti, t) + _soft_ce(st, tt, t)) / 2


def masked_token_cosine_loss(pred: torch.Tensor, target: torch.Tensor,
                             mask: torch.Tensor) -> torch.Tensor:
    """1 - cosine between masked-input tokens and the (detached) unmasked tokens, over ``mask``.

    pred/target: (B, N, C) patch tokens; mask: (B, N) bool, True where the input was masked.
    """
    if not mask.any():
        return pred.sum() * 0.
    cos = F.cosine_similarity(pred[mask], target.detach()[mask], dim=-1)
    return (1 - cos).mean()
