# DETA + PE-Spatial-G ("Gwin384"), stage 1 of 4: Objects365 v2, 12 epochs at 1024 px, from the
# PE-Spatial-G14-448 tower (configs/_base_/backbones/pe_spatial_g14.py).
# Official script: apps/detection/DETA_pe/scripts/pretrain_spatial_Gwin384_o365ep12_1024pix_16node.sh
# (16 nodes x 8 GPUs x 2 images = 256; detector and backbone lr 2e-4 -- the script passes
# --lr_backbone 2e-4 and leaves --lr and --batch_size at main.py's 2e-4 and 2; drop path 0.5,
# the Gwin384 default; fp32). Every official value is checked by tests/test_deta_official_flags.py.
# Next stage: pe_spatial_g_o365_stage2_1536.py (load_from this run's last checkpoint).
_base_ = [
    '../_base_/models/deta_pe.py',
    '../_base_/datasets/objects365v2_deta_aug.py',
    '../_base_/schedules/deta_adamw_step.py',
    '../_base_/default_runtime.py',
]
image_size = 1024
max_size = image_size - 32
max_epochs = 12
lr_drop = 10
backend_args = None

model = dict(
    data_preprocessor=dict(pad_size_divisor=image_size),  # zero pad to the square after normalising
    backbone=dict(
        drop_path_rate=0.5,
        # official PE-Spatial-G14-448 weights: 14x14 kernel -> 16x16 and pos-emb -> 24x24 on load
        init_cfg=dict(_delete_=True, **_base_.pe_backbone['init_cfg'])),
    bbox_head=dict(num_classes=365))

train_pipeline = [
    dict(type='LoadImageOrSkip', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomChoice', transforms=[
        [dict(type='RandomChoiceResize', keep_ratio=True,
              scales=[(max_size, s) for s in range(480, image_size, 32)])],
        [dict(type='RandomChoiceResize', keep_ratio=True,
              scales=[(100000, s) for s in (400, 500, 600)]),
         dict(type='RandomCrop', crop_type='absolute_range', crop_size=(384, 600),
              allow_negative_crop=True),
         dict(type='RandomChoiceResize', keep_ratio=True, scales=[(max_size, max_size)])],
    ]),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1e-2, 1e-2), keep_empty=False),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageRobust', on_error='raise', backend_args=backend_args),
    dict(type='Resize', scale=(max_size, max_size), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(batch_size=2, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

train_cfg = dict(max_epochs=max_epochs, val_interval=2)
optim_wrapper = dict(optimizer=dict(lr=2e-4))
param_scheduler = [
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[lr_drop],
         gamma=0.1)
]
auto_scale_lr = dict(base_batch_size=256)
