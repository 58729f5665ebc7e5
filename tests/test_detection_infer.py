"""tools/infer.py on the toy COCO set with the (untrained) toy DETA: pictures + COCO JSON."""
import importlib.util
import json
from pathlib import Path

import pytest
import torch

from pe_dense.toy.coco import make_coco

ROOT = Path(__file__).parents[1]
TOY_CFG = str(ROOT / 'configs' / 'demo' / 'pe_deta_toy.py')


def _tool():
    spec = importlib.util.spec_from_file_location('infer_tool', ROOT / 'tools' / 'infer.py')
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope='module')
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp('toy_coco_infer')
    make_coco(str(root), num_train=1, num_val=2, size=128, progress_bar=False)
    return root


def test_folder_and_file_inputs_write_pictures_and_coco_json(toy, tmp_path):
    from pycocotools.coco import COCO
    val = sorted((toy / 'val2017').glob('*.jpg'))
    out = tmp_path / 'out'
    summary = _tool().main([TOY_CFG, 'none', str(toy / 'val2017'), str(val[0]),
                            '--out-dir', str(out), '--score-thr', '0', '--device', 'cpu',
                            '--ann-file', str(toy / 'annotations' / 'instances_val2017.json')])
    assert summary['images'] == 3
    pictures = sorted(p.name for p in (out / 'vis').iterdir())
    assert pictures == sorted({p.name for p in val})
    dets = json.loads((out / 'detections.json').read_text())
    assert summary['detections'] == len(dets) > 0
    assert len(dets) <= 3 * 100  # max_per_img of the toy config
    gt = COCO(str(toy / 'annotations' / 'instances_val2017.json'))
    res = gt.loadRes(dets)  # valid image / category ids and xywh boxes
    assert set(res.getImgIds()) <= set(gt.getImgIds())
    assert {d['category_id'] for d in dets} <= {1, 2, 3}
    assert {d['category_name'] for d in dets} <= {'circle', 'square', 'triangle'}
    assert all(d['bbox'][2] >= 0 and d['bbox'][3] >= 0 for d in dets)
    assert all(0 <= d['score'] <= 1 for d in dets)  # finite: 'none' still initialises weights


def test_checkpoint_and_score_threshold(toy, tmp_path):
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmdet.registry import MODELS
    init_default_scope('mmdet')
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(TOY_CFG).model)
    model.init_weights()
    ckpt = tmp_path / 'toy.pth'
    torch.save({'state_dict': model.state_dict(),
                'meta': {'dataset_meta': {'classes': ('circle', 'square', 'triangle')}}}, ckpt)
    summary = _tool().main([TOY_CFG, str(ckpt), str(toy / 'val2017'), '--out-dir',
                            str(tmp_path / 'a'), '--score-thr', '0.2', '--device', 'cpu'])
    dets = json.loads((tmp_path / 'a' / 'detections.json').read_text())
    assert summary['detections'] == len(dets) < 200  # the threshold removed some of 2 x 100
    assert all(d['score'] >= 0.2 for d in dets)
    assert {d['image_id'] for d in dets} <= {0, 1}  # no --ann-file: input order
    assert {d['category_id'] for d in dets} <= {0, 1, 2}  # label indices


def test_bad_inputs_are_named(toy, tmp_path):
    tool = _tool()
    with pytest.raises(FileNotFoundError, match='missing.jpg'):
        tool.main([TOY_CFG, 'none', str(tmp_path / 'missing.jpg'), '--out-dir', str(tmp_path)])
    (tmp_path / 'empty').mkdir()
    with pytest.raises(FileNotFoundError, match='No images'):
        tool.main([TOY_CFG, 'none', str(tmp_path / 'empty'), '--out-dir', str(tmp_path)])
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        tool.main([TOY_CFG, str(tmp_path / 'nope.pth'), str(toy / 'val2017'), '--out-dir',
                   str(tmp_path)])
    cfg = tmp_path / 'seg.py'
    cfg.write_text("default_scope = 'mmpretrain'\n")
    with pytest.raises(ValueError, match="default_scope 'mmpretrain'"):
        tool.main([str(cfg), 'none', str(toy / 'val2017'), '--out-dir', str(tmp_path)])


def test_broken_picture_is_skipped_by_name_and_the_rest_detected(toy, tmp_path):
    """A config whose test pipeline loads with LoadImageRobust still runs under DetInferencer;
    a truncated JPEG among the inputs is skipped and reported, not detected on grey fill."""
    good = sorted((toy / 'val2017').glob('*.jpg'))[0]
    data = good.read_bytes()
    broken = tmp_path / 'in' / 'truncated.jpg'
    broken.parent.mkdir()
    broken.write_bytes(data[:len(data) // 2])
    (tmp_path / 'in' / good.name).write_bytes(data)
    tool = _tool()
    from mmengine.config import Config
    cfg = tool.inferencer_config(Config.fromfile(TOY_CFG))
    assert [s['type'] for s in cfg.test_dataloader.dataset.pipeline][0] == 'LoadImageFromFile'
    summary = tool.main([TOY_CFG, 'none', str(tmp_path / 'in'), '--out-dir', str(tmp_path / 'o'),
                         '--score-thr', '0', '--device', 'cpu'])
    assert summary['skipped'] == [str(broken)] and summary['images'] == 1
    assert sorted(p.name for p in (tmp_path / 'o' / 'vis').iterdir()) == [good.name]
    with pytest.raises(ValueError, match='none of the 1 input images'):
        tool.main([TOY_CFG, 'none', str(broken), '--out-dir', str(tmp_path / 'o2')])


def test_image_missing_from_ann_file_stops_before_the_model(toy, tmp_path):
    """A results JSON with ids for images the COCO file lacks cannot be scored (pycocotools
    refuses it): stop at once, naming the file and the image, and write nothing."""
    stray = tmp_path / 'in' / 'not_in_coco.jpg'
    stray.parent.mkdir()
    stray.write_bytes(sorted((toy / 'val2017').glob('*.jpg'))[0].read_bytes())
    ann = str(toy / 'annotations' / 'instances_val2017.json')
    out = tmp_path / 'out'
    with pytest.raises(SystemExit) as exc:
        _tool().main([TOY_CFG, 'none', str(toy / 'val2017'), str(stray), '--out-dir', str(out),
                      '--device', 'cpu', '--ann-file', ann])
    msg = str(exc.value.code)
    assert msg.startswith('infer: 1 of 3 input images are not in --ann-file')
    assert ann in msg and 'not_in_coco.jpg' in msg
    assert not out.exists()  # stopped before drawing anything


def test_cfg_options_reach_the_model(toy, tmp_path):
    """--cfg-options changes the config the inferencer builds (a score threshold of the
    model's test_cfg that removes every box)."""
    out = tmp_path / 'out'
    summary = _tool().main([TOY_CFG, 'none', str(toy / 'val2017'), '--out-dir', str(out),
                            '--score-thr', '0', '--device', 'cpu', '--cfg-options',
                            'model.test_cfg.max_per_img=1'])
    dets = json.loads((out / 'detections.json').read_text())
    assert summary['images'] == 2 and len(dets) == 2  # one box per image, not the default 100
