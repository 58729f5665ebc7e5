# Mask R-CNN, PE-Core-G, COCO 2017, 75 epochs (official: box AP 57.0, mask AP 49.8).
# = apps/detection/projects/ViTDet/configs/COCO/mask_rcnn_PEcore_G_coco75ep.py with
# apps/detection/scripts/coco/train_mask_rcnn_PEcore_G_coco75ep.sh (no LayerScale).
# Released weights: mask_rcnn_PEcore_G_coco75ep.pth on facebook/PE-Detection.
_base_ = [
    '../_base_/models/mask_rcnn_pe_g.py',
    '../_base_/datasets/coco_instance_lsj.py',
    '../_base_/schedules/vitdet_lsj.py',
]
model = dict(backbone=dict(
    arch=dict(layer_scale=None),
    init_cfg=dict(checkpoint='checkpoints/PE-Core-G14-448.pt')))
max_iters = 184375 * 3 // 4  # 100 epochs -> 75
milestones = [163889 * 3 // 4, 177546 * 3 // 4]
train_cfg = dict(max_iters=max_iters, val_interval=5000)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=250),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters, milestones=milestones,
         gamma=0.1),
]
