# PE-Spatial-L14-448: patch 14, width 1024, depth 24, heads 16, native 448 px.
# Reuse from any MMDetection / MMSegmentation / MMPretrain config (pe_dense installed):
#   _base_ = ['mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py',
#             'pe_dense::_base_/backbones/pe_spatial_l14.py']
#   custom_imports = dict(imports=['pe_dense.backbone'], allow_failed_imports=False)
#   model = dict(backbone={{_base_.pe_backbone_override}},  # replaces the stock backbone
#                neck=dict(in_channels=[{{_base_.pe_width}}] * ...))
# or, in a model without a backbone yet, `backbone={{_base_.pe_backbone}}`.
# out_indices: the spatially aligned last layer.
# Set init_cfg.checkpoint to the downloaded official PE-Spatial-L14-448.pt
# (official .pt, timm .pth/.safetensors and pe_dense checkpoints all load).

pe_arch = 'PE-Spatial-L14-448'
pe_width = 1024
pe_patch_size = 14
pe_depth = 24
pe_backbone = dict(
    type='PE',
    arch=pe_arch,
    out_indices=(-1, ),
    drop_path_rate=0.0,
    init_cfg=dict(type='Pretrained', checkpoint='checkpoints/PE-Spatial-L14-448.pt'))
pe_backbone_override = dict(_delete_=True, **pe_backbone)
