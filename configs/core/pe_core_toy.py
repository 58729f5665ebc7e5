# Tiny PE-Core CLIP trained from scratch on the toy captioned shapes (CPU, a few minutes):
#   python tools/make_toy_data.py imagetext --out data/toy_imagetext --num-train 1536 \
#       --num-val 120 --size 64 --classes circle,square,triangle --max-groups 1 --max-count 1 \
#       --radius 0.3,0.34 --background blurred --num-videos 1
#   python tools/train.py configs/core/pe_core_toy.py
# Pictures are made at 64 px and trained/evaluated at 32 px (patch 8: a 4x4 token grid). One
# shape of nearly fixed size per picture on a blurred photo: a from-scratch ViT this small learns
# shape only when the visual signal is this clear. 12 "<colour> <shape>" zero-shot classes
# (chance 1/12). Seed 0, one thread: 87.5 % zero-shot top-1, t2i R@1 100 % in ~150 s of CPU
# (docs/core.md, "Toy convergence"; tests/test_clip_toy_train.py).
_base_ = ['./_base_/runtime.py', './_base_/imagetext_data.py']

# The data recipe above, as make_imagetext kwargs (tests/test_clip_toy_train.py uses it).
toy_data = dict(num_train=1536, num_val=120, size=64, classes=('circle', 'square', 'triangle'),
                max_groups=1, max_count=1, radius=(0.3, 0.34), background='blurred',
                num_videos=1)

data_root = 'data/toy_imagetext'
img_size = 32
max_iters = 800
model = dict(
    type='PECLIP',
    vision=dict(arch=dict(patch_size=8, width=96, depth=3, heads=3, mlp_dim=384, cls_token=True,
                          pool='attn', out_dim=64, ln_post=True, img_size=img_size)),
    text=dict(arch=dict(context_length=16, width=64, layers=2, heads=2, output_dim=64)),
    mask_reg=dict(batch_fraction=1 / 16, mask_ratio=0.5, loss_weight=1.0),
    zero_shot=dict(classnames=data_root + '/classnames.json', templates=['a {}', '{}s']),
    data_preprocessor=dict(type='ClipDataPreprocessor'))

train_pipeline = [
    dict(type='ClipLoadImage', on_missing='skip'),
    dict(type='ClipRandomResizedCrop', size=img_size, scale=(0.9, 1.0)),  # big shapes: keep whole
    dict(type='PackClipInputs'),
]
test_pipeline = [
    dict(type='ClipLoadImage'),
    dict(type='ClipResize', scale=img_size),
    dict(type='PackClipInputs'),
]
train_dataloader = dict(
    batch_size=64, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=64, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader

custom_hooks = [dict(type='ProgressiveResolutionHook', schedule=[(0, img_size)])]

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='Lamb', lr=4e-3, weight_decay=0.05, betas=(0.9, 0.95)),
    paramwise_cfg=dict(custom_keys={'logit_scale': dict(decay_mult=0.)}, norm_decay_mult=0.,
                       bias_decay_mult=0.),
    clip_grad=dict(max_norm=1.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.05, by_epoch=False, begin=0, end=30),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=30, end=max_iters, eta_min=1e-5),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(logger=dict(interval=25),
                     checkpoint=dict(interval=max_iters, max_keep_ckpts=1))
randomness = dict(seed=0, deterministic=False)
custom_hooks = custom_hooks + [dict(type='RNGStateHook')]  # reliability: RNG states in checkpoints
