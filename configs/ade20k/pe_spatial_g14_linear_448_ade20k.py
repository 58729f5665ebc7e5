# PE-Spatial-G frozen linear probe on ADE20k (PE paper: 49.3 mIoU, 448 px, no TTA).
# Frozen backbone (eval mode, no gradients) -> tokens of `probe_layer` -> BN + 1x1 conv ->
# bilinear upsampling of the logits. Sliding-window inference over 448x448 crops;
# see the `_whole` variant for whole-image inference.
_base_ = [
    '../_base_/backbones/pe_spatial_g14.py', '../_base_/datasets/ade20k_448.py',
    '../_base_/schedules/seg_linear_40k.py'
]

# arch, width, patch and checkpoint of the backbone base
arch = _base_.pe_arch
embed_dim = _base_.pe_width
patch_size = _base_.pe_patch_size
probe_layer = -1  # PE-Spatial: the aligned last layer; for PE-Core-G the best is block 40
crop_size = (448, 448)
checkpoint = _base_.pe_backbone.init_cfg.checkpoint  # official .pt, timm or safetensors

data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[127.5, 127.5, 127.5],  # PE normalises to [-1, 1]
    std=[127.5, 127.5, 127.5],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size=crop_size)
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='PE',
        arch=arch,
        img_size=crop_size[0],
        out_indices=(probe_layer, ),
        frozen=True,
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint)),
    decode_head=dict(
        type='LinearProbeHead',
        in_channels=[embed_dim],
        in_index=[0],
        num_classes=150,
        norm_cfg=dict(type='SyncBN', requires_grad=True),
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(298, 298)))
