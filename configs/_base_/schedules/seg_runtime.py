# Runtime shared by pe_dense segmentation / depth configs (MMSegmentation scope).
# Kept next to the seg schedules that pull it in (seg_*.py); nothing task-specific here.
default_scope = 'mmseg'
custom_imports = dict(imports=['pe_dense.seg'], allow_failed_imports=False)

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'))

vis_backends = [dict(type='LocalVisBackend'), dict(type='TensorboardVisBackend')]
# SegLocalVisualizer draws label maps in the dataset palette and depth maps colour-coded.
visualizer = dict(type='SegLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(by_epoch=False)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0, deterministic=False)
tta_model = dict(type='SegTTAModel')
custom_hooks = [dict(type='RNGStateHook')]  # resumed runs continue with the same randomness
