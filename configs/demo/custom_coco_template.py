# Fine-tune DETA + PE on your own COCO-format detection set (see docs/custom_dataset.md).
# Copy this file, edit the block below, then:
#   python tools/train.py configs/demo/my_dataset.py
#   python tools/test.py configs/demo/my_dataset.py work_dirs/my_dataset/epoch_24.pth
#   python tools/infer.py configs/demo/my_dataset.py work_dirs/my_dataset/epoch_24.pth pics/ --out-dir out
_base_ = [
    '../_base_/models/deta_pe.py',
    '../_base_/datasets/coco_detection_lsj.py',
    '../_base_/schedules/deta_adamw_step.py',
    '../_base_/default_runtime.py',
]

# ----------------------------------------------------------------- edit me
data_root = 'data/my_dataset/'          # holds annotations/, train/, val/
train_ann, train_img = 'annotations/train.json', 'train/'
val_ann, val_img = 'annotations/val.json', 'val/'
classes = ('circle', 'square', 'triangle')  # names exactly as in the json 'categories'
image_size = 1024                       # square training crop; 1024 is a good default
pe_arch = 'PE-Spatial-B16-512'          # S16 / B16 / L14 / G14; Spatial towers are made for dense tasks
pe_width, pe_depth = 768, 12            # of pe_arch (docs/backbone.md)
pe_checkpoint = 'checkpoints/PE-Spatial-B16-512.pt'  # official .pt, timm or safetensors
window_size, global_blocks = 16, (2, 5, 8, 11)  # ViTDet-style; (0, ()) = global attention
frozen_stages = -1                      # -1: fine-tune all; N: freeze the stem + first N blocks
layer_decay = 0.75                      # ViTDet uses 0.7 (B) / 0.8 (L) / 0.9 (H); 0.9 for G
max_epochs, lr_drop = 24, 20
batch_size = 2                          # per GPU
lr = 1e-4                               # for a total batch of 16; auto_scale_lr rescales
num_queries = 300
photometric_aug = False                 # True: colour jitter + blur through mmdet's Albu
                                        # (needs `pip install albumentations`); boxes unchanged
# ------------------------------------------------------------------------------

# Opt-in photometric augmentation (not in Meta's recipe): albumentations, wrapped by mmdet's
# Albu transform; only pixel values change, so boxes need no bbox_params.
albu_train_transforms = [
    dict(type='ColorJitter', brightness=0.2, contrast=0.2, saturation=0.2, hue=0.02, p=0.5),
    dict(type='GaussianBlur', blur_limit=(3, 5), p=0.1),
]
photometric = [dict(type='Albu', transforms=albu_train_transforms, keymap={'img': 'image'})]

backend_args = None
model = dict(
    num_queries=num_queries,
    data_preprocessor=dict(pad_size_divisor=image_size),
    backbone=dict(
        _delete_=True,
        type='PE',
        arch=pe_arch,
        out_indices=(-1, ),
        window_size=window_size,
        global_attn_indexes=global_blocks,
        frozen_stages=frozen_stages,
        drop_path_rate=0.1,
        with_cp=False,  # True saves memory at ~30% more compute
        init_cfg=dict(type='Pretrained', checkpoint=pe_checkpoint)),
    neck=[
        dict(type='SimpleFPN', in_channels=pe_width, scale_factors=(2.0, 1.0, 0.5)),
        dict(type='ChannelMapper', in_channels=[pe_width // 2, pe_width, pe_width],
             kernel_size=1, out_channels=256, bias=True, act_cfg=None,
             norm_cfg=dict(type='GN', num_groups=32), num_outs=5),
    ],
    bbox_head=dict(num_classes=len(classes)),
    train_cfg=dict(assigner=dict(num=num_queries)))

train_pipeline = [
    dict(type='LoadImageOrSkip', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomResize', scale=(image_size, image_size), ratio_range=(0.1, 2.0),
         keep_ratio=True),
    dict(type='RandomCrop', crop_type='absolute_range', crop_size=(image_size, image_size),
         recompute_bbox=True, allow_negative_crop=True),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1e-2, 1e-2)),
    *(photometric if photometric_aug else []),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageRobust', on_error='raise', backend_args=backend_args),
    dict(type='Resize', scale=(image_size, image_size), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(
    batch_size=batch_size,
    dataset=dict(data_root=data_root, ann_file=train_ann, data_prefix=dict(img=train_img),
                 metainfo=dict(classes=classes), pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(data_root=data_root, ann_file=val_ann, data_prefix=dict(img=val_img),
                 metainfo=dict(classes=classes), pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + val_ann)
test_evaluator = val_evaluator

train_cfg = dict(max_epochs=max_epochs, val_interval=1)
optim_wrapper = dict(
    optimizer=dict(lr=lr, weight_decay=0.05),
    constructor='LayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(layer_decay_rate=layer_decay, num_layers=pe_depth))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=250),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[lr_drop],
         gamma=0.1),
]
auto_scale_lr = dict(enable=False, base_batch_size=16)
