# PE-Spatial-G frozen depth probe on NYU depth v2, DINOv2's depth 'linear4' probe
# (facebookresearch/dinov2, dinov2/eval/depth/models/decode_heads/linear_head.py and
# dinov2/hub/depthers.py): tokens of four evenly spaced blocks (the last of each quarter:
# 11, 24, 36, 49 of PE-G's 50; plus each block's cls token for archs that have one, see
# docs/depth.md), concatenated, bilinearly upsampled x4, no BatchNorm, 1x1 conv to 256 logits;
# ReLU + 0.1 normalised to sum 1 over bins at linspace(1e-3, max_depth, 256); DINOv2's SigLoss
# (weight 10). `head_mode='regression'` switches to one channel.
_base_ = [
    '../_base_/backbones/pe_spatial_g14.py', '../_base_/datasets/nyu.py',
    '../_base_/schedules/seg_depth_38k.py'
]

# arch, width, patch and checkpoint of the backbone base
arch = _base_.pe_arch
embed_dim = _base_.pe_width
patch_size = _base_.pe_patch_size
probe_layers = (11, 24, 36, 49)  # pe_dense.models.decode_heads.spaced_layers(50)
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
        bin_spacing='ud',
        bin_norm='linear',
        batch_norm=False,
        upsample=4,
        align_corners=False,
        loss_decode=dict(type='SigLoss', loss_weight=10.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
