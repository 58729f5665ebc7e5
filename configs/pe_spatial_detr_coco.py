# Earlier name of configs/pe_spatial_deta_coco.py (the model is DETA, not DETR); kept so the
# documented commands keep working.
_base_ = ['./pe_spatial_deta_coco.py']
