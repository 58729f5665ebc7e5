"""Toy datasets: written in real formats and read back by the real consumers."""
import hashlib
import json
import os.path as osp

import cv2
import numpy as np
import pytest

from pe_dense.toy import make_toy
from pe_dense.toy.coco import make_coco

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def _sha(path):
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


@pytest.fixture(scope='module')
def coco_dir(tmp_path_factory):
    out = str(tmp_path_factory.mktemp('coco'))
    summary = make_coco(out, num_train=6, num_val=3, size=(112, 80), seed=3, progress_bar=False)
    return out, summary


def test_coco_pycocotools(coco_dir):
    from pycocotools.coco import COCO
    out, summary = coco_dir
    assert summary['splits']['train2017']['images'] == 6
    coco = COCO(osp.join(out, 'annotations', 'instances_train2017.json'))
    assert sorted(coco.getCatIds()) == [1, 2, 3]
    assert [c['name'] for c in coco.loadCats([1, 2, 3])] == ['circle', 'square', 'triangle']
    anns = coco.loadAnns(coco.getAnnIds())
    assert len(anns) >= 6
    for a in anns:
        img = coco.loadImgs(a['image_id'])[0]
        assert osp.isfile(osp.join(out, 'train2017', img['file_name']))
        x, y, w, h = a['bbox']
        assert w > 0 and h > 0 and x >= 0 and y >= 0
        assert x + w <= img['width'] and y + h <= img['height']
        assert a['iscrowd'] == 0 and a['category_id'] in (1, 2, 3)
        m = coco.annToMask(a)
        assert m.shape == (img['height'], img['width']) and m.sum() > 0
        # polygon rasterisation agrees with the stored area and box
        assert abs(m.sum() - a['area']) / a['area'] < 0.25
        ys, xs = np.nonzero(m)
        assert abs(xs.min() - x) <= 1 and abs(ys.min() - y) <= 1


def test_coco_image_ids_unique_across_splits(coco_dir):
    out, _ = coco_dir
    ids = []
    for split in ('train2017', 'val2017'):
        with open(osp.join(out, 'annotations', f'instances_{split}.json')) as f:
            ids += [im['id'] for im in json.load(f)['images']]
    assert len(ids) == len(set(ids)) == 9 and min(ids) >= 1


def test_coco_rle_and_classes(tmp_path):
    from pycocotools.coco import COCO
    make_coco(str(tmp_path), num_train=3, num_val=1, size=(120, 80), seed=1,
              classes=('star', 'circle'), mask_format='rle', progress_bar=False)
    coco = COCO(str(tmp_path / 'annotations' / 'instances_val2017.json'))
    assert [c['name'] for c in coco.loadCats(coco.getCatIds())] == ['star', 'circle']
    img = coco.loadImgs(coco.getImgIds())[0]
    assert (img['width'], img['height']) == (120, 80)
    for a in coco.loadAnns(coco.getAnnIds()):
        assert isinstance(a['segmentation'], dict)
        assert coco.annToMask(a).sum() == a['area']


def test_coco_mmdet_dataset(coco_dir):
    from mmcv.transforms import LoadImageFromFile
    from mmdet.datasets import CocoDataset
    from mmdet.datasets.transforms import LoadAnnotations, PackDetInputs
    out, _ = coco_dir
    ds = CocoDataset(
        data_root=out, ann_file='annotations/instances_val2017.json',
        data_prefix=dict(img='val2017/'), metainfo=dict(classes=('circle', 'square', 'triangle')),
        filter_cfg=dict(filter_empty_gt=True),
        pipeline=[LoadImageFromFile(), LoadAnnotations(with_bbox=True, with_mask=True),
                  PackDetInputs()])
    assert len(ds) == 3
    sample = ds[0]
    inputs, ds_sample = sample['inputs'], sample['data_samples']
    assert tuple(inputs.shape) == (3, 80, 112)  # (c, h, w) of a 112 x 80 picture
    gt = ds_sample.gt_instances
    assert len(gt) >= 1 and gt.labels.min() >= 0 and gt.labels.max() <= 2
    assert gt.masks.to_ndarray().sum(axis=(1, 2)).min() > 0


def test_coco_deterministic(tmp_path):
    a, b, c = (str(tmp_path / n) for n in 'abc')
    for out, seed in ((a, 5), (b, 5), (c, 6)):
        make_coco(out, num_train=3, num_val=1, size=64, seed=seed, progress_bar=False)
    rel = osp.join('annotations', 'instances_train2017.json')
    assert _sha(osp.join(a, rel)) == _sha(osp.join(b, rel))
    assert _sha(osp.join(a, 'train2017', '000000000001.jpg')) == \
        _sha(osp.join(b, 'train2017', '000000000001.jpg'))
    assert _sha(osp.join(a, rel)) != _sha(osp.join(c, rel))


def test_coco_bad_input(tmp_path):
    with pytest.raises(ValueError, match='hexagonal'):
        make_coco(str(tmp_path), classes=('circle', 'hexagonal'))
    with pytest.raises(ValueError, match='mask_format'):
        make_coco(str(tmp_path), mask_format='bitmap')
    with pytest.raises(ValueError, match='size'):
        make_coco(str(tmp_path), size='12x')
    with pytest.raises(ValueError, match='unknown toy dataset kind'):
        make_toy('kitti', str(tmp_path))


def _run_cli(*argv):
    """Run tools/make_toy_data.py in-process (a subprocess would re-import torch & co)."""
    import contextlib
    import io
    import runpy
    mod = runpy.run_path(osp.join(ROOT, 'tools', 'make_toy_data.py'))
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        mod['main'](list(argv))
    return json.loads(buf.getvalue())


def test_cli_coco(tmp_path):
    out = tmp_path / 'cli'
    summary = _run_cli('coco', '--out', str(out), '--num-train', '2', '--num-val', '1',
                       '--seed', '2', '--classes', 'circle,star', '--no-progress')
    assert summary['classes'] == ['circle', 'star']
    assert summary['splits']['val2017']['images'] == 1
    with open(out / 'annotations' / 'instances_val2017.json') as f:
        image = json.load(f)['images'][0]
    assert (image['width'], image['height']) == (144, 96)  # landscape by default
    assert cv2.imread(str(out / 'val2017' / image['file_name'])).shape == (96, 144, 3)


def test_cli_rejects_option_of_other_kind(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        _run_cli('nyu', '--out', str(tmp_path), '--layout', 'sa1b', '--no-progress')
    assert exc.value.code == 2  # a usage error naming the flag, not the keyword
    assert 'nyu does not take --layout' in capsys.readouterr().err


# ----------------------------------------------------------------------------- ADE20K
def test_ade20k_mmseg_dataset(tmp_path):
    from mmcv.transforms import LoadImageFromFile
    from mmseg.datasets import ADE20KDataset
    from mmseg.datasets.transforms import LoadAnnotations, PackSegInputs
    from pe_dense.toy import ADE20K_TOY_CLASSES, make_ade20k
    summary = make_ade20k(str(tmp_path), num_train=3, num_val=2, size=64, seed=0,
                          progress_bar=False)
    ids = set(summary['splits']['training']['pixels_per_id'])
    assert ids <= {0, 1, 3, 4, 10, 42, 44, 120, 150} and len(ids) >= 4
    # LoadAnnotations takes reduce_zero_label from the dataset (ADE20KDataset: True)
    pipeline = [LoadImageFromFile(), LoadAnnotations(), PackSegInputs()]
    full = ADE20KDataset(data_root=str(tmp_path),
                         data_prefix=dict(img_path='images/validation',
                                          seg_map_path='annotations/validation'),
                         pipeline=pipeline)
    assert len(full) == 2
    seg = full[0]['data_samples'].gt_sem_seg.data.numpy()
    assert seg.shape == (1, 64, 64)
    # reduce_zero_label: ADE id k -> k-1, 0 ("other") -> 255
    assert set(np.unique(seg)) <= {255, 0, 2, 3, 9, 41, 43, 119, 149}
    # the toy subset as custom metainfo: mmseg remaps it to 0..7 (+255 ignore)
    small = ADE20KDataset(data_root=str(tmp_path), metainfo=dict(classes=ADE20K_TOY_CLASSES),
                          data_prefix=dict(img_path='images/training',
                                           seg_map_path='annotations/training'),
                          pipeline=pipeline)
    labels = set()
    for i in range(len(small)):
        labels |= set(np.unique(small[i]['data_samples'].gt_sem_seg.data.numpy()).tolist())
    assert labels <= set(range(8)) | {255} and len(labels - {255}) >= 3


def test_ade20k_bad_class(tmp_path):
    from pe_dense.toy import make_ade20k
    with pytest.raises(ValueError, match='ellipse'):
        make_ade20k(str(tmp_path), classes=('circle', 'ellipse'))


# ----------------------------------------------------------------------------- NYU
def test_nyu_mmseg_dataset(tmp_path):
    from mmcv.transforms import LoadImageFromFile
    from mmseg.datasets import NYUDataset
    from mmseg.datasets.transforms import LoadDepthAnnotation, PackSegInputs
    from pe_dense.toy import make_nyu
    summary = make_nyu(str(tmp_path), num_train=3, num_val=2, size='64x48', seed=0, stereo=1,
                       progress_bar=False)
    lo, hi = summary['splits']['test']['depth_mm_range']
    assert 300 <= lo < hi <= 10000
    assert summary['splits']['train']['images'] == 4
    ds = NYUDataset(data_root=str(tmp_path),
                    data_prefix=dict(img_path='images/test', depth_map_path='annotations/test'),
                    pipeline=[LoadImageFromFile(),
                              LoadDepthAnnotation(depth_rescale_factor=1e-3), PackSegInputs()])
    assert len(ds) == 2
    info = ds.get_data_info(0)
    scene = osp.basename(info['img_path']).rsplit('_', 1)[0]  # file names start with the scene
    assert info['category_id'] == list(ds.metainfo['classes']).index(scene)
    sample = ds[0]
    depth = sample['data_samples'].gt_depth_map.data.numpy()
    assert depth.shape == (1, 48, 64) and tuple(sample['inputs'].shape) == (3, 48, 64)
    assert depth.min() > 0.3 and depth.max() <= 10.0  # metres, all valid for rendered rooms
    assert depth.std() > 0.1  # real geometry, not a constant plane
    stereo = sorted((tmp_path / 'annotations' / 'train').glob('study_*.png'))
    assert len(stereo) == 1


def test_nyu_depth_matches_geometry():
    """Objects in front have smaller depth than the wall behind them; floor depth grows upward."""
    from pe_dense.toy.nyu import render_room
    rng = np.random.default_rng(0)
    img, depth = render_room(rng, (96, 72), 'kitchen')
    assert img.shape == (72, 96, 3) and img.dtype == np.uint8
    col = depth[:, 5]
    # down the left edge the floor gets closer (bottom rows nearer than the middle)
    assert col[-1] < col[len(col) // 2]
    assert np.isfinite(depth).all() and depth.max() <= 10.0


# ----------------------------------------------------------------------------- DAVIS
def test_davis_layout_and_palette(tmp_path):
    from PIL import Image
    from pe_dense.toy import davis_palette, make_davis
    s1 = make_davis(str(tmp_path / 'a'), num_train=1, num_val=2, size=(96, 64), frames=4,
                    seed=0, progress_bar=False)
    make_davis(str(tmp_path / 'b'), num_train=1, num_val=2, size=(96, 64), frames=4, seed=0,
               progress_bar=False)
    root = tmp_path / 'a'
    val = (root / 'ImageSets' / '2017' / 'val.txt').read_text().split()
    assert val == s1['splits']['val']['sequences'] and len(val) == 2
    assert (root / 'ImageSets' / '2017' / 'train.txt').read_text().split()
    pal = davis_palette()
    assert pal[3:6] == [128, 0, 0] and pal[6:9] == [0, 128, 0] and len(pal) == 768
    for seq in val:
        jpgs = sorted((root / 'JPEGImages' / '480p' / seq).glob('*.jpg'))
        pngs = sorted((root / 'Annotations' / '480p' / seq).glob('*.png'))
        assert [p.stem for p in jpgs] == [p.stem for p in pngs] == ['00000', '00001', '00002',
                                                                     '00003']
        first = Image.open(pngs[0])
        assert first.mode == 'P' and first.getpalette()[:9] == pal[:9]
        assert Image.open(jpgs[0]).size == (96, 64)
        ids0 = np.unique(np.array(first))
        assert ids0[0] == 0 and list(ids0[1:]) == list(range(1, len(ids0)))  # 0, 1..K
        for p in pngs[1:]:
            assert set(np.unique(np.array(Image.open(p)))) <= set(ids0.tolist())
        # objects move: the object masks change between first and last frame
        assert (np.array(first) != np.array(Image.open(pngs[-1]))).any()
        b = tmp_path / 'b' / 'Annotations' / '480p' / seq / '00002.png'
        assert _sha(b) == _sha(root / 'Annotations' / '480p' / seq / '00002.png')


# ----------------------------------------------------------------------------- images / SA-1B
def test_images_folder(tmp_path):
    from PIL import Image
    from pe_dense.toy import make_images
    s = make_images(str(tmp_path), num_train=4, num_val=1, size=48, layout='folder',
                    progress_bar=False)
    train = sorted((tmp_path / 'train').rglob('*.jpg'))
    assert len(train) == 4 and s['splits']['train']['images'] == 4
    assert any(p.parent != tmp_path / 'train' for p in train)  # nested sub-folders exist
    assert len(list((tmp_path / 'val').rglob('*.jpg'))) == 1
    assert Image.open(train[0]).size == (48, 48)


def test_images_sa1b(tmp_path):
    from pycocotools import mask as mask_util
    from pe_dense.toy import make_images
    make_images(str(tmp_path / 'a'), num_train=3, num_val=1, size=64, layout='sa1b', seed=4,
                progress_bar=False)
    make_images(str(tmp_path / 'b'), num_train=3, num_val=1, size=64, layout='sa1b', seed=4,
                progress_bar=False)
    shard = tmp_path / 'a' / 'sa_000000'
    jsons = sorted(shard.glob('sa_*.json'))
    assert len(jsons) == 3 and len(list(shard.glob('sa_*.jpg'))) == 3
    assert (tmp_path / 'a' / 'sa_000001').is_dir()
    ann_ids = []
    for js in jsons:
        rec = json.loads(js.read_text())
        im = rec['image']
        assert set(im) == {'image_id', 'width', 'height', 'file_name'}
        assert (shard / im['file_name']).is_file() and (im['width'], im['height']) == (64, 64)
        assert rec['annotations']
        union = np.zeros((64, 64), np.int32)
        for a in rec['annotations']:
            m = mask_util.decode(a['segmentation'])
            assert m.shape == (64, 64) and m.sum() == a['area'] > 0
            x, y = a['point_coords'][0]
            assert m[int(y), int(x)] == 1  # the point lies on its mask
            bx, by, bw, bh = a['bbox']
            assert bx >= 0 and by >= 0 and bx + bw <= 64 and by + bh <= 64
            assert 0 < a['predicted_iou'] <= 1 and 0 < a['stability_score'] <= 1
            assert a['crop_box'] == [0.0, 0.0, 64.0, 64.0]
            union += m
            ann_ids.append(a['id'])
        assert union.max() == 1  # masks do not overlap
    assert len(ann_ids) == len(set(ann_ids))
    rel = osp.join('sa_000000', 'sa_2.json')
    assert _sha(tmp_path / 'a' / rel) == _sha(tmp_path / 'b' / rel)


# ----------------------------------------------------------------------------- image-text
def test_imagetext(tmp_path):
    import csv
    import cv2
    from pe_dense.toy import make_imagetext
    s = make_imagetext(str(tmp_path), num_train=5, num_val=3, size=80, num_videos=1, frames=5,
                       progress_bar=False)
    classnames = json.loads((tmp_path / 'classnames.json').read_text())
    assert len(classnames) == s['classes'] == 16 and 'red circle' in classnames
    for split, n in (('train', 5), ('val', 3)):
        rows = [json.loads(l) for l in (tmp_path / f'{split}.jsonl').read_text().splitlines()]
        assert len(rows) == n
        for r in rows:
            assert (tmp_path / r['image']).is_file()
            color, shape = classnames[r['label']].split(' ')
            assert color in r['caption'] and shape in r['caption']
        if split == 'val':  # single group: caption is "<count> <colour> <shape>[s]"
            assert all(' and ' not in r['caption'] for r in rows)
        with open(tmp_path / f'{split}.csv', newline='') as f:
            table = list(csv.DictReader(f, delimiter='\t'))
        assert [(t['filepath'], t['title']) for t in table] == \
            [(r['image'], r['caption']) for r in rows]
    vids = [json.loads(l) for l in (tmp_path / 'videos.jsonl').read_text().splitlines()]
    assert len(vids) == 1
    assert vids[0]['caption'].split(' ')[-1] in ('left', 'right', 'up', 'down', 'still')
    cap = cv2.VideoCapture(str(tmp_path / vids[0]['video']))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    assert len(frames) == 5 and frames[0].shape == (80, 80, 3)


def test_imagetext_caption_counts():
    """Captions state how many shapes of each colour were drawn."""
    from pe_dense.toy.imagetext import _picture, caption_for
    from pe_dense.toy.pictures import PictureBank
    assert caption_for([(2, 'red', 'circle'), (1, 'blue', 'star')]) == \
        'two red circles and a blue star'
    rng = np.random.default_rng(1)
    img, groups, label = _picture(rng, PictureBank(), (96, 96), ['red circle', 'blue square'],
                                  1, 3)
    n, color, shape = groups[0]
    assert ['red circle', 'blue square'][label] == f'{color} {shape}'
    ref = {'red': (220, 30, 30), 'blue': (30, 70, 225)}[color]
    close = (np.abs(img.astype(int) - ref).sum(-1) < 90)
    from scipy import ndimage
    blobs, count = ndimage.label(ndimage.binary_opening(close, iterations=2))
    sizes = np.bincount(blobs.ravel())[1:]
    assert (sizes > 40).sum() == n


def test_imagetext_bad_color(tmp_path):
    from pe_dense.toy import make_imagetext
    with pytest.raises(ValueError, match='magenta'):
        make_imagetext(str(tmp_path), colors=('red', 'magenta'))


def test_imagetext_difficulty_options():
    """radius sets object size, background 'flat'/'blurred' remove the photo's edges, and
    max_groups bounds the groups per train picture."""
    from pe_dense.toy.imagetext import _picture
    from pe_dense.toy.pictures import PictureBank
    bank, classes = PictureBank(), ['red circle', 'blue square', 'green triangle']

    def edges(img):  # mean gradient magnitude away from the drawn shape's colour
        g = np.abs(np.diff(img.astype(float).mean(-1), axis=1))
        return float(np.median(g))

    sizes, grads = {}, {}
    for bg in ('picture', 'blurred', 'flat'):
        img, groups, _ = _picture(np.random.default_rng(3), bank, (96, 96), classes, 1, 1,
                                  (0.3, 0.35), bg)
        assert len(groups) == 1 and groups[0][0] == 1
        grads[bg] = edges(img)
        if bg == 'flat':  # corners away from the centred-ish shape share one colour
            corners = img[[0, 0, -1, -1], [0, -1, 0, -1]].astype(int)
            far = [c for c in corners if abs(c - corners).sum(-1).min() == 0]
            assert len(far) >= 2
    assert grads['flat'] <= grads['blurred'] <= grads['picture']
    for radius in ((0.08, 0.1), (0.3, 0.35)):
        img, groups, _ = _picture(np.random.default_rng(4), bank, (96, 96), ['red circle'], 1,
                                  1, radius, 'flat')
        sizes[radius] = int((np.abs(img.astype(int) - (220, 30, 30)).sum(-1) < 90).sum())
    area = lambda r: np.pi * (r * 96) ** 2  # noqa: E731
    assert area(0.08) * 0.7 < sizes[(0.08, 0.1)] < area(0.1) * 1.3
    assert area(0.3) * 0.7 < sizes[(0.3, 0.35)] < area(0.35) * 1.3
    for seed in range(10):
        _, groups, _ = _picture(np.random.default_rng(seed), bank, (96, 96), classes, 1, 3)
        assert len(groups) == 1


def test_imagetext_difficulty_cli_and_checks(tmp_path):
    from pe_dense.toy import make_imagetext
    summary = _run_cli('imagetext', '--out', str(tmp_path / 'cli'), '--num-train', '6',
                       '--num-val', '2', '--size', '48', '--num-videos', '1', '--frames', '2',
                       '--max-groups', '1', '--max-count', '1', '--radius', '0.2,0.3',
                       '--background', 'blurred', '--no-progress')
    assert summary['splits']['train']['images'] == 6
    rows = [json.loads(l) for l in (tmp_path / 'cli' / 'train.jsonl').read_text().splitlines()]
    assert all(' and ' not in r['caption'] and r['caption'].startswith('a ') for r in rows)
    with pytest.raises(ValueError, match='radius'):
        make_imagetext(str(tmp_path / 'a'), radius=(0.3, 0.2))
    with pytest.raises(ValueError, match='background'):
        make_imagetext(str(tmp_path / 'b'), background='noise')
    with pytest.raises(ValueError, match='max_groups'):
        make_imagetext(str(tmp_path / 'c'), max_groups=0)
    with pytest.raises(SystemExit, match='radius'):
        _run_cli('imagetext', '--out', str(tmp_path / 'd'), '--radius', '0.2', '--no-progress')


def test_coco_color_by_class_switch(tmp_path):
    """color_by_class ties a colour to each class; off, the same class comes in many colours."""
    from PIL import Image
    from pycocotools.coco import COCO

    def class_colors(out, **kw):
        make_coco(out, num_train=12, num_val=0, size=96, seed=0, classes=('circle',),
                  progress_bar=False, **kw)
        coco = COCO(osp.join(out, 'annotations', 'instances_train2017.json'))
        means = []
        for a in coco.loadAnns(coco.getAnnIds()):
            img = coco.loadImgs(a['image_id'])[0]
            rgb = np.array(Image.open(osp.join(out, 'train2017', img['file_name'])))
            means.append(rgb[coco.annToMask(a) > 0].mean(0))
        return np.array(means)

    tied = class_colors(str(tmp_path / 'tied'))
    free = class_colors(str(tmp_path / 'free'), color_by_class=False)
    assert tied.std(0).max() < 25 < free.std(0).max()
    with pytest.raises(ValueError, match='objects range'):
        make_coco(str(tmp_path / 'bad'), objects=(3, 1))
