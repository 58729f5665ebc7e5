# Mask R-CNN, PE-Spatial-G, LVIS v1, 75 epochs (official: box AP 54.2, mask AP 49.3).
# = apps/detection/projects/ViTDet/configs/LVIS/mask_rcnn_PEspatial_G_lvis75ep.py with
# apps/detection/scripts/lvis/train_mask_rcnn_PEspatial_G_lvis75ep.sh (LayerScale 0.1):
# 1203 classes, sigmoid CE with the federated loss (weights image_count ** 0.5, 50 classes),
# test score threshold 0.02 and 300 detections per image, evaluation every 30000 iterations.
# Released weights: mask_rcnn_PEspatial_G_lvis75ep.pth on facebook/PE-Detection.
_base_ = [
    '../_base_/models/mask_rcnn_pe_g.py',
    '../_base_/datasets/lvis_v1_instance_lsj.py',
    '../_base_/schedules/vitdet_lsj.py',
]
num_classes = 1203
model = dict(
    roi_head=dict(
        bbox_head=dict(
            num_classes=num_classes,
            loss_cls=dict(
                _delete_=True,
                type='FederatedSigmoidCELoss',
                num_classes=num_classes,
                ann_file='data/lvis_v1/annotations/lvis_v1_train.json',
                freq_weight_power=0.5,
                num_fed_loss_classes=50)),
        mask_head=dict(num_classes=num_classes)),
    test_cfg=dict(rcnn=dict(score_thr=0.02, max_per_img=300)))
max_iters = 184375 * 3 // 4  # 100 epochs -> 75
milestones = [163889 * 3 // 4, 177546 * 3 // 4]
train_cfg = dict(max_iters=max_iters, val_interval=30000)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=250),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters, milestones=milestones,
         gamma=0.1),
]
