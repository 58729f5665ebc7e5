# Mask R-CNN, PE-Spatial-G, COCO 2017, 36 epochs (official: box AP 57.8, mask AP 50.3).
# = apps/detection/projects/ViTDet/configs/COCO/mask_rcnn_PEspatial_G_coco36ep.py with
# apps/detection/scripts/coco/train_mask_rcnn_PEspatial_G_coco36ep.sh (LayerScale 0.1).
# Released weights: mask_rcnn_PEspatial_G_coco36ep.pth on facebook/PE-Detection
# (convert with `tools/convert_checkpoint.py maskrcnn`, docs/detection.md).
_base_ = [
    '../_base_/models/mask_rcnn_pe_g.py',
    '../_base_/datasets/coco_instance_lsj.py',
    '../_base_/schedules/vitdet_lsj.py',
]
max_iters = 184375 * 36 // 100  # 100 epochs -> 36
milestones = [163889 * 36 // 100, 177546 * 36 // 100]
train_cfg = dict(max_iters=max_iters, val_interval=5000)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=250),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters, milestones=milestones,
         gamma=0.1),
]
