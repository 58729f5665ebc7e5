"""Layer-wise lr decay: every PE parameter gets rate ** (num_layers + 1 - layer id)."""
import pytest
from mmengine.optim import build_optim_wrapper
from torch import nn

from pe_dense.engine.optimizers import layer_id
from pe_dense.models.backbones import PE


class Detector(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = PE(dict(patch_size=16, width=32, depth=3, heads=2, mlp_dim=64, img_size=32,
                                cls_token=True, pool='attn', out_dim=8, ln_post=True))
        self.neck = nn.Conv2d(32, 8, 1)


def _groups(num_layers=3, **extra):
    cfg = dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1.0, weight_decay=0.05),
               constructor='LayerDecayOptimWrapperConstructor',
               paramwise_cfg=dict(layer_decay_rate=0.5, num_layers=num_layers, **extra))
    model = Detector()
    wrapper = build_optim_wrapper(model, cfg)
    names = {id(p): n for n, p in model.named_parameters()}
    return {names[id(g['params'][0])]: g for g in wrapper.optimizer.param_groups}


@pytest.mark.parametrize('name, lid', [
    ('backbone.conv1.weight', 0), ('backbone.positional_embedding', 0),
    ('backbone.class_embedding', 0), ('backbone.ln_pre.bias', 0),
    ('backbone.transformer.resblocks.0.attn.in_proj_weight', 1),
    ('backbone.transformer.resblocks.49.mlp.c_fc.weight', 50),
    ('backbone.ln_post.weight', 51), ('neck.weight', 51), ('bbox_head.cls.weight', 51)])
def test_layer_ids_of_pe_names(name, lid):
    assert layer_id(name, 50) == lid


def test_learning_rates_follow_the_decay():
    groups = _groups()
    assert groups['backbone.conv1.weight']['lr'] == pytest.approx(0.5 ** 4)
    assert groups['backbone.transformer.resblocks.0.mlp.c_fc.weight']['lr'] == pytest.approx(0.5 ** 3)
    assert groups['backbone.transformer.resblocks.2.mlp.c_fc.weight']['lr'] == pytest.approx(0.5)
    assert groups['neck.weight']['lr'] == pytest.approx(1.0)


def test_no_weight_decay_for_norms_biases_and_embeddings():
    groups = _groups()
    assert groups['backbone.transformer.resblocks.0.ln_1.weight']['weight_decay'] == 0
    assert groups['backbone.transformer.resblocks.0.attn.in_proj_bias']['weight_decay'] == 0
    assert groups['backbone.positional_embedding']['weight_decay'] == 0
    assert groups['backbone.transformer.resblocks.0.attn.in_proj_weight']['weight_decay'] == 0.05


def test_num_layers_defaults_to_the_backbone_depth_and_custom_keys_multiply():
    groups = _groups(num_layers=None, custom_keys={'neck': dict(lr_mult=0.1)})
    assert groups['backbone.conv1.weight']['lr'] == pytest.approx(0.5 ** 4)
    assert groups['neck.weight']['lr'] == pytest.approx(0.1)


def test_works_from_mmdet_and_mmseg_registries():
    import mmdet.registry
    import mmseg.registry
    for reg in (mmdet.registry.OPTIM_WRAPPER_CONSTRUCTORS, mmseg.registry.OPTIM_WRAPPER_CONSTRUCTORS):
        assert reg.get('LayerDecayOptimWrapperConstructor') is not None


def test_decay_all_params_decays_norms_biases_and_embeddings():
    """detectron2 with weight_decay_norm=None and no overrides (official PE Mask R-CNN)."""
    groups = _groups(decay_all_params=True)
    for name in ('backbone.transformer.resblocks.0.ln_1.weight',
                 'backbone.transformer.resblocks.0.attn.in_proj_bias',
                 'backbone.positional_embedding', 'backbone.class_embedding', 'neck.bias',
                 'backbone.transformer.resblocks.0.attn.in_proj_weight'):
        assert groups[name]['weight_decay'] == 0.05, name
    assert groups['backbone.ln_pre.weight']['lr'] == pytest.approx(0.5 ** 4)
