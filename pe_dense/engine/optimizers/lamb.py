"""timm's LAMB (PE-Core's optimizer) as ``type='Lamb'`` in MMEngine's OPTIMIZERS."""
from mmengine.registry import OPTIMIZERS
from timm.optim import Lamb

if 'Lamb' not in OPTIMIZERS.module_dict:
    OPTIMIZERS.register_module(name='Lamb', module=Lamb)
