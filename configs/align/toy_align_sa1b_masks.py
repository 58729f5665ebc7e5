# Opt-in variant of toy_align_tiny.py: the mask relations come from SA-1B's stored instance masks
# (LoadSA1BMaskTargets: per grid point the containing mask with the highest predicted_iou, +-32
# logits) instead of SAM 2.1; no SAM pass and no cache. Not the paper's teacher (docs/align.md).
#   python tools/make_toy_data.py sa1b --out data/toy_sa1b
#   python tools/train.py configs/align/toy_align_sa1b_masks.py
_base_ = ['./toy_align_tiny.py']

sam_cache = None  # no SAM cache: targets are built from the json beside each picture
mask_targets = dict(type='LoadSA1BMaskTargets', grid=8, grid_hw={{_base_.grid_hw}},
                    select='best_iou', logit='margin')

model = dict(sam_teacher=None)

train_pipeline = [
    dict(type='LoadAlignImage'),
    dict(type='AlignResize', size={{_base_.img_size}}),
    mask_targets,
    dict(type='AlignRandomFlip', prob=0.5),
    dict(type='PackAlignInputs'),
]
train_dataloader = dict(
    dataset=dict(_delete_=True, type='SA1BDataset', data_root='data/toy_sa1b',
                 data_prefix=dict(img_path='sa_000000'), pipeline=train_pipeline))
val_images = 'data/toy_sa1b/sa_000001'
