"""Save an aligned / distilled student in the official PE vision-tower layout.

The file holds the student's weights only (no mask token, projection, teachers or pooling
head), so ``PE(arch='PE-Spatial-...', init_cfg=dict(type='Pretrained', checkpoint=OUT))`` and
the official code load it directly.
"""
from typing import Dict

import torch

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

    MMEngine's objects in the checkpoint load through the allowlist of
    ``load_checkpoint_file`` (pe_dense.engine.safe_checkpoint); the hook that writes the student
    at the end of training is ``pe_dense.engine.hooks.ExportStudentHook``.
    """
    sd = student_from_checkpoint(load_checkpoint_file(ckpt), ckpt)
    save_state_dict(sd, out, layout='official')
    return sd
