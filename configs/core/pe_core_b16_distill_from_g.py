# Distil PE-Core-B16 from a frozen PE-Core-G14 with temperature-scaled soft CLIP targets
# (paper: ~8% of pretraining samples, no weight decay). The teacher sees the student's batch.
_base_ = ['./_base_/pe_core_clip.py']
max_iters = 60_000
model = dict(
    mask_reg=None,
    distill=dict(
        teacher=dict(vision=dict(arch='PE-Core-G14-448'), text=dict(arch='PE-Core-G14-448')),
        teacher_checkpoint='checkpoints/PE-Core-G14-448.pt',
        loss=dict(type='ClipDistillLoss', temperature=2.0, loss_weight=1.0),
        contrastive_weight=0.0))
custom_hooks = [dict(type='ProgressiveResolutionHook', schedule=[(0, 224)]), dict(type='RNGStateHook')]
optim_wrapper = dict(optimizer=dict(weight_decay=0.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=1000),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=1000, end=max_iters, eta_min=0.),
]
train_cfg = dict(max_iters=max_iters)
