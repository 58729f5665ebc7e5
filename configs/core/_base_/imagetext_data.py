# Image-text data: JSONL/CSV manifest (or tar shards, see docs/core.md), PE's transforms.
# Training: our augmentation (random resized crop, brightness/saturation jitter), then PE's squash
# resize. ProgressiveResolutionHook sets the crop size of each training batch (the stage's
# resolution, cropped from the source picture); validation runs at img_size, the test size.
data_root = 'data/imagetext'
img_size = 224
train_pipeline = [
    dict(type='ClipLoadImage', on_missing='skip'),
    dict(type='ClipRandomResizedCrop', size=img_size, scale=(0.4, 1.0)),
    dict(type='ClipColorJitter', brightness=0.2, saturation=0.2, prob=0.8),
    dict(type='PackClipInputs'),
]
test_pipeline = [
    dict(type='ClipLoadImage'),
    dict(type='ClipResize', scale=img_size),
    dict(type='PackClipInputs'),
]
train_dataloader = dict(
    batch_size=256, num_workers=8, persistent_workers=True, drop_last=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='ImageTextDataset', data_root=data_root, ann_file='train.jsonl',
                 on_bad='skip', pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=64, num_workers=4, persistent_workers=True, drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='ImageTextDataset', data_root=data_root, ann_file='val.jsonl',
                 test_mode=True, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = [dict(type='ZeroShotAccuracy', topk=(1, 5)),
                 dict(type='ImageTextRetrieval', ks=(1, 5, 10))]
test_evaluator = val_evaluator
