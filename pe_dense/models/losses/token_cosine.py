"""Token-wise cosine distillation (self-distillation from a frozen intermediate PE layer)."""
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.registry import MODELS


def token_cosine_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Mean of 1 - cos(student_i, teacher_i) over tokens; scale-free, so no norm layer is needed."""
    if student.shape != teacher.shape:
        raise ValueError(f'token cosine: student {tuple(student.shape)} vs teacher '
                         f'{tuple(teacher.shape)}; project the student first if widths differ')
    return (1 - F.cosine_similarity(student.float(), teacher.detach().float(), dim=-1)).mean()


@MODELS.register_module()
class TokenCosineLoss(nn.Module):
    """``loss_weight`` * (1 - cosine) averaged over every (image, token)."""

    def __init__(self, loss_weight: float = 1.0):
        super().__init__()
        self.loss_weight = loss_weight

    def forward(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        return self.loss_weight * token_cosine_loss(student, teacher)
