# Opt-in variant of stage 3 (not the released recipe): ViTDet large-scale jitter (resize by
# 0.1-2.0 of the square size, crop to it) instead of the official DETR-style multi-scale
# augmentation. The same two lines of train_pipeline apply to any stage at its image_size.
_base_ = ['./pe_spatial_g_coco_stage3_1728.py']
image_size = 1728
backend_args = None

train_pipeline = [
    dict(type='LoadImageOrSkip', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomResize', scale=(image_size, image_size), ratio_range=(0.1, 2.0),
         keep_ratio=True),
    dict(type='RandomCrop', crop_type='absolute_range', crop_size=(image_size, image_size),
         recompute_bbox=True, allow_negative_crop=True),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1e-2, 1e-2), keep_empty=False),
    dict(type='PackDetInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
