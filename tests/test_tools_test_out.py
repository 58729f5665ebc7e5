"""tools/test.py --out in each task's convention, --show and --wait-time.

Segmentation / depth: a folder of PNGs (mmseg's convention), compared with the predictions the
model gives for the same checkpoint; detection: a .pkl through mmdet's DumpDetResults.
"""
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmseg.registry import MODELS

import pe_dense.seg  # noqa: F401  registers the seg components
from pe_dense.engine.launch import dump_predictions, setup_test
from tests.test_seg_show_dir import (REPO, depth_cfg, one_thread, shrink,  # noqa: F401
                                     tool_test, write_images)  # one_thread: autouse fixture


def _seg_cfg(tmp_path):
    root = str(tmp_path / 'ade')
    write_images(root, ('images/validation', 'annotations/validation'),
                 lambda rng: rng.integers(0, 151, (48, 64)).astype(np.uint8))
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'ade20k',
                                   'pe_spatial_g14_linear_448_ade20k_whole.py'))
    return shrink(cfg, root, str(tmp_path / 'work_seg'))


def _checkpoint(cfg, tmp_path):
    init_default_scope('mmseg')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    ckpt = str(tmp_path / 'model.pth')
    torch.save(dict(state_dict=model.state_dict(), meta={}), ckpt)
    cfg_file = str(tmp_path / 'cfg.py')
    cfg.dump(cfg_file)
    return model.eval(), cfg_file, ckpt


def _predictions(model, cfg):
    """The model's own predictions, by file name, for the test set (the oracle)."""
    loader = Runner.build_dataloader(cfg.test_dataloader)
    out = {}
    with torch.no_grad():
        for batch in loader:
            for sample in model.test_step(batch):
                name = osp.splitext(osp.basename(sample.img_path))[0]
                out[name] = sample
    return out


def _pngs_and_predictions(cfg, tmp_path):
    """``tools/test.py --out DIR`` on a saved checkpoint: (PNG by name, the model's sample)."""
    model, cfg_file, ckpt = _checkpoint(cfg, tmp_path)
    out = tmp_path / 'pred'
    tool_test().main([cfg_file, ckpt, '--work-dir', cfg.work_dir, '--out', str(out)])
    want = _predictions(model, cfg)
    assert sorted(p.name for p in out.iterdir()) == ['kitchen_0000.png', 'kitchen_0001.png']
    return [(cv2.imread(str(out / f'{name}.png'), cv2.IMREAD_UNCHANGED), sample)
            for name, sample in want.items()]


def test_out_writes_depth_pngs_in_the_ground_truth_units(tmp_path):
    """NYU ground truth is uint16 millimetres; --out writes the prediction the same way."""
    for png, sample in _pngs_and_predictions(depth_cfg(tmp_path), tmp_path):
        metres = sample.pred_depth_map.data.squeeze().cpu().numpy()
        assert png.dtype == np.uint16 and png.shape == (48, 64)
        np.testing.assert_array_equal(png, (metres * 1000).astype(np.uint16))
        assert png.max() > 100  # millimetres, not metres truncated to integers


def test_out_writes_label_pngs_for_segmentation(tmp_path):
    for png, sample in _pngs_and_predictions(_seg_cfg(tmp_path), tmp_path):
        labels = sample.pred_sem_seg.data.squeeze().cpu().numpy()
        # ADE20k drops label 0 (reduce_zero_label): files hold the dataset's own ids
        np.testing.assert_array_equal(png, labels.astype(np.uint8) + 1)


def test_show_draws_in_a_window_for_wait_time(tmp_path, monkeypatch):
    from mmengine.visualization import Visualizer
    shown = []
    monkeypatch.setattr(Visualizer, 'show',
                        lambda self, img, win_name='', wait_time=0., **kw: shown.append(
                            (img.shape, wait_time)))
    cfg = _seg_cfg(tmp_path)
    _, cfg_file, ckpt = _checkpoint(cfg, tmp_path)
    tool_test().main([cfg_file, ckpt, '--work-dir', cfg.work_dir, '--show',
                      '--wait-time', '0.25'])
    assert shown == [((48, 128, 3), 0.25)] * 2  # GT | prediction, once per picture


def test_out_conventions_and_errors(tmp_path):
    """Detection dumps a .pkl with mmdet's DumpDetResults after the config's metric; mmseg
    wants a folder; a .pkl is refused there and a folder for detection."""
    det = Config.fromfile(osp.join(REPO, 'configs', 'demo', 'pe_deta_toy.py'))
    dump_predictions(det, str(tmp_path / 'dets.pkl'))
    assert [m['type'] for m in det.test_evaluator] == ['CocoMetric', 'DumpDetResults']
    assert det.test_evaluator[1].out_file_path == str(tmp_path / 'dets.pkl')
    with pytest.raises(ValueError, match=r'\.pkl file for mmdet configs'):
        dump_predictions(Config.fromfile(osp.join(REPO, 'configs', 'demo', 'pe_deta_toy.py')),
                         str(tmp_path / 'folder'))
    seg = _seg_cfg(tmp_path)
    with pytest.raises(ValueError, match='folder of PNGs'):
        dump_predictions(seg, str(tmp_path / 'x.pkl'))
    seg.test_evaluator = dict(type='CityscapesMetric')
    with pytest.raises(KeyError, match='IoUMetric / DepthMetric'):
        dump_predictions(seg, str(tmp_path / 'y'))
    ckpt = tmp_path / 'c.pth'
    ckpt.write_bytes(b'')
    shown = setup_test(Config(dict(default_scope='mmseg', default_hooks=dict(
        visualization=dict(type='SegVisualizationHook')))), str(ckpt), show=True, wait_time=3)
    assert shown.default_hooks.visualization == dict(
        type='SegVisualizationHook', draw=True, interval=1, show=True, wait_time=3)
