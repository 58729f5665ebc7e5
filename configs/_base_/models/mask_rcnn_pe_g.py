# Mask R-CNN on PE-G as the official PE detectron2 configs build it
# (apps/detection/projects/ViTDet/configs/{COCO,LVIS}/mask_rcnn_PE*_G_*.py, backbone
# apps/detection/detectron2_pe/modeling/backbone/pev1_det.py), in MMDetection terms:
# * PEv1_det: patch 16, width 1536, 50 blocks, 16 heads, MLP 8960, no cls token, a 32x32
#   absolute position grid (pretrain_img_size 512) tiled over the 64x64 token map, window 32
#   everywhere except the global blocks 12/24/36/49, RoPE with the EVA rule over a 32-position
#   range (windows: arange(32) + 1; global: arange(64) / 2 + 1), drop path 0.5, LayerNorm
#   eps 1e-5 (the `norm_layer` argument is not used by pev1_det), no final norm;
# * SimpleFeaturePyramid: scales 4/2/1/0.5 + a max-pooled stride-64 level, channel LayerNorm
#   (detectron2's LN, eps 1e-6) in the 4x sampler and after each 1x1 / 3x3 output conv;
# * detectron2's mask_rcnn_vitdet heads: 2-conv RPN, 4-conv-1-fc box head and 4-conv mask
#   head with LN, ROIAlignV2 (aligned) 7 / 14, sampling ratio 0;
# * pixel mean = std = 127 in RGB, images zero-padded (after normalising) to 1024 x 1024.
# `layer_scale` is 0.1 for PE-Spatial (init_values=0.1) and None for PE-Core.
_base_ = ['mmdet::_base_/models/mask-rcnn_r50_fpn.py']

img_size = 1024
pe_width = 1536
ln_cfg = dict(type='LN2d', eps=1e-6)  # detectron2.layers.LayerNorm
pe_arch = dict(patch_size=16, width=1536, depth=50, heads=16, mlp_dim=8960, layer_scale=0.1,
               img_size=512)

model = dict(
    data_preprocessor=dict(
        mean=[127., 127., 127.],
        std=[127., 127., 127.],
        bgr_to_rgb=True,
        pad_size_divisor=img_size,  # images are at most 1024 px: one 1024 x 1024 square
        pad_value=0,
        pad_mask=True),
    backbone=dict(
        _delete_=True,
        type='PE',
        arch=pe_arch,
        pos_embed_mode='tile',
        rope_mode='eva',
        rope_pt_seq_len=32,
        window_size=32,
        global_attn_indexes=(12, 24, 36, 49),
        out_indices=(-1, ),
        drop_path_rate=0.5,
        with_cp=True,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/PE-Spatial-G14-448.pt')),
    neck=dict(
        _delete_=True,
        type='SimpleFPN',
        in_channels=pe_width,
        scale_factors=(4.0, 2.0, 1.0, 0.5),
        out_channels=256,
        num_outs=5,
        norm_cfg=ln_cfg),
    rpn_head=dict(num_convs=2),
    roi_head=dict(
        bbox_head=dict(
            _delete_=True,
            type='Shared4Conv1FCBBoxHead',
            conv_out_channels=256,
            norm_cfg=ln_cfg,
            in_channels=256,
            fc_out_channels=1024,
            roi_feat_size=7,
            num_classes=80,
            bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0., 0., 0., 0.],
                            target_stds=[0.1, 0.1, 0.2, 0.2]),
            reg_class_agnostic=False,
            loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
            loss_bbox=dict(type='L1Loss', loss_weight=1.0)),  # smooth-L1 with beta 0
        mask_head=dict(norm_cfg=ln_cfg)),
    train_cfg=dict(
        # detectron2's anchor matcher keeps low-quality matches at any IoU
        rpn=dict(assigner=dict(min_pos_iou=0.0)),
        # and its proposal matcher has none
        rcnn=dict(assigner=dict(match_low_quality=False))))
