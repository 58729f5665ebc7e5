"""Image-text / video-text data: manifests, tar shards, video frame sampling, transforms, bad
input (empty caption, missing image, invalid JSON line), and the zero-shot / retrieval metrics."""
import io
import json
import logging
import tarfile

import cv2
import numpy as np
import pytest
import torch
from mmengine.dataset import default_collate
from mmengine.registry import DATASETS, METRICS

import pe_dense.core  # noqa: F401  registers the core components
from pe_dense.datasets.image_text import ManifestError
from pe_dense.datasets.transforms.clip_transforms import (ClipLoadImage, ClipLoadVideoFrames,
                                                          ClipRandomResizedCrop, ClipResize,
                                                          uniform_frame_indices)

PIPE = [dict(type='ClipLoadImage'), dict(type='ClipResize', scale=24),
        dict(type='PackClipInputs')]


def _img(path, color=(255, 0, 0), size=(40, 30)):
    img = np.zeros((size[1], size[0], 3), np.uint8)
    img[:] = color[::-1]
    cv2.imwrite(str(path), img)


def _jsonl(path, rows):
    path.write_text('\n'.join(r if isinstance(r, str) else json.dumps(r) for r in rows) + '\n')


@pytest.fixture
def imgdir(tmp_path):
    (tmp_path / 'images').mkdir()
    for i, c in enumerate([(255, 0, 0), (0, 255, 0)]):
        _img(tmp_path / 'images' / f'{i}.jpg', c)
    return tmp_path


def test_manifest_dataset_jsonl_and_csv(imgdir):
    _jsonl(imgdir / 'm.jsonl', [dict(image='images/0.jpg', caption=' a red thing ', label=3),
                                dict(image='images/1.jpg', caption='a green thing')])
    ds = DATASETS.build(dict(type='ImageTextDataset', data_root=str(imgdir), ann_file='m.jsonl',
                             pipeline=PIPE))
    assert len(ds) == 2
    s = ds[0]
    assert s['inputs'].shape == (3, 24, 24) and s['inputs'].dtype == torch.uint8
    assert s['inputs'][0].float().mean() > 200 and s['inputs'][1].float().mean() < 50  # RGB order
    text = s['data_samples'].pop('text')  # tokenised in the pipeline: SOT a red thing EOT
    assert text[:6].tolist() == [49406, 320, 736, 946, 49407, 0]
    assert s['data_samples'] == dict(caption='a red thing', label=3, sample_idx=0)
    assert ds[1]['data_samples']['label'] == -1
    batch = default_collate([ds[0], ds[1]])
    assert batch['inputs'].shape == (2, 3, 24, 24)
    assert batch['data_samples']['caption'] == ['a red thing', 'a green thing']
    (imgdir / 'm.csv').write_text('filepath\ttitle\nimages/1.jpg\ta green thing\n')
    ds = DATASETS.build(dict(type='ImageTextDataset', data_root=str(imgdir), ann_file='m.csv',
                             image_key='filepath', caption_key='title', label_key=None,
                             pipeline=PIPE))
    assert ds[0]['data_samples']['caption'] == 'a green thing'


def test_bad_manifest_lines_name_the_line_or_are_skipped(imgdir):
    _jsonl(imgdir / 'bad.jsonl', [dict(image='images/0.jpg', caption='ok'), '{"image": broken',
                                  dict(image='images/1.jpg', caption='fine')])
    with pytest.raises(ManifestError, match=r'bad.jsonl:2: not valid JSON'):
        DATASETS.build(dict(type='ImageTextDataset', data_root=str(imgdir),
                            ann_file='bad.jsonl'))
    _jsonl(imgdir / 'empty.jsonl', [dict(image='images/0.jpg', caption='ok'),
                                    dict(image='images/1.jpg', caption='   ')])
    with pytest.raises(ManifestError, match=r'empty.jsonl:2: empty caption'):
        DATASETS.build(dict(type='ImageTextDataset', data_root=str(imgdir),
                            ann_file='empty.jsonl'))
    _jsonl(imgdir / 'nokey.jsonl', [dict(image='images/0.jpg')])
    with pytest.raises(ManifestError, match=r"nokey.jsonl:1: missing or empty field\(s\) \['caption'\]"):
        DATASETS.build(dict(type='ImageTextDataset', data_root=str(imgdir),
                            ann_file='nokey.jsonl'))
    from mmengine.logging import MMLogger
    records = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append
    logger = MMLogger.get_current_instance()  # where print_log(logger='current') writes
    logger.addHandler(handler)
    try:
        ds = DATASETS.build(dict(type='ImageTextDataset', data_root=str(imgdir),
                                 ann_file='empty.jsonl', on_bad='skip', pipeline=PIPE))
    finally:
        logger.removeHandler(handler)
    assert len(ds) == 1
    assert any('empty.jsonl: skipped 1 bad line(s): 2 (empty caption' in r.getMessage()
               for r in records), [r.getMessage() for r in records]


def test_missing_image_errors_with_its_path_or_is_skipped(imgdir):
    _jsonl(imgdir / 'm.jsonl', [dict(image='images/0.jpg', caption='a'),
                                dict(image='images/gone.jpg', caption='b')])
    ds = DATASETS.build(dict(type='ImageTextDataset', data_root=str(imgdir), ann_file='m.jsonl',
                             pipeline=PIPE))
    with pytest.raises(FileNotFoundError, match=r'gone.jpg \(from .*m.jsonl:2\)'):
        ds[1]
    skip = [dict(type='ClipLoadImage', on_missing='skip')] + PIPE[1:]
    ds = DATASETS.build(dict(type='ImageTextDataset', data_root=str(imgdir), ann_file='m.jsonl',
                             pipeline=skip))
    assert ds[1]['data_samples']['caption'] == 'a'  # another sample was drawn instead
    (imgdir / 'images' / 'junk.jpg').write_bytes(b'not an image')
    with pytest.raises(FileNotFoundError, match='junk.jpg'):
        ClipLoadImage()(dict(img_path=str(imgdir / 'images' / 'junk.jpg')))


def _tar(path, members):
    with tarfile.open(path, 'w') as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_webdataset_tar_shards(imgdir, tmp_path):
    jpg = (imgdir / 'images' / '1.jpg').read_bytes()
    _tar(tmp_path / 'shard-000.tar', [('a/0001.jpg', jpg), ('a/0001.txt', b'a green thing'),
                                      ('a/0002.jpg', jpg),
                                      ('a/0002.json', json.dumps(dict(caption='json cap')).encode())])
    _tar(tmp_path / 'shard-001.tar', [('0003.png', jpg), ('0003.txt', b'')])
    with pytest.raises(ManifestError, match=r'shard-001.tar:0003: empty or missing caption'):
        DATASETS.build(dict(type='WebImageTextDataset', shards=str(tmp_path / 'shard-*.tar')))
    ds = DATASETS.build(dict(type='WebImageTextDataset', shards=str(tmp_path / 'shard-*.tar'),
                             on_bad='skip', pipeline=PIPE))
    assert len(ds) == 2
    assert [ds[i]['data_samples']['caption'] for i in range(2)] == ['a green thing', 'json cap']
    assert ds[0]['inputs'][1].float().mean() > 200  # green decoded from the shard bytes
    with pytest.raises(FileNotFoundError, match='no tar shard'):
        DATASETS.build(dict(type='WebImageTextDataset', shards=str(tmp_path / 'none-*.tar')))


def _video(path, n=12):
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'mp4v'), 8, (32, 32))
    for i in range(n):
        w.write(np.full((32, 32, 3), i * 20, np.uint8))
    w.release()


def test_video_dataset_samples_uniform_frames(tmp_path):
    (tmp_path / 'v').mkdir()
    _video(tmp_path / 'v' / 'a.mp4')
    _jsonl(tmp_path / 'v.jsonl', [dict(video='v/a.mp4', caption='a clip', label=1),
                                  dict(video='v/missing.mp4', caption='gone')])
    assert list(uniform_frame_indices(12, 4)) == [1, 4, 7, 10]
    assert list(uniform_frame_indices(3, 8)) == [0, 0, 0, 1, 1, 2, 2, 2]
    pipe = [dict(type='ClipLoadVideoFrames', num_frames=4),
            dict(type='ClipRandomResizedCrop', size=16), dict(type='PackClipInputs')]
    ds = DATASETS.build(dict(type='VideoTextDataset', data_root=str(tmp_path),
                             ann_file='v.jsonl', pipeline=pipe, serialize_data=False))
    s = ds[0]
    assert s['inputs'].shape == (4, 3, 16, 16) and s['data_samples']['label'] == 1
    means = s['inputs'].float().mean(dim=(1, 2, 3))
    assert (means[1:] > means[:-1]).all()  # frames in time order, increasing brightness
    with pytest.raises(ValueError, match=r'cannot read video .*missing.mp4'):
        ds[1]


def test_crop_and_resize_share_parameters_across_frames():
    frames = [np.random.default_rng(0).integers(0, 255, (20, 30, 3), np.uint8)] * 3
    out = ClipRandomResizedCrop(size=8, scale=(0.3, 0.5))(dict(imgs=list(frames)))
    assert all(f.shape == (8, 8, 3) for f in out['imgs'])
    assert all(np.array_equal(out['imgs'][0], f) for f in out['imgs'])
    r = ClipResize(scale=12)(dict(img=frames[0]))
    assert r['img'].shape == (12, 12, 3) and r['img_shape'] == (12, 12)
    with pytest.raises(ValueError, match='num_frames'):
        ClipLoadVideoFrames(num_frames=0)


def test_zero_shot_and_retrieval_metrics():
    zs = METRICS.build(dict(type='ZeroShotAccuracy', topk=(1, 2)))
    zs.process(None, [dict(class_scores=torch.tensor([0.9, 0.1, 0.0]), gt_label=0),
                      dict(class_scores=torch.tensor([0.5, 0.4, 0.1]), gt_label=1),
                      dict(class_scores=torch.tensor([0.5, 0.4, 0.1]), gt_label=2),
                      dict(class_scores=torch.tensor([0.5, 0.4, 0.1]), gt_label=-1)])
    assert zs.evaluate(3) == {'zero_shot/top1': pytest.approx(100 / 3),
                              'zero_shot/top2': pytest.approx(200 / 3)}
    with pytest.raises(KeyError, match='class_scores'):
        zs.process(None, [dict(image_emb=torch.zeros(2))])
    rt = METRICS.build(dict(type='ImageTextRetrieval', ks=(1, 2)))
    eye = torch.eye(3)
    text = torch.stack([eye[0], eye[2], eye[1]])  # text 0 right; texts 1, 2 swapped
    rt.process(None, [dict(image_emb=eye[i], text_emb=text[i]) for i in range(3)])
    res = rt.evaluate(3)
    assert res['retrieval/t2i_R@1'] == pytest.approx(100 / 3)
    assert res['retrieval/i2t_R@1'] == pytest.approx(100 / 3)
    assert res['retrieval/t2i_R@2'] == pytest.approx(100.)  # the swapped ones rank second
