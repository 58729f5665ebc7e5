"""timm's LAMB (PE-Core's optimizer) as ``type='Lamb'`` in MMEngine's OPTIMIZERS.

One change for FSDP2 (pe_dense/engine/fsdp2.py): the global gradient norm that LAMB divides
every gradient by comes out as a replicated ``DTensor`` when the gradients are shards, and a
replicated plain parameter (a 0-d one such as CLIP's ``logit_scale``) cannot be divided by a
``DTensor``. The norm is handed on as a plain 0-d tensor, which DTensor shards accept as a
scalar; without sharding nothing changes.
"""
from mmengine.registry import OPTIMIZERS
from timm.optim import Lamb as TimmLamb


class Lamb(TimmLamb):
    def _get_clip_grad_norm(self):
        norm = super()._get_clip_grad_norm()
        return norm.full_tensor() if hasattr(norm, 'full_tensor') else norm


if 'Lamb' not in OPTIMIZERS.module_dict:
    OPTIMIZERS.register_module(name='Lamb', module=Lamb)
