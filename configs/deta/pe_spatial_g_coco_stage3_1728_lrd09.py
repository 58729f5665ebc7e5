# Opt-in variant of stage 3 (not the released recipe): layer-wise lr decay 0.9 over the 50 PE
# blocks, which the official scripts request (--backbone_lrd 0.9) but main.py never applies to
# a 'pev1' backbone. Norms, biases and position embeddings also lose weight decay here
# (LayerDecayOptimWrapperConstructor), unlike the official param groups.
_base_ = ['./pe_spatial_g_coco_stage3_1728.py']

optim_wrapper = dict(
    constructor='LayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(layer_decay_rate=0.9, num_layers=_base_.pe_depth))
