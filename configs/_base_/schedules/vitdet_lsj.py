# Optimisation of the official PE Mask R-CNN configs (ViTDet's mask_rcnn_vitdet_b_100ep.py
# with the PE overrides): AdamW lr 5e-5, betas (0.9, 0.999), weight decay 0.1 on every
# parameter (weight_decay_norm=None, no overrides), layer-wise lr decay 0.9 over 50 blocks
# (get_vit_lr_decay_rate_pev1), fp16 AMP, iteration-based with 64 images per iteration,
# 250-iteration linear warm-up from 0.001, x0.1 at each milestone.
# The config sets `max_iters`, `milestones` and the evaluation period.
_base_ = ['../default_runtime.py']

max_iters = 184375  # 100 epochs
milestones = [163889, 177546]

train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=5000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

optim_wrapper = dict(
    type='AmpOptimWrapper',  # detectron2 AMPTrainer: float16 autocast + dynamic grad scaling
    optimizer=dict(type='AdamW', lr=5e-5, betas=(0.9, 0.999), weight_decay=0.1),
    constructor='LayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(layer_decay_rate=0.9, num_layers=50, decay_all_params=True))

param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=250),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters, milestones=milestones,
         gamma=0.1),
]
auto_scale_lr = dict(enable=False, base_batch_size=64)

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=5000, max_keep_ckpts=100))
log_processor = dict(by_epoch=False)
randomness = dict(seed=None)  # detectron2's default_setup draws a random seed
