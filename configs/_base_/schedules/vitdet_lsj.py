# ViTDet-style schedule for Mask R-CNN on a plain ViT (Li et al. 2022, mmdet's ViTDet project):
# AdamW (0.9, 0.999), lr 1e-4, weight decay 0.1, layer-wise lr decay over the PE blocks,
# 250-iteration linear warm-up, x0.1 steps at 88.9% and 96.3% of training, batch 64.
# `max_epochs` is set by the config (COCO 36, LVIS 75).
max_epochs = 36

train_cfg = dict(type='ResumableEpochBasedTrainLoop', max_epochs=max_epochs,
                 val_interval=max_epochs)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

optim_wrapper = dict(
    type='AmpOptimWrapper',
    dtype='bfloat16',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.1),
    constructor='LayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(layer_decay_rate=0.9, num_layers=50))

param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=250),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True,
         milestones=[32, 35], gamma=0.1),  # 88.9% / 96.3% of 36 epochs
]
auto_scale_lr = dict(enable=False, base_batch_size=64)
