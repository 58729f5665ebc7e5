"""PE features for tracking, configs, and the test_davis / track_video command lines."""
import csv
import glob
import importlib.util
import os.path as osp

import cv2
import numpy as np
import pytest
import torch

from pe_dense.datasets.davis import read_label_png, write_label_png
from pe_dense.evaluation.davis_metric import DavisMetricError
from pe_dense.models.backbones import PE
from pe_dense.toy import make_toy
from pe_dense.tracking.features import (PEFeatureExtractor, build_backbone, load_settings)

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TINY = dict(patch_size=16, width=32, depth=2, heads=2, mlp_dim=64, cls_token=True, pool=None,
            out_dim=None, layer_scale=None, ln_post=False, img_size=64)
TINY_CFG = f"""
backbone = dict(type='PE', arch={TINY!r})
propagation = dict(layer=-1, size=64)
"""


def load_tool(name):
    spec = importlib.util.spec_from_file_location(name, osp.join(ROOT, 'tools', f'{name}.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture
def tiny_cfg(tmp_path):
    path = tmp_path / 'tiny_davis.py'
    path.write_text(TINY_CFG)
    return str(path)


def test_pe_extractor_uses_the_chosen_block_and_normalises():
    torch.manual_seed(0)
    model = PE(TINY, frozen=True)
    ext = PEFeatureExtractor(model, layer=0, size=32)
    assert ext.input_size(50, 70) == (32, 32) and ext.input_size(70, 50) == (32, 32)
    assert ext.input_size(40, 130) == (32, 96)
    frame = np.random.default_rng(0).integers(0, 255, (50, 70, 3), dtype=np.uint8)
    feat = ext(frame)
    assert feat.shape == (2, 2, 32)
    torch.testing.assert_close(feat.norm(dim=-1), torch.ones(2, 2))
    x = torch.from_numpy(cv2.resize(frame, (32, 32))).permute(2, 0, 1)[None].float() / 255
    ref = PE(TINY, out_indices=(0,))
    ref.load_state_dict(model.state_dict())
    fmap = ref((x - 0.5) / 0.5)[0][0].permute(1, 2, 0)
    torch.testing.assert_close(feat, torch.nn.functional.normalize(fmap, dim=-1))
    with pytest.raises(IndexError):
        PEFeatureExtractor(model, layer=5)


def test_davis_configs_load():
    cfgs = sorted(glob.glob(osp.join(ROOT, 'configs', 'davis', '*.py')))
    assert len(cfgs) == 5
    for path in cfgs:
        backbone, prop, name = load_settings(path)
        assert backbone['type'] == 'PE' and backbone['arch'].startswith('PE-Spatial-')
        assert prop == dict(layer=-1, size=480, n_last=7, topk=5, radius=12, temperature=0.1)
        assert name == osp.splitext(osp.basename(path))[0]


def test_settings_and_weights_errors(tmp_path):
    bad = tmp_path / 'bad.py'
    bad.write_text("backbone = dict(type='PE')\npropagation = dict(radious=3)\n")
    with pytest.raises(KeyError, match=r"bad.py: unknown propagation keys \['radious'\]"):
        load_settings(str(bad))
    with pytest.raises(ValueError, match='no PE weights'):
        build_backbone(dict(type='PE', arch=TINY))
    with pytest.raises(FileNotFoundError, match='nope.pt'):
        build_backbone(dict(type='PE', arch=TINY), checkpoint=str(tmp_path / 'nope.pt'))


def test_test_davis_end_to_end(tmp_path, tiny_cfg, capsys):
    data = str(tmp_path / 'davis')
    make_toy('davis', data, num_train=1, num_val=2, frames=5, progress_bar=False)
    torch.manual_seed(0)
    ckpt = str(tmp_path / 'tiny.pt')
    torch.save(PE(TINY).state_dict(), ckpt)
    tool = load_tool('test_davis')
    work = str(tmp_path / 'work')
    summary = tool.main([tiny_cfg, '--checkpoint', ckpt, '--data-root', data, '--work-dir', work,
                         '--no-progress'])
    out = capsys.readouterr().out
    assert 'J&F-Mean' in out and 'toy-val-00_1' in out
    masks = sorted(glob.glob(osp.join(work, 'results', '*', '*.png')))
    assert len(masks) == 10
    with open(osp.join(work, 'global_results-val.csv')) as fh:
        rows = list(csv.reader(fh))
    assert rows[1][0] == f"{summary['global']['J&F-Mean']:.3f}"
    g = summary['global']
    assert g['J&F-Mean'] == pytest.approx((g['J-Mean'] + g['F-Mean']) / 2)
    sweep = tool.main([tiny_cfg, '--random-init', '--layer', '0', '-1', '--data-root', data,
                       '--sequences', 'toy-val-01', '--work-dir', str(tmp_path / 'sweep'),
                       '--no-progress'])
    assert sorted(sweep) == [-1, 0]
    line = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith('layer sweep')]
    assert line[0].startswith('layer sweep (J&F-Mean, %): 0: ')
    jf0 = float(line[0].split('0: ')[1].split(',')[0])  # percent, as layer_sweep.py's JSON
    assert jf0 == pytest.approx(100 * sweep[0]['global']['J&F-Mean'], abs=0.05)
    for layer in (0, -1):
        assert osp.isfile(str(tmp_path / 'sweep' / f'layer{layer}' / 'global_results-val.csv'))
        assert len(glob.glob(str(tmp_path / 'sweep' / f'layer{layer}' / 'results' / '*' /
                                 '*.png'))) == 5
    again = tool.main(['--eval-only', '--results', osp.join(work, 'results'), '--data-root',
                       data, '--work-dir', str(tmp_path / 'eval'), '--no-progress'])
    assert again['global'] == summary['global']
    # a palette PNG with an id that frame 0 does not have is refused, as the benchmark does
    first = osp.join(work, 'results', 'toy-val-00', '00001.png')
    write_label_png(first, np.full(read_label_png(first).shape, 9, np.uint8))
    with pytest.raises(DavisMetricError, match=r'toy-val-00: frame 00001 has object id 9'):
        tool.main(['--eval-only', '--results', osp.join(work, 'results'), '--data-root', data,
                   '--no-progress'])


def _write_video(path, frames, fps=10):
    h, w = frames[0].shape[:2]
    vw = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'mp4v'), fps, (w, h))
    assert vw.isOpened()
    for f in frames:
        vw.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    vw.release()


def test_track_video(tmp_path, tiny_cfg):
    h, w, n = 64, 96, 6
    frames, yy, xx = [], *np.mgrid[:h, :w]
    for t in range(n):
        f = np.full((h, w, 3), 90, np.uint8)
        f[(yy - 30) ** 2 + (xx - 25 - 3 * t) ** 2 < 144] = (220, 40, 40)
        f[10:25, 60:80] = (40, 200, 60)
        frames.append(f)
    video = str(tmp_path / 'clip.mp4')
    _write_video(video, frames)
    mask = np.zeros((h, w), np.uint8)
    mask[(yy - 30) ** 2 + (xx - 25) ** 2 < 144] = 1
    mask[10:25, 60:80] = 2
    mask_path = str(tmp_path / 'first.png')
    cv2.imwrite(mask_path, mask)  # a plain single-channel label PNG
    tool = load_tool('track_video')
    out = str(tmp_path / 'out')
    assert tool.main([video, '--first-mask', mask_path, '--config', tiny_cfg, '--random-init',
                      '--out', out, '--no-progress']) == n
    masks = sorted(glob.glob(osp.join(out, 'masks', '*.png')))
    assert len(masks) == n
    np.testing.assert_array_equal(read_label_png(masks[0]), mask)
    cap = cv2.VideoCapture(osp.join(out, 'overlay.mp4'))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == n
    cap.release()
    assert tool.main([video, '--first-mask', mask_path, '--config', tiny_cfg, '--random-init',
                      '--out', str(tmp_path / 'o2'), '--max-frames', '3', '--no-progress']) == 3


def test_track_video_bad_inputs(tmp_path, tiny_cfg):
    tool = load_tool('track_video')
    fake = tmp_path / 'notavideo.mp4'
    fake.write_text('hello')
    mask = str(tmp_path / 'm.png')
    cv2.imwrite(mask, np.ones((8, 8), np.uint8))
    with pytest.raises(SystemExit, match='notavideo.mp4: OpenCV cannot decode'):
        tool.main([str(fake), '--first-mask', mask, '--config', tiny_cfg, '--random-init'])
    video = str(tmp_path / 'v.mp4')
    _write_video(video, [np.zeros((32, 48, 3), np.uint8)] * 2)
    with pytest.raises(SystemExit, match=r'm.png: mask is 8x8 \(WxH\) but the video frames '
                                         r'are 48x32'):
        tool.main([video, '--first-mask', mask, '--config', tiny_cfg, '--random-init'])
    cv2.imwrite(mask, np.zeros((32, 48), np.uint8))
    with pytest.raises(SystemExit, match='no object'):
        tool.main([video, '--first-mask', mask, '--config', tiny_cfg, '--random-init'])


def test_runner_tracks_toy_davis_with_colour_features(tmp_path):
    """The runner -> PNG -> metric path keeps frames, ids and palette straight: patch colours
    (the toy objects are flat-coloured shapes) track the objects well."""
    from pe_dense.datasets.davis import DavisDataset, read_palette
    from pe_dense.evaluation.davis_metric import evaluate_results
    from pe_dense.tracking import LabelPropagator
    from pe_dense.tracking.davis_runner import propagate_davis

    data, res = str(tmp_path / 'davis'), str(tmp_path / 'res')
    make_toy('davis', data, num_train=1, num_val=2, frames=6, progress_bar=False)

    def colours(frame):
        x = torch.from_numpy(frame).permute(2, 0, 1)[None].float() / 255
        return torch.nn.functional.avg_pool2d(x, 8)[0].permute(1, 2, 0)

    ds = DavisDataset(data)
    assert propagate_davis(ds, LabelPropagator(colours), res, progress=False) == 12
    seq = ds['toy-val-00']
    assert read_palette(osp.join(res, seq.name, '00003.png')) == read_palette(seq.annotations[0])
    assert evaluate_results(ds, res)['global']['J&F-Mean'] > 0.8


def test_track_video_on_a_davis_frame_folder_and_a_numbered_pattern(tmp_path, tiny_cfg):
    """A DAVIS sequence folder and its %05d.jpg pattern are the same video: same masks, and
    the first mask is passed through unchanged."""
    data = str(tmp_path / 'davis')
    make_toy('davis', data, num_train=1, num_val=1, frames=5, progress_bar=False)
    seq = osp.join(data, 'JPEGImages', '480p', 'toy-val-00')
    first = osp.join(data, 'Annotations', '480p', 'toy-val-00', '00000.png')
    tool = load_tool('track_video')
    outs = {}
    for tag, video in (('folder', seq), ('pattern', osp.join(seq, '%05d.jpg'))):
        out = str(tmp_path / tag)
        assert tool.main([video, '--first-mask', first, '--config', tiny_cfg, '--random-init',
                          '--out', out, '--no-progress']) == 5
        outs[tag] = [read_label_png(p) for p in sorted(glob.glob(osp.join(out, 'masks', '*')))]
        assert osp.isfile(osp.join(out, 'overlay.mp4'))
    assert len(outs['folder']) == 5
    np.testing.assert_array_equal(outs['folder'][0], read_label_png(first))
    for a, b in zip(outs['folder'], outs['pattern']):
        np.testing.assert_array_equal(a, b)
    empty = tmp_path / 'empty'
    empty.mkdir()
    with pytest.raises(SystemExit, match='empty: folder holds no frames'):
        tool.main([str(empty), '--first-mask', first, '--config', tiny_cfg, '--random-init'])


def test_davis_tools_without_weights_give_a_hint_not_a_traceback(tmp_path, capsys):
    """A config whose init_cfg checkpoint is absent, run without --checkpoint."""
    data = str(tmp_path / 'davis')
    make_toy('davis', data, num_train=1, num_val=1, frames=3, progress_bar=False)
    cfg = osp.join(ROOT, 'configs', 'davis', 'pe_spatial_t16_davis.py')
    with pytest.raises(SystemExit) as exc:
        load_tool('test_davis').main([cfg, '--data-root', data, '--work-dir',
                                      str(tmp_path / 'w')])
    msg = str(exc.value.code)
    assert msg.startswith('test_davis: PE checkpoint ') and 'not found' in msg
    assert '--checkpoint FILE' in msg and '--random-init' in msg
    seq = osp.join(data, 'JPEGImages', '480p', 'toy-val-00')
    first = osp.join(data, 'Annotations', '480p', 'toy-val-00', '00000.png')
    with pytest.raises(SystemExit, match=r'track_video: .*--checkpoint FILE.*--random-init'):
        load_tool('track_video').main([seq, '--first-mask', first, '--config', cfg])
    assert 'Traceback' not in capsys.readouterr().err


def test_cfg_options_override_tracking_settings(tmp_path):
    cfg = osp.join(ROOT, 'configs', 'davis', 'pe_spatial_t16_davis.py')
    backbone, prop, name = load_settings(cfg, {'propagation.topk': 3, 'backbone.img_size': 224})
    assert prop['topk'] == 3 and prop['radius'] == 12 and backbone['img_size'] == 224
    assert backbone['arch'] == 'PE-Spatial-T16-512' and name == 'pe_spatial_t16_davis'
    backbone, prop, name = load_settings('PE-Core-T16-384', {'propagation.n_last': 2})
    assert backbone == dict(type='PE', arch='PE-Core-T16-384') and prop['n_last'] == 2
    with pytest.raises(KeyError, match=r"unknown propagation keys \['topp'\]"):
        load_settings(cfg, {'propagation.topp': 3})
    args = load_tool('test_davis').parse_args([cfg, '--data-root', 'd', '--cfg-options',
                                               'propagation.temperature=0.2'])
    assert args.cfg_options == {'propagation.temperature': 0.2}
