# PE-Spatial-G frozen depth probe on NYU depth v2 (DINOv2 'linear4' protocol):
# tokens of the last four blocks, concatenated (plus the cls token for archs that have one,
# see docs/depth.md), bilinearly upsampled x4, BN + 1x1 conv to 256 depth bins; depth is the
# softmax-weighted mean of the bin centres. `head_mode='regression'` switches to one channel.
_base_ = [
    '../_base_/backbones/pe_spatial_g14.py', '../_base_/datasets/nyu.py',
    '../_base_/schedules/seg_depth_38k.py'
]

# arch, width, patch and checkpoint of the backbone base
arch = _base_.pe_arch
embed_dim = _base_.pe_width
patch_size = _base_.pe_patch_size
probe_layers = (-4, -3, -2, -1)
head_mode = 'bins'
max_depth = {{_base_.max_depth}}
crop_size = {{_base_.crop_size}}
checkpoint = _base_.pe_backbone.init_cfg.checkpoint

data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[127.5, 127.5, 127.5],
    std=[127.5, 127.5, 127.5],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=0,  # padded depth = 0 = invalid, ignored by loss and metric
    size=crop_size,
    test_cfg=dict(size_divisor=patch_size))
model = dict(
    type='DepthEstimator',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='PE',
        arch=arch,
        img_size=448,
        out_indices=probe_layers,
        frozen=True,
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint)),
    decode_head=dict(
        type='LinearDepthHead',
        in_channels=[embed_dim] * len(probe_layers),
        in_index=list(range(len(probe_layers))),
        mode=head_mode,
        num_bins=256,
        min_depth=1e-3,
        max_depth=max_depth,
        upsample=4,
        norm_cfg=dict(type='SyncBN', requires_grad=True),
        align_corners=False,
        loss_decode=dict(type='SiLogLoss')),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
