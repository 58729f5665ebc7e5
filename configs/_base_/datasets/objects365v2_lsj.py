# Objects365 v2 detection (365 classes, mmdet's Objects365V2Dataset) with LSJ at `image_size`.
# Layout as in mmdet: data/Objects365/Obj365_v2/{train,val}/ + annotations/zhiyuan_objv2_*.json
_base_ = './coco_detection_lsj.py'
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
