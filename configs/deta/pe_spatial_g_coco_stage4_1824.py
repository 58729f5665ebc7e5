# Stage 4 of 4: COCO 2017, 3 more epochs at 1824 px, from stage 3, class heads kept.
# Official: scripts/finetune_further_spatial_Gwin384_cocoep3_1824pix_8node.sh
# (64 x 1 image; SGD momentum 0.9, lr 5e-5, weight decay 1e-4; --bf16 (backbone only);
# drop path 0.0; --keep_class_embed). The released deta_coco_1824pix.pth is this stage's
# result: 65.2 box AP, 66.0 with TTA (tools/test.py CONFIG CKPT --tta).
_base_ = ['./pe_spatial_g_coco_stage3_1728.py']
image_size = 1824
max_size = image_size - 32
max_epochs = 3
lr_drop = 2
backend_args = None
load_from = 'work_dirs/pe_spatial_g_coco_stage3_1728/epoch_12.pth'

model = dict(
    data_preprocessor=dict(pad_size_divisor=image_size),
    backbone=dict(drop_path_rate=0.0))

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
# Official test resize (datasets/coco.py): short edge 1792, long edge capped at 1792,
# zero-padded to 1824.
test_pipeline = [
    dict(type='LoadImageRobust', on_error='raise', backend_args=backend_args),
    dict(type='Resize', scale=(max_size, max_size), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

train_cfg = dict(max_epochs=max_epochs, val_interval=1)
optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='SGD', lr=5e-5, momentum=0.9, weight_decay=1e-4))
param_scheduler = [
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[lr_drop],
         gamma=0.1)
]
custom_hooks = [dict(type='RNGStateHook')]  # --keep_class_embed: nothing dropped on load

# Test-time augmentation as the official scripts/eval_tta_slurm_1824pix.sh + engine_tta.py:
# 2000 queries (plain testing: 900; the two-stage model has no learned query embeddings, so
# the same weights serve both); long side 1792 (the plain test view), 1728, 1536, 1344, each
# also flipped; views at 1536/1344 keep boxes larger than 64 px; every view post-processed
# with quad soft-NMS on its top 2000 scores; all views merged with class-aware quad soft-NMS
# (IoU 0.7, (1 - IoU) ** 0.5) and every survivor scored (COCO evaluation then keeps the top
# 100 per image and category, as pycocotools does with the official results).
tta_scales = [1792, 1728, 1536, 1344]
tta_model = dict(
    type='DETATTAModel',
    num_queries=2000,
    scale_ranges=[(0, 10000), (0, 10000), (64, 10000), (64, 10000)],
    view_test_cfg=dict(pre_nms_topk=2000, max_per_img=None,
                       soft_nms=dict(method='quad', iou_threshold=0.7, quad_scale=0.5,
                                     min_score=1e-3)),
    tta_cfg=dict(
        nms=dict(type='soft_nms', method='quad', iou_threshold=0.7, quad_scale=0.5,
                 min_score=1e-3),
        max_per_img=None))
tta_pipeline = [
    dict(type='LoadImageRobust', on_error='raise', backend_args=backend_args),
    dict(
        type='TestTimeAug',
        transforms=[
            [dict(type='Resize', scale=(s, s), keep_ratio=True) for s in tta_scales],
            [dict(type='RandomFlip', prob=0.), dict(type='RandomFlip', prob=1.)],
            [dict(type='LoadAnnotations', with_bbox=True)],
            [dict(type='PackDetInputs',
                  meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor',
                             'flip', 'flip_direction'))],
        ])
]
