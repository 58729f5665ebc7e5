# ViTDet-style Mask R-CNN on PE-Spatial-G, COCO 2017, 36 epochs, LSJ at 1024 px
# (PE paper: 57.8 box AP / 50.3 mask AP). The paper does not release this code; the recipe
# follows ViTDet (Li et al. 2022) with the PE tower set up as the official DETA backbone.
_base_ = [
    './pe_spatial_g_maskrcnn_model.py',
    '../_base_/datasets/coco_instance_lsj.py',
    '../_base_/schedules/vitdet_lsj.py',
    '../_base_/default_runtime.py',
]

max_epochs = 36
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=250),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[32, 35],
         gamma=0.1),
]
train_dataloader = dict(batch_size=1)  # x 64 GPUs
auto_scale_lr = dict(base_batch_size=64)
