# Stage 3 of 4: COCO 2017, 12 epochs at 1728 px, from stage 2.
# Official: scripts/finetune_spatial_Gwin384_cocoep12_1728pix_8node.sh
# (8 nodes x 8 GPUs x 1 image = 64; lr 5e-5; drop path 0.4; --bf16: autocast around the
# backbone only, transformer / heads / losses in fp32). --finetune without --keep_class_embed:
# the class heads start freshly initialised (the Objects365 ones would not fit 80 classes).
_base_ = [
    '../_base_/models/deta_pe.py',
    '../_base_/datasets/coco_detection_deta_aug.py',
    '../_base_/schedules/deta_adamw_step.py',
    '../_base_/default_runtime.py',
]
image_size = 1728
max_size = image_size - 32
max_epochs = 12
lr_drop = 10
backend_args = None
load_from = 'work_dirs/pe_spatial_g_o365_stage2_1536/epoch_6.pth'

model = dict(
    backbone_autocast='bfloat16',
    data_preprocessor=dict(pad_size_divisor=image_size),
    backbone=dict(drop_path_rate=0.4, init_cfg=None),
    bbox_head=dict(num_classes=80))

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
train_dataloader = dict(batch_size=1, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

train_cfg = dict(max_epochs=max_epochs, val_interval=1)
param_scheduler = [
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[lr_drop],
         gamma=0.1)
]
custom_hooks = [
    dict(type='RNGStateHook'),
    dict(type='DropLoadedKeysHook', patterns=[r'^bbox_head\.cls_branches\.']),
]
