# PE-Spatial-G fine-tuned with UperNet on ADE20k (mmseg 160k schedule, layer-wise lr decay).
# Four blocks feed mmseg's MultiLevelNeck (strides 4, 8, 16, 32 of the image from the
# stride-14 grid); swap the neck for pe_dense's SimpleFPN (ViTDet pyramid from the last
# block) with `neck=dict(type='SimpleFPN', ...)` once it is available.
_base_ = ['../_base_/datasets/ade20k_448.py', '../_base_/schedules/seg_upernet_160k.py']

arch = 'PE-Spatial-G14-448'
embed_dim = 1536
depth = 50
patch_size = 14
crop_size = (448, 448)
checkpoint = 'checkpoints/PE-Spatial-G14-448.pt'
norm_cfg = dict(type='SyncBN', requires_grad=True)

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
        out_indices=(12, 24, 36, 49),
        drop_path_rate=0.4,
        with_cp=True,
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint)),
    neck=dict(
        type='MultiLevelNeck',
        in_channels=[embed_dim] * 4,
        out_channels=1024,
        scales=[4, 2, 1, 0.5]),
    decode_head=dict(
        type='UPerHead',
        in_channels=[1024] * 4,
        in_index=[0, 1, 2, 3],
        pool_scales=(1, 2, 3, 6),
        channels=1024,
        dropout_ratio=0.1,
        num_classes=150,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    auxiliary_head=dict(
        type='FCNHead',
        in_channels=1024,
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
