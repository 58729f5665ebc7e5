"""Save an aligned / distilled student in the official PE vision-tower layout.

The file holds the student's weights only (no mask token, projection, teachers or pooling
head), so ``PE(arch='PE-Spatial-...', init_cfg=dict(type='Pretrained', checkpoint=OUT))`` and
the official code load it directly.
"""
import os.path as osp
from typing import Dict

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS

from ..backbones.checkpoint import CheckpointError, load_checkpoint_file, save_state_dict
from .spatial_aligner import strip_pooling

STUDENT_PREFIX = 'student.'


def student_from_checkpoint(obj: dict, path: str = '<checkpoint>') -> Dict[str, torch.Tensor]:
    """Student weights (official names, pooling head dropped) from an aligner state dict."""
    sd = obj.get('state_dict', obj)
    sd = {k[7:] if k.startswith('module.') else k: v for k, v in sd.items()}
    student = {k[len(STUDENT_PREFIX):]: v for k, v in sd.items() if k.startswith(STUDENT_PREFIX)}
    if not student:
        raise CheckpointError(f'{path}: no "{STUDENT_PREFIX}*" keys; not a SpatialAligner / '
                              'SpatialDistiller checkpoint')
    return strip_pooling(student)


def export_student(ckpt: str, out: str) -> Dict[str, torch.Tensor]:
    """Read a training checkpoint safely (weights only) and write the student to ``out``.

    MMEngine's objects in the checkpoint load through the allowlist that importing pe_dense
    installs (pe_dense.engine.safe_checkpoint).
    """
    sd = student_from_checkpoint(load_checkpoint_file(ckpt), ckpt)
    save_state_dict(sd, out, layout='official')
    return sd


@HOOKS.register_module()
class ExportStudentHook(Hook):
    """After training, write ``<work_dir>/<filename>`` with the student in the official layout."""

    priority = 'VERY_LOW'

    def __init__(self, filename: str = 'student_official.pt'):
        self.filename = filename

    def after_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if not hasattr(model, 'student_state_dict'):
            raise TypeError(f'ExportStudentHook needs a SpatialAligner/SpatialDistiller, got '
                            f'{type(model).__name__}')
        sd = {k: v.detach().cpu() for k, v in model.student_state_dict().items()}
        path = osp.join(runner.work_dir, self.filename)
        save_state_dict(sd, path, layout='official')
        runner.logger.info(f'ExportStudentHook: student saved to {path}')
