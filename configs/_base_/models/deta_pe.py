# DETA on PE-Spatial-G ("Gwin384"), as the official DETA_pe model (facebookresearch/
# perception_models, apps/detection/DETA_pe/models/{pev1,backbone,deformable_detr,
# deformable_transformer}.py; paper arXiv 2504.13181, section 5 "Detection"):
# the G tower of configs/_base_/backbones/pe_spatial_g14.py with a 16x16 patch (14x14 kernel
# resized bicubically on load), its 448 px pos-emb resampled to a 24x24 grid and tiled over the
# image, 24x24 window attention except in blocks 12/24/36/49, EVA-style RoPE, no final norm;
# simple FPN from the last block (stride 8/16/32), 1x1 conv + GN projections and two 3x3
# stride-2 levels (mmdet ChannelMapper, num_outs=5); two-stage Deformable DETR with box
# refinement, 900 queries, 6 + 6 layers, FFN 2048, dropout 0, 8 heads, 4 points; DETA
# one-to-many IoU assignment; focal 1 / L1 5 / GIoU 2.
# Official flags: --with_box_refine --two_stage --num_feature_levels 5 --num_queries 900
# --dim_feedforward 2048 --dropout 0.0 --cls_loss_coef 1.0 --assign_first_stage
# --assign_second_stage --backbone_init_values 0.1 --backbone_tile_posemb True
_base_ = ['../backbones/pe_spatial_g14.py']

pe_width = _base_.pe_width
num_queries = 900
num_levels = 5
embed_dims = 256
num_heads = 8
ffn_dim = 2048

model = dict(
    type='DETA',
    num_queries=num_queries,
    num_feature_levels=num_levels,
    query_selection=dict(pre_nms_topk=1000, nms_iou=0.9),
    # official --bf16 (stages 3 and 4): autocast around the backbone + simple FPN only
    backbone_autocast=None,
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=[123.675, 116.28, 103.53],  # ImageNet, RGB in [0, 255]
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=32,  # the stage configs pad to the square training / test size
        pad_value=0),
    backbone=dict(
        type='PE',
        arch=_base_.pe_arch,
        patch_size=16,
        img_size=384,
        pos_embed_mode='tile',
        rope_mode='eva',
        window_size=24,
        global_attn_indexes=(12, 24, 36, 49),
        out_indices=(-1, ),
        final_norm=False,
        drop_path_rate=0.5,  # official Gwin384 default (--backbone_dp -1)
        with_cp=True,
        init_cfg=None),  # stage 1 loads the tower's weights; later stages load_from
    neck=[
        dict(type='SimpleFPN', in_channels=pe_width, scale_factors=(2.0, 1.0, 0.5)),
        dict(type='ChannelMapper',
             in_channels=[pe_width // 2, pe_width, pe_width],
             kernel_size=1,
             out_channels=embed_dims,
             bias=True,
             act_cfg=None,
             norm_cfg=dict(type='GN', num_groups=32),
             num_outs=num_levels),
    ],
    encoder=dict(
        num_layers=6,
        layer_cfg=dict(
            self_attn_cfg=dict(embed_dims=embed_dims, num_heads=num_heads,
                               num_levels=num_levels, num_points=4, dropout=0.0,
                               batch_first=True),
            ffn_cfg=dict(embed_dims=embed_dims, feedforward_channels=ffn_dim, ffn_drop=0.0))),
    decoder=dict(
        num_layers=6,
        return_intermediate=True,
        layer_cfg=dict(
            self_attn_cfg=dict(embed_dims=embed_dims, num_heads=num_heads, dropout=0.0,
                               batch_first=True),
            cross_attn_cfg=dict(embed_dims=embed_dims, num_heads=num_heads,
                                num_levels=num_levels, num_points=4, dropout=0.0,
                                batch_first=True),
            ffn_cfg=dict(embed_dims=embed_dims, feedforward_channels=ffn_dim, ffn_drop=0.0)),
        post_norm_cfg=None),
    positional_encoding=dict(num_feats=embed_dims // 2, normalize=True, offset=-0.5),
    bbox_head=dict(
        type='DETAHead',
        num_classes=80,
        embed_dims=embed_dims,
        sync_cls_avg_factor=True,
        loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25,
                      loss_weight=1.0),
        loss_bbox=dict(type='L1Loss', loss_weight=5.0),
        loss_iou=dict(type='GIoULoss', loss_weight=2.0)),
    train_cfg=dict(
        assigner=dict(type='DETAStage2Assigner', num=num_queries, pos_iou_thr=0.6,
                      pos_fraction=0.25, max_k=4),
        enc_assigner=dict(type='DETAStage1Assigner', pos_iou_thr=0.7, neg_iou_thr=0.3,
                          num=256, pos_fraction=0.5, max_k=4)),
    test_cfg=dict(max_per_img=100, pre_nms_topk=10000, nms_iou=0.7))
