# ADE20k linear probe on the toy ADE20k, CPU, about a minute (random-init tiny frozen PE, no
# checkpoint): the protocol of configs/ade20k/pe_spatial_g14_linear_448_ade20k.py shrunk.
#   python tools/make_toy_data.py ade20k --out data/toy_ade20k --num-train 32 --num-val 8 --size 96
#   python tools/train.py configs/demo/pe_ade20k_toy.py
#   python tools/test.py configs/demo/pe_ade20k_toy.py work_dirs/pe_ade20k_toy/iter_100.pth \
#       --show-dir work_dirs/pe_ade20k_toy/show
_base_ = ['../ade20k/pe_spatial_g14_linear_448_ade20k.py']

data_root = 'data/toy_ade20k'
size = 96
crop_size = (size, size)
# the toy set's classes (pe_dense.toy.ADE20K_TOY_CLASSES): ADE ids 1..150 -> these 8
toy_classes = ('wall', 'sky', 'floor', 'grass', 'box', 'signboard', 'ball', 'flag')
num_classes = len(toy_classes)
max_iters = 100

model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        arch=dict(_delete_=True, patch_size=8, width=64, depth=3, heads=2, mlp_dim=64, cls_token=True,
                  img_size=64),
        img_size=size, out_indices=(-1, ), init_cfg=None),
    decode_head=dict(in_channels=[64], num_classes=num_classes,
                     norm_cfg=dict(type='BN', requires_grad=True)),
    test_cfg=dict(mode='slide', crop_size=(48, 48), stride=(32, 32)))

train_pipeline = [
    dict(type='LoadImageRobust', on_error='skip'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='CheckSegLabel', num_classes=num_classes),
    dict(type='RandomResize', scale=(4 * size, size), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageRobust', on_error='raise'),
    dict(type='Resize', scale=(4 * size, size), keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='CheckSegLabel', num_classes=num_classes),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=dict(classes=toy_classes),
                 pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=dict(classes=toy_classes),
                 pipeline=test_pipeline))
test_dataloader = val_dataloader

optim_wrapper = dict(optimizer=dict(lr=1e-2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=10),
    dict(type='PolyLR', eta_min=0.0, power=1.0, by_epoch=False, begin=10, end=max_iters)]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(logger=dict(interval=20),
                     checkpoint=dict(interval=max_iters, max_keep_ckpts=1))
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(vis_backends=vis_backends)
