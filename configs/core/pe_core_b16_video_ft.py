# Image+video finetuning of a pretrained PE-Core (paper stage 2): each clip is 8 uniformly
# sampled frames through the image tower, embeddings averaged, contrasted with its caption.
_base_ = ['./_base_/pe_core_clip.py']
max_iters = 20_000
video_root = 'data/videotext'
model = dict(pretrained='checkpoints/PE-Core-B16-224.pt', mask_reg=None)
video_pipeline = [
    dict(type='ClipLoadVideoFrames', num_frames=8),
    dict(type='ClipRandomResizedCrop', size=224, scale=(0.6, 1.0)),
    dict(type='PackClipInputs'),
]
train_dataloader = dict(
    batch_size=32,
    dataset=dict(_delete_=True, type='VideoTextDataset', data_root=video_root,
                 ann_file='train.jsonl', on_bad='skip', pipeline=video_pipeline))
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
