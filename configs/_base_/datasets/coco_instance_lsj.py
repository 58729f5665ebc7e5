# COCO 2017 instance segmentation for the official PE Mask R-CNN (detectron2 LazyConfig
# apps/detection/projects/ViTDet/configs/common/coco_loader_lsj.py on detectron2's
# common/data/coco.py): flip, ResizeScale(0.1, 2.0) to fit 1024 x 1024, FixedSizeCrop 1024
# without padding (the model pads to the square), boxes recomputed from the cropped polygons,
# instances with an empty box dropped (images left without any are still trained on);
# test: shortest edge 1024, longest capped at 1024. Images without annotations are dropped
# from training only. COCOEvaluator: box and mask AP.
_base_ = './coco_detection_lsj.py'
image_size = 1024
backend_args = None

train_pipeline = [
    dict(type='LoadImageOrSkip', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True, poly2mask=False),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomResize', scale=(image_size, image_size), ratio_range=(0.1, 2.0),
         keep_ratio=True),
    dict(type='RandomCrop', crop_type='absolute_range', crop_size=(image_size, image_size),
         recompute_bbox=True, allow_negative_crop=True),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1e-5, 1e-5), keep_empty=False),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageRobust', on_error='raise', backend_args=backend_args),
    dict(type='Resize', scale=(image_size, image_size), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(
    batch_size=1,  # official: 64 images per iteration (64 GPUs x 1)
    sampler=dict(_delete_=True, type='InfiniteSampler', shuffle=True),
    dataset=dict(filter_cfg=dict(filter_empty_gt=True, min_size=0), pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(metric=['bbox', 'segm'])
test_evaluator = val_evaluator
