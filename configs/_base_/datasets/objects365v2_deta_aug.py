# Objects365 v2 (365 classes, mmdet's Objects365V2Dataset) with the official DETA_pe
# augmentation of coco_detection_deta_aug.py. Layout as in mmdet:
# data/Objects365/Obj365_v2/{train,val}/ + annotations/zhiyuan_objv2_{train,val}.json.
# The official run read a repaired train file (zhiyuan_objv2_train_fixmiss.json, not released)
# whose point is the images missing on disk; with the public file, LoadImageOrSkip skips
# each missing image with a logged running count and training draws another sample.
_base_ = './coco_detection_deta_aug.py'
dataset_type = 'Objects365V2Dataset'
data_root = 'data/Objects365/Obj365_v2/'

train_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/zhiyuan_objv2_train.json',
        data_prefix=dict(img='train/')))
val_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/zhiyuan_objv2_val.json',
        data_prefix=dict(img='val/')))
test_dataloader = val_dataloader

val_evaluator = dict(ann_file=data_root + 'annotations/zhiyuan_objv2_val.json')
test_evaluator = val_evaluator
