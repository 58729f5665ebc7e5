# ADE20k (ADEChallengeData2016) at 448 px, the PE paper's linear-probe resolution.
# Layout: data/ade/ADEChallengeData2016/{images,annotations}/{training,validation}/.
# Labels: 0 = "other" (ignored through reduce_zero_label), 1..150 -> classes 0..149.
dataset_type = 'ADE20KDataset'
data_root = 'data/ade/ADEChallengeData2016'
crop_size = (448, 448)
num_classes = 150
# LoadImageRobust (pe_dense): PIL decoding, truncated/non-image files are skipped with a logged
# count in training and raise naming the file at test time (docs/reliability.md).
train_pipeline = [
    dict(type='LoadImageRobust', on_error='skip'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='CheckSegLabel', num_classes=num_classes),
    dict(type='RandomResize', scale=(1792, 448), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageRobust', on_error='raise'),
    dict(type='Resize', scale=(1792, 448), keep_ratio=True),
    # labels are loaded after Resize: metrics compare at the original resolution
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='CheckSegLabel', num_classes=num_classes),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(
    batch_size=2,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='images/training', seg_map_path='annotations/training'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='images/validation', seg_map_path='annotations/validation'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
