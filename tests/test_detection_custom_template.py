"""configs/demo/custom_coco_template.py builds and trains 2 iterations (+ a validation) on a toy set."""
import json
import re
from pathlib import Path

from mmengine.config import Config

from pe_dense.toy.coco import make_coco

TEMPLATE = Path(__file__).parents[1] / 'configs' / 'demo' / 'custom_coco_template.py'


def _shrink(cfg, size):
    """Tiny PE, a narrow 2+2-layer DETA and 128 px so two CPU iterations take seconds."""
    cfg.model.backbone.arch = dict(patch_size=16, width=64, depth=2, heads=4, mlp_dim=128,
                                   img_size=size)
    cfg.model.backbone.update(window_size=4, global_attn_indexes=(1,), init_cfg=None)
    cfg.model.neck[0]['in_channels'] = 64
    cfg.model.neck[1]['in_channels'] = [32, 64, 64]
    cfg.model.num_queries = 20
    cfg.model.train_cfg.assigner.num = 20
    cfg.model.data_preprocessor.pad_size_divisor = size
    cfg.optim_wrapper.paramwise_cfg.num_layers = 2
    d = 64
    cfg.model.neck[1]['out_channels'] = d
    for part in ('encoder', 'decoder'):
        cfg.model[part].num_layers = 2
        layer = cfg.model[part].layer_cfg
        for attn in ('self_attn_cfg', 'cross_attn_cfg'):
            if attn in layer:
                layer[attn].update(embed_dims=d, num_heads=4)
        layer.ffn_cfg.update(embed_dims=d, feedforward_channels=128)
    cfg.model.positional_encoding.num_feats = d // 2
    cfg.model.bbox_head.embed_dims = d
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        for t in loader.dataset.pipeline:
            for key in ('scale', 'crop_size'):
                if key in t:
                    t[key] = (size, size)


def test_template_defaults():
    cfg = Config.fromfile(str(TEMPLATE))
    assert cfg.model.backbone.arch == 'PE-Spatial-B16-512'
    assert cfg.model.backbone.init_cfg.type == 'Pretrained'
    assert cfg.model.bbox_head.num_classes == len(cfg.classes) == 3
    assert cfg.train_dataloader.dataset.type == 'CheckedCocoDataset'
    assert cfg.train_dataloader.dataset.metainfo.classes == cfg.classes
    assert cfg.val_evaluator.ann_file == cfg.data_root + cfg.val_ann
    assert cfg.optim_wrapper.paramwise_cfg.num_layers == cfg.pe_depth == 12
    assert cfg.model.neck[1]['in_channels'] == [384, 768, 768]


def test_template_trains_two_iterations_on_toy_set(tmp_path):
    from mmengine.runner import Runner
    data = tmp_path / 'data'
    make_coco(str(data), num_train=2, num_val=1, size=128, progress_bar=False)
    cfg = Config.fromfile(str(TEMPLATE))
    root = str(data) + '/'
    cfg.train_dataloader.dataset.update(data_root=root, ann_file='annotations/instances_train2017.json',
                                        data_prefix=dict(img='train2017/'))
    cfg.val_dataloader.dataset.update(data_root=root, ann_file='annotations/instances_val2017.json',
                                      data_prefix=dict(img='val2017/'))
    cfg.test_dataloader = cfg.val_dataloader
    cfg.val_evaluator.ann_file = root + 'annotations/instances_val2017.json'
    cfg.test_evaluator = cfg.val_evaluator
    cfg.train_dataloader.update(batch_size=1, num_workers=0, persistent_workers=False)
    cfg.val_dataloader.update(num_workers=0, persistent_workers=False)
    cfg.train_cfg.max_epochs = 1
    cfg.work_dir = str(tmp_path / 'work')
    # A unique name: MMEngine reuses a Visualizer instance of the same (timestamp) name, so a
    # runner started in the same second as another test's would log into that test's dir.
    cfg.visualizer.name = f'vis_{tmp_path.name}'
    _shrink(cfg, 128)
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 2
    assert (tmp_path / 'work' / 'epoch_1.pth').is_file()
    scalars = list((tmp_path / 'work').glob('*/vis_data/scalars.json'))
    lines = [json.loads(x) for x in scalars[0].read_text().splitlines()]
    assert any('loss' in x for x in lines)
    assert any('coco/bbox_mAP' in x for x in lines)  # the validation ran with CocoMetric
    assert list((tmp_path / 'work').glob('*/vis_data/events.out.tfevents.*'))  # tensorboard


def _template_with(tmp_path, **values):
    """The template as a user edits it: the ``name = value`` lines of the edit block replaced."""
    text = TEMPLATE.read_text().replace("'../_base_/", repr(str(TEMPLATE.parents[1] / '_base_'))[:-1] + '/')
    for key, value in values.items():
        text, n = re.subn(rf'^{key} = .*$', f'{key} = {value!r}', text, flags=re.M)
        assert n == 1, key
    path = tmp_path / 'my_dataset.py'
    path.write_text(text)
    return Config.fromfile(str(path))


def test_albumentations_photometric_aug_is_opt_in_and_keeps_boxes(tmp_path):
    """photometric_aug=True adds mmdet's Albu (albumentations) before packing: on the toy set
    the same seeded samples get other pixel values and exactly the same boxes and labels."""
    import random

    import numpy as np
    import torch
    from mmdet.registry import DATASETS
    from mmdet.utils import register_all_modules

    register_all_modules(init_default_scope=True)
    data = tmp_path / 'data'
    make_coco(str(data), num_train=4, num_val=1, size=96, progress_bar=False)
    samples = {}
    for aug in (False, True):
        cfg = _template_with(tmp_path, photometric_aug=aug)
        types = [t['type'] for t in cfg.train_pipeline]
        assert ('Albu' in types) == aug and types[-1] == 'PackDetInputs'
        ds_cfg = cfg.train_dataloader.dataset
        ds_cfg.update(data_root=str(data) + '/', ann_file='annotations/instances_train2017.json',
                      data_prefix=dict(img='train2017/'))
        dataset = DATASETS.build(ds_cfg)
        out = []
        for i in range(len(dataset)):
            random.seed(i), np.random.seed(i), torch.manual_seed(i)
            out.append(dataset[i])
        samples[aug] = out
    changed = 0
    for plain, jittered in zip(samples[False], samples[True]):
        a, b = plain['data_samples'], jittered['data_samples']
        torch.testing.assert_close(b.gt_instances.bboxes.tensor, a.gt_instances.bboxes.tensor)
        assert torch.equal(b.gt_instances.labels, a.gt_instances.labels)
        assert plain['inputs'].shape == jittered['inputs'].shape
        changed += int(not torch.equal(plain['inputs'], jittered['inputs']))
    assert changed >= 1
