# Official DETA_pe optimisation (apps/detection/DETA_pe/main.py + stage scripts):
# AdamW, weight decay 1e-4 on every parameter (main.py's param groups set no exceptions),
# gradient clipping at L2 norm 0.1, x0.1 lr on the deformable-attention sampling offsets
# (--lr_linear_proj_mult; the two-stage model has no `reference_points` layer), step decay
# x0.1 at `lr_drop` (StepLR; each stage ends before a second drop), no layer-wise decay:
# the stage scripts pass --backbone_lrd 0.9 but main.py applies it only to backbones named
# 'vev01*' and the scripts use 'pev1' (the 0.9 decay is the opt-in variant
# configs/deta/pe_spatial_g_coco_stage3_1728_lrd09.py).
# Precision: fp32; the COCO stages autocast the backbone only (model.backbone_autocast).
max_epochs = 12
lr_drop = 10

train_cfg = dict(type='ResumableEpochBasedTrainLoop', max_epochs=max_epochs, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=5e-5, weight_decay=1e-4),
    clip_grad=dict(max_norm=0.1, norm_type=2),
    paramwise_cfg=dict(custom_keys={
        'sampling_offsets': dict(lr_mult=0.1),
        'reference_points': dict(lr_mult=0.1),
    }))

param_scheduler = [
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True,
         milestones=[lr_drop], gamma=0.1)
]

# 64 GPUs x 1 image, as the official COCO stages.
auto_scale_lr = dict(enable=False, base_batch_size=64)
