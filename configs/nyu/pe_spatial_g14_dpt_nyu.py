# PE-Spatial-G fine-tuned with a DPT decoder on NYU depth v2: four blocks -> mmseg's DPT
# reassemble/fusion stages -> sigmoid * max_depth. Layer-wise lr decay on the backbone.
_base_ = [
    '../_base_/backbones/pe_spatial_g14.py', '../_base_/datasets/nyu.py',
    '../_base_/schedules/seg_depth_38k.py'
]

# arch, width, depth, patch and checkpoint of the backbone base
arch = _base_.pe_arch
embed_dim = _base_.pe_width
depth = _base_.pe_depth
patch_size = _base_.pe_patch_size
max_depth = {{_base_.max_depth}}
crop_size = {{_base_.crop_size}}
checkpoint = _base_.pe_backbone.init_cfg.checkpoint

data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[127.5, 127.5, 127.5],
    std=[127.5, 127.5, 127.5],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=0,
    size=crop_size,
    test_cfg=dict(size_divisor=patch_size))
model = dict(
    type='DepthEstimator',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='PE',
        arch=arch,
        img_size=448,
        out_indices=(12, 24, 36, 49),
        drop_path_rate=0.4,
        with_cp=True,
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint)),
    decode_head=dict(
        type='DPTDepthHead',
        in_channels=[embed_dim] * 4,
        in_index=(0, 1, 2, 3),
        embed_dims=embed_dim,
        post_process_channels=[256, 512, 1024, 1024],
        channels=256,
        mode='regression',
        max_depth=max_depth,
        norm_cfg=dict(type='BN'),
        align_corners=False,
        loss_decode=dict(type='SiLogLoss')),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
optim_wrapper = dict(
    optimizer=dict(lr=5e-5, weight_decay=0.05),
    constructor='LayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(num_layers=depth, layer_decay_rate=0.9))
