# Mask R-CNN, PE-Core-G, LVIS v1, 75 epochs (official: box AP 51.9, mask AP 47.9).
# = apps/detection/projects/ViTDet/configs/LVIS/mask_rcnn_PEcore_G_lvis75ep.py with
# apps/detection/scripts/lvis/train_mask_rcnn_PEcore_G_lvis75ep.sh (no LayerScale).
# Released weights: mask_rcnn_PEcore_G_lvis75ep.pth on facebook/PE-Detection.
_base_ = ['./mask_rcnn_PEspatial_G_lvis75ep.py']
model = dict(backbone=dict(
    arch=dict(layer_scale=None),
    init_cfg=dict(checkpoint='checkpoints/PE-Core-G14-448.pt')))
