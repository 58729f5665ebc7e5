# COCO 2017 detection with large-scale jitter (ViTDet recipe) at `image_size`.
# Padding to the square `image_size` is done by the data preprocessor AFTER normalisation
# (pad value 0, as the official DETA collator does): set
# model.data_preprocessor.pad_size_divisor = image_size in the model/stage config.
# Stage configs at other sizes redefine `image_size`, both pipelines and the dataloaders.
dataset_type = 'CheckedCocoDataset'  # mmdet CocoDataset + validation (pe_dense)
data_root = 'data/coco/'
image_size = 1024
backend_args = None

train_pipeline = [
    dict(type='LoadImageOrSkip', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomResize', scale=(image_size, image_size), ratio_range=(0.1, 2.0),
         keep_ratio=True),
    dict(type='RandomCrop', crop_type='absolute_range', crop_size=(image_size, image_size),
         recompute_bbox=True, allow_negative_crop=True),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1e-2, 1e-2)),
    dict(type='PackDetInputs'),
]
# Official DETA test resize: short edge image_size - 32, long edge capped at the same.
test_pipeline = [
    dict(type='LoadImageRobust', on_error='raise', backend_args=backend_args),
    dict(type='Resize', scale=(image_size - 32, image_size - 32), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]

train_dataloader = dict(
    batch_size=1,  # official: 64 GPUs x 1 image
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/instances_train2017.json',
        data_prefix=dict(img='train2017/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=1),
        pipeline=train_pipeline,
        backend_args=backend_args))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/instances_val2017.json',
        data_prefix=dict(img='val2017/'),
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))
test_dataloader = val_dataloader

val_evaluator = dict(
    type='CocoMetric',
    ann_file=data_root + 'annotations/instances_val2017.json',
    metric='bbox',
    # pycocotools' standard maxDets (1, 10, 100), as the official evaluation and the paper;
    # mmdet's default (100, 300, 1000) would score AP50/AP75/AP_s/m/l at 1000 detections
    proposal_nums=(1, 10, 100),
    format_only=False,
    backend_args=backend_args)
test_evaluator = val_evaluator
