"""Fuzz every dataset class with generated broken files, through the pipelines our configs use.

Each dataset gets a small valid set in its real layout plus every hostile file of
``tests/fuzz/broken_images.py`` (and broken annotations where the format has them). Every
index is loaded and each file's outcome checked: a correct sample (RGB uint8, upright shape,
labels unchanged), a skip with a logged count, or an exception whose message names the file.
A per-test alarm turns a hang into a failure (docs/reliability.md has the outcome table).
"""
import faulthandler
import io
import json
import logging
import os
import os.path as osp
import shutil
import signal
import tarfile

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.registry import init_default_scope
from PIL import Image

import pe_dense.all  # noqa: F401  registers every component
from pe_dense.datasets.robust_loading import DEFAULT_MAX_PIXELS
from tests.fuzz.broken_images import write_broken_images

ROOT = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'configs')
TIMEOUT = 300  # hang guard, not a speed limit: each test takes a few seconds


@pytest.fixture(autouse=True)
def hang_guard():
    """SIGALRM fails a test stuck in Python code; faulthandler kills the process (printing
    every thread's stack) if it is stuck inside C code, where the alarm cannot interrupt."""
    def on_alarm(signum, frame):
        raise TimeoutError(f'dataset fuzz test ran past {TIMEOUT} s: a loader hangs')
    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(TIMEOUT)
    faulthandler.dump_traceback_later(2 * TIMEOUT, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


@pytest.fixture
def logs():
    """Messages printed through MMEngine's current logger (where loaders log their skips)."""
    records = []
    handler = logging.Handler()
    handler.emit = lambda r: records.append(r.getMessage())
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


@pytest.fixture
def hostile(tmp_path):
    """(folder, {name: (outcome, upright (H, W))}) with the valid control 'good.jpg' added."""
    src = tmp_path / 'hostile'
    src.mkdir()
    expect = write_broken_images(src, max_pixels=DEFAULT_MAX_PIXELS)
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 255, (20, 30, 3), dtype=np.uint8)).save(
        src / 'good.jpg', quality=95)
    expect['good.jpg'] = ('ok', (20, 30))
    return src, expect


def attempt(fn):
    """('ok', value) | ('skip', None) | ('error', exception) for one load."""
    try:
        out = fn()
    except Exception as err:  # noqa: BLE001 - the outcome is what we check
        return 'error', err
    return ('skip', None) if out is None else ('ok', out)


def check(name, want, got, logs=(), shape_of=None):
    """Assert one file's outcome: the expected sample, or a skip/error that names ``name``."""
    kind, shape = want
    status, value = got
    if kind == 'ok':
        assert status == 'ok', f'{name}: expected a sample, got {status}: {value!r}'
        if shape_of is not None:
            img = shape_of(value)
            assert img.dtype in (np.uint8, torch.uint8), f'{name}: dtype {img.dtype}'
            assert tuple(img.shape) == (*shape, 3), f'{name}: shape {tuple(img.shape)}'
        return
    if status == 'skip':
        assert any(name in m for m in logs), f'{name}: skipped without a log naming it: {logs}'
    else:
        assert status == 'error', f'{name}: expected a skip or error, got a sample'
        assert name in str(value), f'{name}: error does not name the file: {value!r}'


def hwc(chw):
    """(3, H, W) tensor -> (H, W, 3) view, to compare shapes with the table."""
    return chw.permute(1, 2, 0)


# ---------------------------------------------------------------- alignment: folder / SA-1B
def align_pipeline():
    cfg = Config.fromfile(osp.join(ROOT, 'align', 'pe_spatial_align_g14_448.py'))
    load = cfg.train_dataloader.dataset.pipeline[0]
    assert load['type'] == 'LoadAlignImage'  # the config's loader is the one fuzzed here
    return [load, dict(type='PackAlignInputs')]


def test_image_folder(tmp_path, hostile):
    from pe_dense.datasets import ImageFolderDataset
    src, expect = hostile
    shutil.copytree(src, tmp_path / 'imgs' / 'sub')
    ds = ImageFolderDataset(data_root=str(tmp_path / 'imgs'), pipeline=align_pipeline())
    names = [osp.basename(ds.get_data_info(i)['img_path']) for i in range(len(ds))]
    assert sorted(names) == sorted(expect)
    for i, name in enumerate(names):
        check(name, expect[name], attempt(lambda: ds[i]),
              shape_of=lambda out: hwc(out['inputs']))


def test_sa1b_records_and_images(tmp_path, hostile):
    from pe_dense.datasets import SA1BDataset
    src, expect = hostile
    shard = tmp_path / 'sa1b' / 'sa_000000'
    shard.mkdir(parents=True)
    expect = dict(expect)
    shutil.copy(src / 'exif_rotated.jpg', src / 'exif_upright_record.jpg')
    expect['exif_upright_record.jpg'] = expect['exif_rotated.jpg']
    # record in the stored (pre-EXIF) frame: boxes/masks would be displaced -> error
    expect['exif_rotated.jpg'] = ('error', None)
    order = sorted(expect)
    for k, name in enumerate(order):
        shutil.copy(src / name, shard / f'sa_{k}{osp.splitext(name)[1]}')
        h, w = (20, 30) if name == 'exif_rotated.jpg' else (expect[name][1] or (20, 30))
        (shard / f'sa_{k}.json').write_text(json.dumps(dict(image=dict(
            file_name=f'sa_{k}{osp.splitext(name)[1]}', height=h, width=w), annotations=[])))
    ds = SA1BDataset(data_root=str(tmp_path / 'sa1b'), pipeline=align_pipeline())
    assert len(ds) == len(order)
    for i in range(len(ds)):
        k = int(osp.basename(ds.get_data_info(i)['img_path'])[3:].split('.')[0])
        file = osp.basename(ds.get_data_info(i)['img_path'])
        check(file, expect[order[k]], attempt(lambda: ds[i]),
              shape_of=lambda out: hwc(out['inputs']))
    # broken annotation: invalid JSON in one record fails indexing and names that file
    (shard / 'sa_99.json').write_text('{"image": {"file_name": ')
    with pytest.raises(ValueError, match='sa_99.json'):
        SA1BDataset(data_root=str(tmp_path / 'sa1b'))


def test_sam_target_cache_files(tmp_path):
    from pe_dense.datasets.transforms.align_transforms import LoadSAMTargets
    root = tmp_path / 'cache'
    root.mkdir()
    torch.save(torch.ones(4, 2, 3, dtype=torch.float16), root / 'good.pt')
    (root / 'empty.pt').write_bytes(b'')
    (root / 'text.pt').write_text('not a tensor file')
    full = (root / 'good.pt').read_bytes()
    (root / 'truncated.pt').write_bytes(full[: len(full) // 2])
    torch.save(torch.ones(2, 3), root / 'flat.pt')
    torch.save({'a': 1}, root / 'dict.pt')
    load = LoadSAMTargets(str(root))
    for key in ('empty', 'text', 'truncated', 'flat', 'dict', 'missing'):
        check(f'{key}.pt', ('error', None), attempt(lambda: load(dict(key=key))))
    assert load(dict(key='good'))['sam_targets'].shape == (4, 2, 3)


# ---------------------------------------------------------------- CLIP: manifests, shards, video
def clip_pipelines():
    cfg = Config.fromfile(osp.join(ROOT, 'core', 'pe_core_toy.py'))
    train, test = cfg.train_dataloader.dataset.pipeline, cfg.val_dataloader.dataset.pipeline
    assert train[0] == dict(type='ClipLoadImage', on_missing='skip')
    assert test[0]['type'] == 'ClipLoadImage' and test[0].get('on_missing', 'error') == 'error'
    return [train[0], dict(type='PackClipInputs')], [test[0], dict(type='PackClipInputs')]


def test_image_text_manifest(tmp_path, hostile, logs):
    from pe_dense.datasets import ImageTextDataset
    from pe_dense.datasets.image_text import ManifestError
    src, expect = hostile
    names = sorted(expect)
    ann = tmp_path / 'm.jsonl'
    ann.write_text(''.join(json.dumps(dict(image=str(src / n), caption=f'picture {n}', label=k))
                           + '\n' for k, n in enumerate(names)))
    train_pipe, test_pipe = clip_pipelines()
    ds = ImageTextDataset(str(ann), pipeline=test_pipe, test_mode=True)
    for i, name in enumerate(names):
        got = attempt(lambda: ds[i])
        check(name, expect[name], got, shape_of=lambda out: hwc(out['inputs']))
        if got[0] == 'ok':  # labels unchanged
            assert got[1]['data_samples']['label'] == i
            assert got[1]['data_samples']['caption'] == f'picture {name}'
    train = ImageTextDataset(str(ann), pipeline=train_pipe)
    outs = {n: attempt(lambda: train.pipeline(train.get_data_info(i)))
            for i, n in enumerate(names)}
    for name in names:
        check(name, expect[name], outs[name], logs, lambda out: hwc(out['inputs']))
    bad = [n for n in names if expect[n][0] == 'error']
    assert [n for n in names if outs[n][0] == 'skip'] == bad
    loader = train.pipeline.transforms[0]
    assert loader.skipped == len(bad) and f'{len(bad)} skipped' in ''.join(logs)
    for i, name in enumerate(names):  # the dataset draws another sample for a skipped one
        if expect[name][0] == 'error':
            assert train[i]['data_samples']['label'] != i
    # broken manifest lines: invalid JSON, empty caption -> named error, or logged skip
    bad_ann = tmp_path / 'bad.jsonl'
    bad_ann.write_text(ann.read_text() + '{"image": "x.jpg", "caption": \n'
                       + json.dumps(dict(image='y.jpg', caption=' ')) + '\n')
    with pytest.raises(ManifestError, match=rf'bad.jsonl:{len(names) + 1}: not valid JSON'):
        ImageTextDataset(str(bad_ann))
    bad_ann.write_text(ann.read_text() + json.dumps(dict(image='y.jpg', caption=' ')) + '\n')
    with pytest.raises(ManifestError, match=rf'bad.jsonl:{len(names) + 1}: empty caption'):
        ImageTextDataset(str(bad_ann))
    logs.clear()
    assert len(ImageTextDataset(str(bad_ann), on_bad='skip')) == len(names)
    assert any('bad.jsonl: skipped 1 bad line' in m for m in logs)


def test_web_image_text_shard(tmp_path, hostile):
    from pe_dense.datasets import WebImageTextDataset
    src, expect = hostile
    names = sorted(expect)
    shard = tmp_path / 'shard-000.tar'
    with tarfile.open(shard, 'w') as tar:
        for name in names:
            tar.add(src / name, arcname=name)
            cap = f'picture {name}'.encode()
            info = tarfile.TarInfo(osp.splitext(name)[0] + '.txt')
            info.size = len(cap)
            tar.addfile(info, io.BytesIO(cap))
    _, test_pipe = clip_pipelines()
    ds = WebImageTextDataset(str(shard), pipeline=test_pipe, test_mode=True)
    assert len(ds) == len(names)
    for i in range(len(ds)):
        name = ds.get_data_info(i)['img_path'].rsplit(':', 1)[1]
        got = attempt(lambda: ds[i])
        check(name, expect[name], got, shape_of=lambda out: hwc(out['inputs']))
        if got[0] == 'ok':
            assert got[1]['data_samples']['caption'] == f'picture {name}'


def test_video_text(tmp_path):
    from pe_dense.datasets import VideoTextDataset
    good = tmp_path / 'good.mp4'
    w = cv2.VideoWriter(str(good), cv2.VideoWriter_fourcc(*'mp4v'), 8, (32, 24))
    for i in range(12):
        w.write(np.full((24, 32, 3), i * 20, np.uint8))
    w.release()
    data = good.read_bytes()
    (tmp_path / 'truncated.mp4').write_bytes(data[: len(data) // 3])
    (tmp_path / 'not_a_video.mp4').write_text('hello, I am text')
    (tmp_path / 'empty.mp4').write_bytes(b'')
    names = ['good.mp4', 'truncated.mp4', 'not_a_video.mp4', 'empty.mp4', 'missing.mp4']
    ann = tmp_path / 'v.jsonl'
    ann.write_text(''.join(json.dumps(dict(video=str(tmp_path / n), caption='c', label=k)) + '\n'
                           for k, n in enumerate(names)))
    ds = VideoTextDataset(str(ann), test_mode=True, pipeline=[
        dict(type='ClipLoadVideoFrames', num_frames=4), dict(type='PackClipInputs')])
    for i, name in enumerate(names):
        got = attempt(lambda: ds[i])
        if name == 'good.mp4':
            assert got[0] == 'ok' and tuple(got[1]['inputs'].shape) == (4, 3, 24, 32)
            assert got[1]['data_samples']['label'] == i
        else:  # the mp4v writer puts the index at the end: a cut file has no readable frame
            check(name, ('error', None), got)


# ---------------------------------------------------------------- COCO (mmdet)
def test_checked_coco(tmp_path, hostile, logs):
    from mmdet.registry import DATASETS
    src, expect = hostile
    expect = dict(expect)
    img_dir = tmp_path / 'img'
    shutil.copytree(src, img_dir)
    shutil.copy(img_dir / 'exif_rotated.jpg', img_dir / 'exif_upright_record.jpg')
    expect['exif_upright_record.jpg'] = expect['exif_rotated.jpg']
    expect['exif_rotated.jpg'] = ('error', None)  # record in the stored frame: boxes displaced
    names = sorted(expect)
    images, anns = [], []
    for k, name in enumerate(names, 1):
        h, w = (20, 30) if name == 'exif_rotated.jpg' else (expect[name][1] or (20, 30))
        images.append(dict(id=k, file_name=name, height=h, width=w))
        anns.append(dict(id=k, image_id=k, category_id=1, bbox=[2, 3, 5, 6], area=30,
                         iscrowd=0))
    good = names.index('good.jpg') + 1
    anns += [dict(id=100, image_id=good, category_id=1, bbox=[float('nan'), 1, 2, 2],
                  area=4, iscrowd=0),
             dict(id=101, image_id=good, category_id=1, bbox=[5, 5, -3, 4], area=-12,
                  iscrowd=0)]
    images.append(dict(id=999, file_name='good.jpg', height=20, width=30))  # no annotations
    ann_file = tmp_path / 'ann.json'
    ann_file.write_text(json.dumps(dict(images=images, annotations=anns,
                                        categories=[dict(id=1, name='thing')])))
    cfg = Config.fromfile(osp.join(ROOT, '_base_', 'datasets', 'coco_detection_lsj.py'))
    assert cfg.train_pipeline[0]['type'] == 'LoadImageOrSkip'
    train_pipe = cfg.train_pipeline[:2] + [dict(type='PackDetInputs')]
    # the configs' test pipelines keep LoadImageFromFile (mmdet's DetInferencer looks it up by
    # name); LoadImageRobust is the strict evaluation loader checked here
    test_pipe = [dict(type='LoadImageRobust', on_error='raise'),
                 dict(type='LoadAnnotations', with_bbox=True),
                 dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape'))]
    init_default_scope('mmdet')

    def build(pipeline, **kw):
        return DATASETS.build(dict(type=cfg.dataset_type, ann_file=str(ann_file),
                                   data_root=str(tmp_path), data_prefix=dict(img='img/'),
                                   metainfo=dict(classes=('thing',)), pipeline=pipeline, **kw))

    test = build(test_pipe, test_mode=True)
    # NaN and negative-size boxes dropped with a logged count; the empty list kept
    assert test.repair_counts['nan'] == 1 and test.repair_counts['empty'] == 1
    assert any('skipped 1 zero-area and 1 NaN/inf boxes' in m for m in logs)
    for i in range(len(test)):
        info = test.get_data_info(i)
        name = osp.basename(info['img_path'])
        got = attempt(lambda: test[i])
        if info['img_id'] == 999:
            assert got[0] == 'ok' and len(got[1]['data_samples'].gt_instances) == 0
            continue
        check(name, expect[name], got,
              shape_of=lambda out: hwc(out['inputs']))
        if got[0] == 'ok':  # labels unchanged: the one box, in xyxy
            boxes = got[1]['data_samples'].gt_instances.bboxes.tensor.tolist()
            assert boxes == [[2, 3, 7, 9]], (name, boxes)
    logs.clear()
    train = build(train_pipe, filter_cfg=dict(filter_empty_gt=True, min_size=1))
    assert len(train) == len(names)  # image 999 has no box left: filtered out
    loader = train.pipeline.transforms[0]
    outs = {}
    for i in range(len(train)):
        name = osp.basename(train.get_data_info(i)['img_path'])
        outs[name] = attempt(lambda: train.pipeline(train.get_data_info(i)))
        check(name, expect[name], outs[name], logs, lambda out: hwc(out['inputs']))
    bad = [n for n in names if expect[n][0] == 'error']
    assert sorted(n for n, o in outs.items() if o[0] == 'skip') == bad
    assert loader.skipped == len(bad)
    assert any(f'{len(bad)} skipped by this loader' in m for m in logs)


# ---------------------------------------------------------------- ADE20k / NYU (mmseg)
def seg_layout(root, src, expect, split, label_fn, tail=''):
    """images/<split>/<stem><tail>.jpg (hostile content under a .jpg name, as mmseg lists
    only .jpg) and a label PNG per image; returns {jpg name: ((outcome, shape), label)}."""
    os.makedirs(root / 'images' / split)
    os.makedirs(root / 'annotations' / split)
    table = {}
    for name, (kind, shape) in expect.items():
        stem = osp.splitext(name)[0] + tail
        shutil.copy(src / name, root / 'images' / split / f'{stem}.jpg')
        # labels are drawn in the stored pixel frame (what an annotation tool that ignores
        # EXIF produces): an EXIF-rotated image then disagrees in size -> named error
        lab_shape = (20, 30) if name == 'exif_rotated.jpg' else (shape or (20, 30))
        label = label_fn(lab_shape)
        cv2.imwrite(str(root / 'annotations' / split / f'{stem}.png'), label)
        if name == 'exif_rotated.jpg':
            kind = 'error'
        table[f'{stem}.jpg'] = ((kind, shape), label)
    return table


def run_seg(ds_cfg, table, gt_of, logs):
    from mmseg.registry import DATASETS
    init_default_scope('mmseg')
    ds = DATASETS.build(ds_cfg)
    assert len(ds) == len(table)
    for i in range(len(ds)):
        info = ds.get_data_info(i)
        name = osp.basename(info['img_path'])
        want, label = table[name]
        if ds.test_mode:
            got = attempt(lambda: ds[i])
        else:
            got = attempt(lambda: ds.pipeline(info))
        # the reported file is the image or, for a label/image mismatch, the label
        named = name if want[0] == 'ok' or got[0] != 'error' or name in str(got[1]) \
            else osp.splitext(name)[0] + '.png'
        check(named, want, got, logs)
        if got[0] == 'ok' and ds.test_mode:
            sample = got[1]['data_samples']
            assert tuple(sample.ori_shape) == want[1], name  # upright image size
            np.testing.assert_allclose(gt_of(sample), gt_of.expected(label), rtol=1e-6,
                                       err_msg=name)
    return ds


def test_ade20k(tmp_path, hostile, logs):
    src, expect = hostile
    rng = np.random.default_rng(2)
    root = tmp_path / 'ade'
    table = seg_layout(root, src, expect, 'validation',
                       lambda hw: rng.integers(0, 151, hw).astype(np.uint8))
    # broken annotations: a label of the wrong size, and a missing label file
    Image.fromarray(rng.integers(0, 255, (20, 30, 3), dtype=np.uint8)).save(
        root / 'images' / 'validation' / 'wrong_size.jpg')
    cv2.imwrite(str(root / 'annotations' / 'validation' / 'wrong_size.png'),
                np.ones((10, 10), np.uint8))
    table['wrong_size.jpg'] = (('error', None), None)
    shutil.copy(root / 'images' / 'validation' / 'wrong_size.jpg',
                root / 'images' / 'validation' / 'no_label.jpg')
    table['no_label.jpg'] = (('error', None), None)
    cfg = Config.fromfile(osp.join(ROOT, '_base_', 'datasets', 'ade20k_448.py'))

    def gt(sample):
        return sample.gt_sem_seg.data[0].numpy()
    gt.expected = lambda lab: np.where(lab == 0, 255, lab.astype(np.int64) - 1)  # reduce_zero
    ds_cfg = dict(cfg.val_dataloader.dataset, data_root=str(root), test_mode=True,
                  data_prefix=dict(img_path='images/validation',
                                   seg_map_path='annotations/validation'))
    run_seg(ds_cfg, table, gt, logs)
    ds_cfg = dict(ds_cfg, test_mode=False, pipeline=cfg.train_pipeline)
    run_seg(ds_cfg, table, gt, logs)
    assert any('LoadImageRobust skipped' in m for m in logs)


def test_nyu_depth(tmp_path, hostile, logs):
    src, expect = hostile
    rng = np.random.default_rng(3)
    root = tmp_path / 'nyu'
    table = seg_layout(root, src, expect, 'test',
                       lambda hw: rng.integers(500, 9000, hw).astype(np.uint16),
                       tail='_0001')  # NYU names are <scene>_<number> (mmseg parses them)
    # broken annotation: depth saved in metres (values <= 10) -> CheckDepthMap names it
    shutil.copy(src / 'good.jpg', root / 'images' / 'test' / 'metres_0001.jpg')
    cv2.imwrite(str(root / 'annotations' / 'test' / 'metres_0001.png'),
                np.full((20, 30), 3, np.uint16))
    table['metres_0001.jpg'] = (('error', None), None)
    cfg = Config.fromfile(osp.join(ROOT, '_base_', 'datasets', 'nyu.py'))

    def gt(sample):
        return sample.gt_depth_map.data[0].numpy()
    gt.expected = lambda lab: (lab * 1e-3).astype(np.float32)
    ds_cfg = dict(cfg.val_dataloader.dataset, data_root=str(root),
                  data_prefix=dict(img_path='images/test', depth_map_path='annotations/test'))
    run_seg(ds_cfg, table, gt, logs)
    run_seg(dict(ds_cfg, test_mode=False, pipeline=cfg.train_pipeline), table, gt, logs)


# ---------------------------------------------------------------- DAVIS
def test_davis_frames_and_masks(tmp_path, hostile):
    from pe_dense.datasets.davis import DavisDataError, DavisDataset, write_label_png
    from pe_dense.tracking import LabelPropagator
    from pe_dense.tracking.davis_runner import propagate_davis
    src, expect = hostile
    root = tmp_path / 'davis'
    first = np.zeros((20, 30), np.uint8)
    first[4:12, 6:16] = 1
    seqs = {}
    for name in sorted(expect):  # one sequence per hostile file, as its frame 00001
        seq = osp.splitext(name)[0]
        img_dir, ann_dir = root / 'JPEGImages' / '480p' / seq, root / 'Annotations' / '480p' / seq
        img_dir.mkdir(parents=True)
        shutil.copy(src / 'good.jpg', img_dir / '00000.jpg')
        shutil.copy(src / name, img_dir / '00001.jpg')
        for t in (0, 1):
            write_label_png(str(ann_dir / f'{t:05d}.png'), first)
        # frames must match the first annotation's size; any other upright size is an error
        kind, shape = expect[name]
        seqs[seq] = ('ok', shape) if kind == 'ok' and shape == (20, 30) else ('error', None)
    (root / 'ImageSets' / '2017').mkdir(parents=True)
    (root / 'ImageSets' / '2017' / 'val.txt').write_text(''.join(s + '\n' for s in seqs))

    def colours(frame):
        x = torch.from_numpy(frame).permute(2, 0, 1)[None].float() / 255
        return torch.nn.functional.avg_pool2d(x, 2)[0].permute(1, 2, 0)

    for seq, want in seqs.items():
        ds = DavisDataset(str(root), sequences=[seq])
        assert ds.load_annotations(ds[seq]).shape == (2, 20, 30)
        got = attempt(lambda: propagate_davis(ds, LabelPropagator(colours, radius=4),
                                              str(tmp_path / 'res'), progress=False))
        check(osp.join(seq, '00001.jpg'), want, got)
        if got[0] == 'error':
            assert isinstance(got[1], DavisDataError)
        else:
            assert got[1] == 2 and (tmp_path / 'res' / seq / '00001.png').is_file()
    # broken annotations: a missing mask, an undecodable mask, a mask of another size
    seq = 'good'
    ann_dir = root / 'Annotations' / '480p' / seq
    os.remove(ann_dir / '00001.png')
    with pytest.raises(DavisDataError, match=r'00001\.png'):
        DavisDataset(str(root))[seq]
    (ann_dir / '00001.png').write_bytes((ann_dir / '00000.png').read_bytes()[:40])
    ds = DavisDataset(str(root))
    with pytest.raises(DavisDataError, match=r'good/00001\.png: cannot decode'):
        ds.load_annotations(ds[seq])
    write_label_png(str(ann_dir / '00001.png'), np.zeros((10, 10), np.uint8))
    with pytest.raises(DavisDataError, match=r'good/00001\.png is \(10, 10\)'):
        ds.load_annotations(ds[seq])
