# LVIS v1 instance segmentation (1203 classes) for the official PE Mask R-CNN LVIS configs:
# the COCO LSJ pipelines, detectron2's repeat-factor sampler (threshold 0.001, stochastic
# rounding every pass), and the LVIS API's box / mask AP with 300 detections per image.
# Layout (mmdet's): data/lvis_v1/annotations/lvis_v1_{train,val}.json and the COCO 2017
# images under data/lvis_v1/{train2017,val2017}/ (image paths come from each record's coco_url).
_base_ = './coco_instance_lsj.py'
dataset_type = 'LVISV1Dataset'
data_root = 'data/lvis_v1/'

train_dataloader = dict(
    sampler=dict(_delete_=True, type='RepeatFactorSampler', repeat_thresh=0.001),
    dataset=dict(
        _delete_=True,
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/lvis_v1_train.json',
        data_prefix=dict(img=''),
        filter_cfg=dict(filter_empty_gt=True, min_size=0),
        pipeline={{_base_.train_pipeline}}))
val_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/lvis_v1_val.json',
        data_prefix=dict(img='')))
test_dataloader = val_dataloader

val_evaluator = dict(
    _delete_=True,
    type='LVISMetric',
    ann_file=data_root + 'annotations/lvis_v1_val.json',
    metric=['bbox', 'segm'])
test_evaluator = val_evaluator
