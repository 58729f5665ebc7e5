# NYU depth: 38.4k iterations of AdamW with warm-up and poly decay (the length DINOv2 used
# for its NYU probes). lr 1e-4 for the frozen linear probe; the DPT fine-tuning config lowers
# the backbone lr with layer-wise decay on top of this.
_base_ = ['./seg_runtime.py']

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=1e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=1600),
    dict(type='PolyLR', eta_min=0.0, power=1.0, by_epoch=False, begin=1600, end=38400),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=38400, val_interval=3200)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=3200, max_keep_ckpts=2,
                    save_best='rmse', rule='less'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
