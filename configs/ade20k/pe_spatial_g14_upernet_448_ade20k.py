# PE-Spatial-G fine-tuned with UperNet on ADE20k (mmseg 160k schedule, layer-wise lr decay).
# The last block feeds pe_dense's SimpleFPN in ViTDet mode (4x, 2x, 1x, 0.5x of the
# stride-14 grid, each with 1x1 + 3x3 LN convs to `fpn_channels`). To use several blocks
# instead, set backbone out_indices=(12, 24, 36, 49) and
# neck=dict(type='MultiLevelNeck', in_channels=[1536] * 4, out_channels=768,
#           scales=[4, 2, 1, 0.5]) (mmseg's ViT recipe).
_base_ = [
    '../_base_/backbones/pe_spatial_g14.py', '../_base_/datasets/ade20k_448.py',
    '../_base_/schedules/seg_upernet_160k.py'
]

# arch, width, depth, patch and checkpoint of the backbone base
arch = _base_.pe_arch
embed_dim = _base_.pe_width
depth = _base_.pe_depth
patch_size = _base_.pe_patch_size
crop_size = (448, 448)
checkpoint = _base_.pe_backbone.init_cfg.checkpoint
norm_cfg = dict(type='SyncBN', requires_grad=True)
fpn_channels = 768

data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[127.5, 127.5, 127.5],
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
        out_indices=(-1, ),
        drop_path_rate=0.4,
        with_cp=True,
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint)),
    neck=dict(
        type='SimpleFPN',
        in_channels=embed_dim,
        scale_factors=(4.0, 2.0, 1.0, 0.5),
        out_channels=fpn_channels,
        norm_cfg=dict(type='LN2d')),
    decode_head=dict(
        type='UPerHead',
        in_channels=[fpn_channels] * 4,
        in_index=[0, 1, 2, 3],
        pool_scales=(1, 2, 3, 6),
        channels=fpn_channels,
        dropout_ratio=0.1,
        num_classes=150,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    auxiliary_head=dict(
        type='FCNHead',
        in_channels=fpn_channels,
        in_index=2,
        channels=256,
        num_convs=1,
        concat_input=False,
        dropout_ratio=0.1,
        num_classes=150,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=0.4)),
    train_cfg=dict(),
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(298, 298)))
# 50 blocks: BEiT's 0.65 would starve the early blocks; DETA's 0.9 is used for G.
optim_wrapper = dict(paramwise_cfg=dict(num_layers=depth, layer_decay_rate=0.9))
