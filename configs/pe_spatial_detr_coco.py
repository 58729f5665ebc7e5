# PE-Spatial-G + DETA on COCO: the final stage of the four-stage recipe (docs/detection.md),
# i.e. the model of the released deta_coco_1824pix.pth (65.2 box AP, 66.0 with TTA).
#   evaluate:  tools/convert_checkpoint.py deta deta_coco_1824pix.pth checkpoints/deta_pe_coco.pth
#              tools/test.py configs/pe_spatial_detr_coco.py checkpoints/deta_pe_coco.pth [--tta]
#   train:     the four configs in configs/deta/ in order (each load_from's the previous one).
_base_ = ['./deta/pe_spatial_g_coco_stage4_1824.py']
