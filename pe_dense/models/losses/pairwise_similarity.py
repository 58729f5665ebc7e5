"""Pairwise token-similarity matching (SAM-logit alignment, G -> T/S/B/L distillation).

Matching the *relations* between tokens instead of the tokens themselves lets a student learn
from a teacher whose features live in another space and width (SAM mask logits, a wider PE).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.registry import MODELS

from ..layers import fp32_no_autocast


@fp32_no_autocast  # .float() alone is undone by autocast at the matmul
def pairwise_cosine(tokens: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """(B, N, C) -> (B, N, N) cosine similarity of every token pair, in fp32."""
    if tokens.dim() != 3:
        raise ValueError(f'pairwise_cosine expects (B, N, C) tokens, got {tuple(tokens.shape)}')
    t = F.normalize(tokens, dim=-1, eps=eps)
    return t @ t.transpose(1, 2)


def pairwise_similarity_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """MSE between the student's and the teacher's pairwise cosine matrices (widths may differ)."""
    if student.shape[:2] != teacher.shape[:2]:
        raise ValueError(f'pairwise similarity: student tokens {tuple(student.shape)} and teacher '
                         f'tokens {tuple(teacher.shape)} must share (B, N)')
    return F.mse_loss(pairwise_cosine(student), pairwise_cosine(teacher).detach())


@MODELS.register_module()
class PairwiseSimilarityLoss(nn.Module):
    """``loss_weight`` * MSE of pairwise token cosine similarities, (B, N, C_s) vs (B, N, C_t)."""

    def __init__(self, loss_weight: float = 1.0):
        super().__init__()
        self.loss_weight = loss_weight

    def forward(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        return self.loss_weight * pairwise_similarity_loss(student, teacher)
