# Stage 2 of 4: Objects365 v2, 6 more epochs at 1536 px, from stage 1.
# Official: scripts/pretrain_continue_spatial_Gwin384_o365ep6_1536pix_16node.sh
# (16 nodes x 8 GPUs x 1 image = 128; lr 5e-5 detector and backbone; fp32; drop path 0.5).
# --finetune without --keep_class_embed: the class heads start freshly initialised.
_base_ = ['./pe_spatial_g_o365_stage1_1024.py']
image_size = 1536
max_size = image_size - 32
max_epochs = 6
lr_drop = 4
backend_args = None
load_from = 'work_dirs/pe_spatial_g_o365_stage1_1024/epoch_12.pth'

model = dict(
    data_preprocessor=dict(pad_size_divisor=image_size),
    backbone=dict(drop_path_rate=0.5, init_cfg=None))  # weights come from load_from

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
optim_wrapper = dict(optimizer=dict(lr=5e-5))
param_scheduler = [
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[lr_drop],
         gamma=0.1)
]
auto_scale_lr = dict(base_batch_size=128)
custom_hooks = [
    dict(type='RNGStateHook'),
    dict(type='DropLoadedKeysHook', patterns=[r'^bbox_head\.cls_branches\.']),
]
