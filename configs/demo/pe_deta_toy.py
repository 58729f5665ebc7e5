# Toy DETA on a PE-T-shaped backbone, trained from scratch on the toy COCO set in minutes on CPU.
#   python tools/make_toy_data.py coco --out data/toy_coco --num-train 256 --num-val 32
#   python tools/train.py configs/demo/pe_deta_toy.py
#   python tools/test.py configs/demo/pe_deta_toy.py work_dirs/pe_deta_toy/epoch_N.pth
# Smaller than the real model (width, depth, queries, layers, 120x80 px) but the same DETA:
# two-stage + box refinement, level-balanced NMS query selection, pix_trans, one-to-many
# IoU assignment in both stages, focal 1 / L1 5 / GIoU 2, NMS at test.
_base_ = ['../_base_/models/deta_pe.py', '../_base_/default_runtime.py']
custom_imports = dict(imports=['pe_dense.det'], allow_failed_imports=False)

data_root = 'data/toy_coco/'
classes = ('circle', 'square', 'triangle')
image_scale = (120, 80)  # toy pictures are 144x96 (w x h): resized to 120x80, padded to 128x80
pos_grid_px = 96  # a 6x6 learned position grid, tiled over the 8x5 token grid as DETA tiles
width = 192
embed_dims = 128
num_queries = 60
max_epochs = 5

model = dict(
    num_queries=num_queries,
    data_preprocessor=dict(pad_size_divisor=16),  # one patch: a non-square input
    backbone=dict(
        _delete_=True,
        type='PE',
        # PE-Spatial-T16 shape, shallower, no cls token / pooling, trained from scratch
        arch=dict(patch_size=16, width=width, depth=4, heads=3, mlp_dim=4 * width,
                  cls_token=False, pool=None, out_dim=None, layer_scale=None, ln_post=False,
                  img_size=pos_grid_px),
        pos_embed_mode='tile',
        rope_mode='eva',
        out_indices=(-1, ),
        drop_path_rate=0.0),
    neck=[
        dict(type='SimpleFPN', in_channels=width, scale_factors=(2.0, 1.0, 0.5)),
        dict(type='ChannelMapper', in_channels=[width // 2, width, width], kernel_size=1,
             out_channels=embed_dims, bias=True, act_cfg=None,
             norm_cfg=dict(type='GN', num_groups=32), num_outs=5),
    ],
    encoder=dict(
        num_layers=2,
        layer_cfg=dict(
            self_attn_cfg=dict(embed_dims=embed_dims, num_heads=4),
            ffn_cfg=dict(embed_dims=embed_dims, feedforward_channels=4 * embed_dims))),
    decoder=dict(
        num_layers=3,
        layer_cfg=dict(
            self_attn_cfg=dict(embed_dims=embed_dims, num_heads=4),
            cross_attn_cfg=dict(embed_dims=embed_dims, num_heads=4),
            ffn_cfg=dict(embed_dims=embed_dims, feedforward_channels=4 * embed_dims))),
    positional_encoding=dict(num_feats=embed_dims // 2),
    bbox_head=dict(num_classes=len(classes), embed_dims=embed_dims),
    train_cfg=dict(assigner=dict(num=num_queries)),
    test_cfg=dict(max_per_img=100, pre_nms_topk=1000, nms_iou=0.7))  # COCO: pre_nms_topk 10000

backend_args = None
train_pipeline = [
    dict(type='LoadImageOrSkip', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=image_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageRobust', on_error='raise', backend_args=backend_args),
    dict(type='Resize', scale=image_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(
    batch_size=8,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    batch_sampler=dict(type='AspectRatioBatchSampler'),
    dataset=dict(
        type='CocoDataset',
        data_root=data_root,
        metainfo=dict(classes=classes),
        ann_file='annotations/instances_train2017.json',
        data_prefix=dict(img='train2017/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=4),
        pipeline=train_pipeline,
        backend_args=backend_args))
val_dataloader = dict(
    batch_size=8,
    num_workers=0,
    persistent_workers=False,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='CocoDataset',
        data_root=data_root,
        metainfo=dict(classes=classes),
        ann_file='annotations/instances_val2017.json',
        data_prefix=dict(img='val2017/'),
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))
test_dataloader = val_dataloader
val_evaluator = dict(type='CocoMetric', ann_file=data_root + 'annotations/instances_val2017.json',
                     metric='bbox', format_only=False, backend_args=backend_args)
test_evaluator = val_evaluator

train_cfg = dict(type='ResumableEpochBasedTrainLoop', max_epochs=max_epochs,
                 val_interval=max_epochs)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=5e-4, weight_decay=1e-4),
    clip_grad=dict(max_norm=0.1, norm_type=2),
    paramwise_cfg=dict(custom_keys={'sampling_offsets': dict(lr_mult=0.1),
                                    'reference_points': dict(lr_mult=0.1)}))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=30),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True,
         milestones=[max_epochs - 1], gamma=0.1),
]
default_hooks = dict(logger=dict(interval=10),
                     checkpoint=dict(type='CheckpointHook', interval=max_epochs, max_keep_ckpts=1))
log_processor = dict(window_size=10)
randomness = dict(seed=0, deterministic=False)
auto_scale_lr = dict(enable=False, base_batch_size=8)
