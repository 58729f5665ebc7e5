"""`tools/test.py configs/pe_spatial_detr_coco.py CKPT --tta` runs the official TTA setting.

The config is the real entry point, shrunk (tests/fixtures/small_deta.py) and pointed at a toy
COCO set; sizes scale down with the picture (1824 -> 128 px) and the official 2000 TTA queries
with the plain 900 (here 22 and 10). Nothing about TTA is passed on the command line.
"""
import importlib.util
import os.path as osp
import pickle

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from pe_dense.toy import make_toy
from tests.fixtures.small_deta import shrink_deta

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
PLAIN_Q = 10
TTA_Q = round(2000 / 900 * PLAIN_Q)
SCALE = 128 / 1824


def _tool():
    spec = importlib.util.spec_from_file_location('pe_test_tool', osp.join(ROOT, 'tools', 'test.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _shrunk_entry_config(tmp_path, data):
    cfg = Config.fromfile(osp.join(ROOT, 'configs/pe_spatial_detr_coco.py'))
    # what the real config says, before shrinking
    assert cfg.tta_model.num_queries == 2000 and cfg.model.num_queries == 900
    assert cfg.tta_model.tta_cfg.max_per_img is None
    shrink_deta(cfg, num_queries=PLAIN_Q, pad=256, num_classes=3)  # stride 128: 2 x 2
    cfg.tta_model.num_queries = TTA_Q
    cfg.model.backbone_autocast = None  # bf16 on CPU is slow; tests/test_deta_bf16_backbone.py
    cfg.tta_model.scale_ranges = [(lo * SCALE, hi) for lo, hi in cfg.tta_model.scale_ranges]
    views = cfg.tta_pipeline[1].transforms[0]
    for t in views:
        t.scale = tuple(round(s * SCALE) for s in t.scale)
    for t in cfg.test_dataloader.dataset.pipeline:
        if t['type'] == 'Resize':
            t['scale'] = tuple(round(s * SCALE) for s in t['scale'])
    cfg.test_dataloader.dataset.update(
        data_root=data + '/', ann_file='annotations/instances_val2017.json',
        data_prefix=dict(img='val2017/'), metainfo=dict(classes=('circle', 'square', 'triangle')))
    cfg.test_dataloader.update(num_workers=0, persistent_workers=False)
    cfg.test_evaluator.ann_file = data + '/annotations/instances_val2017.json'
    cfg.visualizer.vis_backends = [dict(type='LocalVisBackend')]
    path = str(tmp_path / 'pe_spatial_detr_coco_small.py')
    cfg.dump(path)
    return cfg, path


@pytest.mark.slow
def test_tta_from_the_entry_config_keeps_every_merged_detection(tmp_path, capsys):
    data = str(tmp_path / 'toy_coco')
    make_toy('coco', data, num_train=1, num_val=2, progress_bar=False)
    cfg, path = _shrunk_entry_config(tmp_path, data)
    from mmdet.registry import MODELS
    init_default_scope('mmdet')
    torch.manual_seed(0)
    ckpt = str(tmp_path / 'small.pth')
    torch.save({'state_dict': MODELS.build(cfg.model).state_dict()}, ckpt)

    out = str(tmp_path / 'preds.pkl')
    assert _tool().main([path, ckpt, '--tta', '--out', out,
                         '--work-dir', str(tmp_path / 'work')]) == 0
    log = capsys.readouterr().out
    preds = pickle.load(open(out, 'rb'))
    assert len(preds) == 2
    counts = [len(p['pred_instances']['scores']) for p in preds]
    # more than 100 per image after the merge (the former cap); more than the 8 views x 10
    # plain queries x 3 classes could give: the views ran with the TTA query count
    assert min(counts) > 100, counts
    assert max(counts) > 8 * PLAIN_Q * 3, counts
    # scored at pycocotools' standard maxDets, as the paper's numbers
    assert 'maxDets=100 ]' in log and 'maxDets=  1 ]' in log and 'maxDets= 10 ]' in log
    assert 'maxDets=1000' not in log and 'maxDets=300' not in log
