# ViTDet-style Mask R-CNN on PE-Spatial-G, LVIS v1, 75 epochs, LSJ at 1024 px
# (PE paper: 54.2 box AP / 49.3 mask AP). Repeat-factor sampling (1e-3), 1203 classes,
# 300 detections per image at a low score threshold (LVIS AP protocol).
_base_ = [
    './pe_spatial_g_maskrcnn_model.py',
    '../_base_/datasets/lvis_v1_instance_lsj.py',
    '../_base_/schedules/vitdet_lsj.py',
    '../_base_/default_runtime.py',
]
model = dict(
    roi_head=dict(bbox_head=dict(num_classes=1203), mask_head=dict(num_classes=1203)),
    test_cfg=dict(rcnn=dict(score_thr=0.0001, max_per_img=300)))

max_epochs = 75
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=250),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[67, 72],
         gamma=0.1),  # 88.9% / 96.3% of 75 epochs
]
