"""Assigners registered in MMDetection's TASK_UTILS."""
from .deta_assigners import (DETAAssigner, DETAStage1Assigner,  # noqa: F401
                             DETAStage2Assigner, topk_per_gt)

__all__ = ['DETAAssigner', 'DETAStage1Assigner', 'DETAStage2Assigner', 'topk_per_gt']
