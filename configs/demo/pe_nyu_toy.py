# NYU depth linear4 probe on the toy NYU, CPU, about a minute (random-init tiny frozen PE, no
# checkpoint): the protocol of configs/nyu/pe_spatial_g14_linear4_nyu.py shrunk.
#   python tools/make_toy_data.py nyu --out data/toy_nyu --num-train 24 --num-val 6 --size 80x64
#   python tools/train.py configs/demo/pe_nyu_toy.py
#   python tools/test.py configs/demo/pe_nyu_toy.py work_dirs/pe_nyu_toy/iter_100.pth \
#       --show-dir work_dirs/pe_nyu_toy/show
_base_ = ['../nyu/pe_spatial_g14_linear4_nyu.py']

data_root = 'data/toy_nyu'
crop_size = (64, 80)  # the toy frames (H, W), a multiple of the tiny patch 8
width = 32
max_iters = 100

model = dict(
    data_preprocessor=dict(size=crop_size, test_cfg=dict(size_divisor=8)),
    backbone=dict(
        arch=dict(_delete_=True, patch_size=8, width=width, depth=4, heads=2, mlp_dim=64, cls_token=True,
                  img_size=64),
        img_size=64, init_cfg=None,
        out_indices=(0, 1, 2, 3)),  # DINOv2's spaced taps of a 4-block tower: spaced_layers(4)
    decode_head=dict(in_channels=[width] * 4, num_bins=32, upsample=2))

train_pipeline = [
    dict(type='LoadImageRobust', on_error='skip'),
    dict(type='LoadDepthAnnotation', depth_rescale_factor=1e-3),
    dict(type='CheckDepthMap', max_depth={{_base_.max_depth}}),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='PackSegInputs',
         meta_keys=('img_path', 'depth_map_path', 'ori_shape', 'img_shape', 'pad_shape',
                    'scale_factor', 'flip', 'flip_direction', 'category_id')),
]
train_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(num_workers=0, persistent_workers=False, dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
# the Eigen crop is defined on 480x640 frames only
val_evaluator = dict(crop_type=None)
test_evaluator = val_evaluator

optim_wrapper = dict(optimizer=dict(lr=3e-2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=25),
    dict(type='PolyLR', eta_min=0.0, power=1.0, by_epoch=False, begin=25, end=max_iters)]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(logger=dict(interval=20),
                     checkpoint=dict(interval=max_iters, max_keep_ckpts=1))
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(vis_backends=vis_backends)
