# PE-Core-G14-448 -> PE-Spatial-G14-448 spatial alignment (arXiv 2504.13181, section 5).
# From the paper: student & teacher PE-Core-G, teacher = frozen layer 41 counted from 1, i.e.
#   block index 40 (the rule is in docs/align.md, "Teacher layer"), SAM 2.1-L mask logits of
#   a 32x32 point grid with a pairwise-similarity MSE, 75% MaskFeat masking, DropPath,
#   LayerScale 0.1, 448 px, no detection data.
# Our choices (not published; see docs/align.md): loss weights 1/1, drop path 0.1, LAMB lr 2e-4
#   wd 0.05, 2k warm-up + cosine over 100k iters, batch 8/GPU, square resize + flip, SA-1B images.
# Steps: 1) python tools/cache_sam_targets.py configs/align/pe_spatial_align_g14_448.py
#        2) python tools/train.py-style MMEngine runner (see docs/align.md)
#        3) work_dirs/pe_spatial_align_g14_448/student_official.pt loads as PE-Spatial-G14-448.
_base_ = ['./align_runtime.py']

core_ckpt = 'checkpoints/PE-Core-G14-448.pt'
sam_ckpt = 'checkpoints/sam2.1_hiera_large.pt'
img_size = 448
grid_hw = (img_size // 14, img_size // 14)  # 32 x 32 tokens
sam_cache = dict(root='data/sa1b_sam21l_targets_448', grid_hw=grid_hw)

model = dict(
    type='SpatialAligner',
    student=dict(type='PE', arch='PE-Spatial-G14-448',  # no pool head, LayerScale 0.1
                 drop_path_rate=0.1, with_cp=True,
                 init_cfg=dict(type='Pretrained', checkpoint=core_ckpt)),
    teacher=dict(backbone=dict(type='PE', arch='PE-Core-G14-448',
                               init_cfg=dict(type='Pretrained', checkpoint=core_ckpt)),
                 layer=40),  # the paper's "layer 41" (counted from 1)
    sam_teacher=dict(size='l', checkpoint=sam_ckpt, grid=32, mask_select='single'),
    cos_weight=1.0, sam_weight=1.0, mask_ratio=0.75)

train_pipeline = [
    dict(type='LoadAlignImage'),
    dict(type='AlignResize', size=img_size),
    dict(type='LoadSAMTargets', cache_root=sam_cache['root']),
    dict(type='AlignRandomFlip', prob=0.5),
    dict(type='PackAlignInputs'),
]
train_dataloader = dict(
    batch_size=8, num_workers=8, persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(type='SA1BDataset', data_root='data/sa1b', pipeline=train_pipeline))
train_cfg = dict(type='IterBasedTrainLoop', max_iters=100000)

optim_wrapper = dict(
    type='AmpOptimWrapper', dtype='bfloat16',
    optimizer=dict(type='Lamb', lr=2e-4, weight_decay=0.05),
    clip_grad=dict(max_norm=1.0),
    paramwise_cfg=dict(custom_keys={'mask_token': dict(decay_mult=0.0),
                                    '.ls_': dict(decay_mult=0.0)}, norm_decay_mult=0.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=2000),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=2000, end=100000, eta_min=1e-6),
]
