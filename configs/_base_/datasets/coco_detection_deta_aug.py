# COCO 2017 with the augmentation the official DETA_pe code uses in all four stages (its
# `--lsj` flag selects datasets/coco.py make_coco_transforms_lsj, which is DETR's multi-scale
# recipe at a larger size, not ViTDet's large-scale jitter): flip, then with equal chance
#   (a) resize the short side to one of 480, 512, ..., size - 32 (long side <= size - 32), or
#   (b) resize the short side to 400/500/600, random crop of 384..600 px per side,
#       resize the short side to size - 32 (long side <= size - 32);
# then zero padding to the square `image_size` (data preprocessor, pad_size_divisor=image_size).
# Images without boxes are trained on (the official loader keeps them). ViTDet LSJ
# (coco_detection_lsj.py) is the opt-in variant configs/deta/pe_spatial_g_coco_stage3_1728_vitdet_lsj.py.
# Stage configs at other sizes redefine `image_size` and both pipelines.
_base_ = './coco_detection_lsj.py'
image_size = 1824
max_size = image_size - 32
backend_args = None

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
train_dataloader = dict(
    dataset=dict(filter_cfg=dict(filter_empty_gt=False, min_size=1), pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
