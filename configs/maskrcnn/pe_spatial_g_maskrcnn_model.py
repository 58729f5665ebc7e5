# ViTDet-style Mask R-CNN model on PE-Spatial-G (shared by the COCO and LVIS configs): stock
# mmdet MaskRCNN, the PE tower set up as the official DETA backbone ("Gwin384"), a ViTDet
# simple feature pyramid (strides 4-32 from the last block + a max-pooled stride-64 level),
# a 2-conv RPN head and 4-conv-1-fc box / mask heads with channel LayerNorm.
_base_ = ['mmdet::_base_/models/mask-rcnn_r50_fpn.py']
custom_imports = dict(
    imports=['pe_dense', 'pe_dense.datasets.coco_checked'], allow_failed_imports=False)
pe_width = 1536
norm_cfg = dict(type='LN2d', requires_grad=True)  # ViTDet's channel LayerNorm (pe_dense.necks)

model = dict(
    data_preprocessor=dict(
        pad_size_divisor=32,
        batch_augments=[dict(type='BatchFixedSizePad', size=(1024, 1024), pad_mask=True)]),
    backbone=dict(
        _delete_=True,
        type='PE',
        arch='PE-Spatial-G14-448',
        patch_size=16,            # 14x14 kernel resized on load, as the official DETA backbone
        img_size=384,             # 24x24 pos-emb grid, tiled over the 64x64 token map
        pos_embed_mode='tile',
        rope_mode='eva',
        window_size=24,
        global_attn_indexes=(12, 24, 36, 49),
        out_indices=(-1, ),
        drop_path_rate=0.5,       # ViTDet-H
        with_cp=True,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/PE-Spatial-G14-448.pt')),
    neck=dict(
        _delete_=True,
        type='SimpleFPN',
        in_channels=pe_width,
        scale_factors=(4.0, 2.0, 1.0, 0.5),   # strides 4, 8, 16, 32 (+ max-pooled 64)
        out_channels=256,
        num_outs=5,
        norm_cfg=norm_cfg),
    rpn_head=dict(num_convs=2),
    roi_head=dict(
        bbox_head=dict(
            _delete_=True,
            type='Shared4Conv1FCBBoxHead',
            conv_out_channels=256,
            norm_cfg=norm_cfg,
            in_channels=256,
            fc_out_channels=1024,
            roi_feat_size=7,
            num_classes=80,
            bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0., 0., 0., 0.],
                            target_stds=[0.1, 0.1, 0.2, 0.2]),
            reg_class_agnostic=False,
            loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
            loss_bbox=dict(type='L1Loss', loss_weight=1.0)),  # detectron2 smooth-L1 beta 0
        mask_head=dict(norm_cfg=norm_cfg)))
