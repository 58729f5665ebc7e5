# Toy spatial alignment that runs on a CPU in minutes: a 4-block PE (width 64, patch 16, 128 px)
# aligned to its own frozen layer 2 and to SAM 2.1-T (random weights unless sam_ckpt is set) at a
# reduced 256 px SAM input with an 8x8 point grid. Same code path as the G recipe.
#   python tools/make_toy_data.py images --out data/toy_images
#   python tools/cache_sam_targets.py configs/align/toy_align_tiny.py
_base_ = ['./align_runtime.py']

core_ckpt = None  # a tiny PE-Core-style checkpoint; None = random student and teacher
sam_ckpt = None
img_size = 128
grid_hw = (img_size // 16, img_size // 16)
sam_cache = dict(root='data/toy_images_sam_targets', grid_hw=grid_hw)

tiny_core = dict(patch_size=16, width=64, depth=4, heads=2, mlp_dim=256, cls_token=True,
                 pool='attn', out_dim=32, layer_scale=None, ln_post=True, img_size=img_size)
tiny_spatial = dict(tiny_core, pool=None, out_dim=None, layer_scale=0.1, ln_post=False)
_init = None if core_ckpt is None else dict(type='Pretrained', checkpoint=core_ckpt)

model = dict(
    type='SpatialAligner',
    student=dict(type='PE', arch=tiny_spatial, drop_path_rate=0.05, init_cfg=_init),
    teacher=dict(backbone=dict(type='PE', arch=tiny_core, init_cfg=_init), layer=2),
    sam_teacher=dict(size='t', checkpoint=sam_ckpt, grid=8, image_size=256, chunk=64),
    cos_weight=1.0, sam_weight=1.0, mask_ratio=0.75)

train_pipeline = [
    dict(type='LoadAlignImage'),
    dict(type='AlignResize', size=img_size),
    dict(type='LoadSAMTargets', cache_root=sam_cache['root']),
    dict(type='AlignRandomFlip', prob=0.5),
    dict(type='PackAlignInputs'),
]
train_dataloader = dict(
    batch_size=4, num_workers=0,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(type='ImageFolderDataset', data_root='data/toy_images',
                 data_prefix=dict(img_path='train'), pipeline=train_pipeline))
val_images = 'data/toy_images/val'
train_cfg = dict(type='IterBasedTrainLoop', max_iters=300)

optim_wrapper = dict(optimizer=dict(type='AdamW', lr=2e-3, weight_decay=0.05),
                     clip_grad=dict(max_norm=1.0))
param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=20)]
default_hooks = dict(logger=dict(interval=20), checkpoint=dict(interval=300))
