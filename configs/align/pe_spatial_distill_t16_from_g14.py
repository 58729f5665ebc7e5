# Distil PE-Spatial-T16-512 from the aligned PE-Spatial-G14-448 (arXiv 2504.13181, section 5: pairwise token
# cosine similarity + direct feature distillation). Paper: the two losses and the G teacher.
# Our choices: teacher = G's last block, student input 512 px (teacher input resized to the same
# 32x32 token grid at 448 px), linear projection 192 -> 1536 for the feature loss, weights 1/1,
# no masking, AdamW lr 1e-3 wd 0.05, 50k iters, batch 32.
_base_ = ['./align_runtime.py']

spatial_g_ckpt = 'checkpoints/PE-Spatial-G14-448.pt'
img_size = 512

model = dict(
    type='SpatialDistiller',
    student=dict(type='PE', arch='PE-Spatial-T16-512', drop_path_rate=0.0),
    teacher=dict(backbone=dict(type='PE', arch='PE-Spatial-G14-448',
                               init_cfg=dict(type='Pretrained', checkpoint=spatial_g_ckpt)),
                 layer=-1),
    pair_weight=1.0, feat_weight=1.0, mask_ratio=0.0)

train_pipeline = [
    dict(type='LoadAlignImage'),
    dict(type='AlignResize', size=img_size),
    dict(type='AlignRandomFlip', prob=0.5),
    dict(type='PackAlignInputs'),
]
train_dataloader = dict(
    batch_size=32, num_workers=8, persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(type='SA1BDataset', data_root='data/sa1b', pipeline=train_pipeline))
train_cfg = dict(type='IterBasedTrainLoop', max_iters=50000)
optim_wrapper = dict(type='AmpOptimWrapper', dtype='bfloat16',
                     optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05),
                     clip_grad=dict(max_norm=1.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=1000),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=1000, end=50000, eta_min=1e-6),
]
