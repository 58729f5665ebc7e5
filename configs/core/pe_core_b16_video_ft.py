# Image+video finetuning of a pretrained PE-Core (arXiv 2504.13181, section 2: after image
# pretraining, a finetuning stage on the video data engine's ~22M captioned videos together with
# an image "cooldown" of ~50M image-text pairs). Each clip is 8 uniformly sampled frames through
# the image tower, embeddings averaged, contrasted with its caption; images go through the image
# recipe. Every batch is images or videos (their tensors cannot be stacked together), drawn with
# probability `image_ratio` / 1 - `image_ratio`, the same draw on every rank. The paper gives the
# two amounts, not how they were batched: the default share of image batches is the share of
# image samples, 50 / (50 + 22) (ours). The lr, length and warm-up are ours (docs/core.md).
_base_ = ['./_base_/pe_core_clip.py']
max_iters = 20_000
image_root = 'data/imagetext'
video_root = 'data/videotext'
image_ratio = 50 / 72
model = dict(pretrained='checkpoints/PE-Core-B16-224.pt', mask_reg=None)
image_pipeline = [
    dict(type='ClipLoadImage', on_missing='skip'),
    dict(type='ClipRandomResizedCrop', size=224, scale=(0.4, 1.0)),
    dict(type='ClipColorJitter', brightness=0.2, saturation=0.2, prob=0.8),
    dict(type='PackClipInputs'),
]
video_pipeline = [
    dict(type='ClipLoadVideoFrames', num_frames=8),
    dict(type='ClipRandomResizedCrop', size=224, scale=(0.6, 1.0)),
    dict(type='PackClipInputs'),
]
train_dataloader = dict(
    _delete_=True,
    batch_size=32, num_workers=8, persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    batch_sampler=dict(type='ModalityMixBatchSampler', ratios=(image_ratio, 1 - image_ratio)),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='ConcatDataset', datasets=[
        dict(type='ImageTextDataset', data_root=image_root, ann_file='train.jsonl',
             on_bad='skip', pipeline=image_pipeline),
        dict(type='VideoTextDataset', data_root=video_root, ann_file='train.jsonl',
             on_bad='skip', pipeline=video_pipeline)]))
video_test_pipeline = [dict(type='ClipLoadVideoFrames', num_frames=8),
                       dict(type='ClipResize', scale=224), dict(type='PackClipInputs')]
val_dataloader = dict(
    batch_size=16,
    dataset=dict(_delete_=True, type='VideoTextDataset', data_root=video_root,
                 ann_file='val.jsonl', test_mode=True, pipeline=video_test_pipeline))
test_dataloader = val_dataloader
val_evaluator = [dict(type='ImageTextRetrieval', ks=(1, 5, 10))]
test_evaluator = val_evaluator
custom_hooks = [dict(type='RNGStateHook')]  # finetuning runs at the final resolution
optim_wrapper = dict(optimizer=dict(lr=2e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-2, by_epoch=False, begin=0, end=500),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=500, end=max_iters, eta_min=0.),
]
train_cfg = dict(max_iters=max_iters, val_interval=5000)
