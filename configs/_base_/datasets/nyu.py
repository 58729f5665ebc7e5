# NYU depth v2 in mmseg's NYUDataset layout:
#   data/nyu/images/{train,test}/<scene>_<id>.jpg, data/nyu/annotations/{train,test}/<same>.png
# Depth PNGs are uint16 millimetres (depth_rescale_factor=1e-3 -> metres); 0 = no reading.
# Evaluation: pixels with 1e-3 < d < max_depth (10 m) inside the Eigen crop
# (rows 45:471, cols 41:601 of the 480x640 frame; crop_type='nyu_crop', None to disable).
dataset_type = 'NYUDataset'
data_root = 'data/nyu'
max_depth = 10.0
crop_size = (420, 560)  # multiples of 14 (the G patch) inside the 480x640 frame
# LoadImageRobust (pe_dense): PIL decoding, truncated/non-image files are skipped with a logged
# count in training and raise naming the file at test time (docs/reliability.md).
train_pipeline = [
    dict(type='LoadImageRobust', on_error='skip'),
    dict(type='LoadDepthAnnotation', depth_rescale_factor=1e-3),
    dict(type='CheckDepthMap', max_depth=max_depth),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs',
         meta_keys=('img_path', 'depth_map_path', 'ori_shape', 'img_shape', 'pad_shape',
                    'scale_factor', 'flip', 'flip_direction', 'category_id')),
]
test_pipeline = [
    dict(type='LoadImageRobust', on_error='raise'),
    dict(type='LoadDepthAnnotation', depth_rescale_factor=1e-3),
    dict(type='CheckDepthMap', max_depth=max_depth),
    dict(type='PackSegInputs',
         meta_keys=('img_path', 'depth_map_path', 'ori_shape', 'img_shape', 'pad_shape',
                    'scale_factor', 'flip', 'flip_direction', 'category_id')),
]
train_dataloader = dict(
    batch_size=2,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='images/train', depth_map_path='annotations/train'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        test_mode=True,
        data_prefix=dict(img_path='images/test', depth_map_path='annotations/test'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(
    type='DepthMetric', min_depth_eval=1e-3, max_depth_eval=max_depth, crop_type='nyu_crop')
test_evaluator = val_evaluator
