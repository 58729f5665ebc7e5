# Runtime shared by the alignment / distillation configs (MMEngine scope, iteration-based).
custom_imports = dict(imports=['pe_dense.align'], allow_failed_imports=False)
default_scope = 'mmengine'

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=5000, by_epoch=False, max_keep_ckpts=2),
    sampler_seed=dict(type='DistSamplerSeedHook'))
# Writes <work_dir>/student_official.pt (PE-Spatial layout) when training ends.
custom_hooks = [dict(type='ExportStudentHook')]

env_cfg = dict(cudnn_benchmark=False, mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
               dist_cfg=dict(backend='nccl'))
vis_backends = [dict(type='LocalVisBackend'), dict(type='TensorboardVisBackend')]
visualizer = dict(type='Visualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(type='LogProcessor', window_size=50, by_epoch=False)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0, deterministic=False)
custom_hooks = custom_hooks + [dict(type='RNGStateHook')]  # reliability: RNG states in checkpoints
