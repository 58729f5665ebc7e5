# PE-Core CLIP pretraining recipe (shared by B/L/G). Paper: CLIP loss with learned temperature,
# LAMB lr 2e-3, progressive resolution, mask regularisation on 1/16 of the batch, 2D RoPE,
# attention pooling. Other numbers (warmup, weight decay, betas, stage boundaries) are ours:
# see docs/core.md.
_base_ = ['./runtime.py', './imagetext_data.py']

arch = 'PE-Core-B16-224'
max_iters = 885_000            # 58B samples / 65,536 global batch (B, L)
final_size = 336
schedule = [(0, 98), (int(max_iters * 0.4), 154), (int(max_iters * 0.7), 224),
            (int(max_iters * 0.9), final_size)]
model = dict(
    type='PECLIP',
    vision=dict(arch=arch, drop_path_rate=0.0),
    text=dict(arch=arch),
    mask_reg=dict(batch_fraction=1 / 16, mask_ratio=0.5, loss_weight=1.0),
    data_preprocessor=dict(type='ClipDataPreprocessor'))

custom_hooks = [dict(type='ProgressiveResolutionHook', schedule=schedule, target='pipeline'),
                dict(type='RNGStateHook')]

optim_wrapper = dict(
    type='AmpOptimWrapper', dtype='bfloat16',
    optimizer=dict(type='Lamb', lr=2e-3, weight_decay=0.05, betas=(0.9, 0.95)),
    paramwise_cfg=dict(custom_keys={'logit_scale': dict(decay_mult=0.),
                                    'mask_token': dict(decay_mult=0.)},
                       norm_decay_mult=0., bias_decay_mult=0.),
    clip_grad=dict(max_norm=1.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=2000),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=2000, end=max_iters, eta_min=0.),
]
# 256 GPUs x 256 = 65,536 per step; the contrastive loss gathers features across all ranks.
train_dataloader = dict(batch_size=256)
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=20_000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
