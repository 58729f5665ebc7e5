# PE-Spatial-G + DETA on COCO: the final stage of the four-stage recipe (arXiv 2504.13181,
# section 5; official apps/detection/DETA_pe), i.e. the model of the released
# deta_coco_1824pix.pth (65.2 box AP, 66.0 with TTA).
#   evaluate:  tools/convert_checkpoint.py deta deta_coco_1824pix.pth checkpoints/deta_pe_coco.pth
#              tools/test.py configs/pe_spatial_deta_coco.py checkpoints/deta_pe_coco.pth [--tta]
#   (--tta runs the official TTA setting: 2000 queries, 4 scales x 2 flips, quad soft-NMS)
#   train:     the four configs in configs/deta/ in order (each load_from's the previous one).
# configs/pe_spatial_detr_coco.py is the same config under its earlier name.
_base_ = ['./deta/pe_spatial_g_coco_stage4_1824.py']
