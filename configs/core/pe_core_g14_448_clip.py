# PE-Core-G14: 98 -> 154 -> 224 -> 336 -> 448 px, 86B samples at a 131,072 global batch.
_base_ = ['./_base_/pe_core_clip.py']
arch = 'PE-Core-G14-448'
max_iters = 656_000
schedule = [(0, 98), (int(max_iters * 0.35), 154), (int(max_iters * 0.6), 224),
            (int(max_iters * 0.8), 336), (int(max_iters * 0.95), 448)]
model = dict(vision=dict(arch=arch, with_cp=True), text=dict(arch=arch))
custom_hooks = [dict(type='ProgressiveResolutionHook', schedule=schedule, target='pipeline'),
                dict(type='RNGStateHook')]
train_dataloader = dict(batch_size=128)  # x 1024 GPUs
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=2000),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=2000, end=max_iters, eta_min=0.),
]
train_cfg = dict(max_iters=max_iters)
img_size = 448
test_pipeline = [dict(type='ClipLoadImage'), dict(type='ClipResize', scale=img_size),
                 dict(type='PackClipInputs')]
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
