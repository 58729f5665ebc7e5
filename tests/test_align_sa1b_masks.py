"""Opt-in SA-1B mask teacher: instance masks -> the SAM teacher's (grid^2, gh, gw) logit maps.

Expected maps are written out by hand on small non-square masks; the toy SA-1B set is checked
against pycocotools and the project's SA1BDataset, and the aligner's loss runs on its targets.
"""
import json
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS
from pycocotools import mask as mask_util

import pe_dense.align  # noqa: F401  registers SA1BDataset, LoadSA1BMaskTargets, SpatialAligner
from pe_dense.datasets import SA1BDataset
from pe_dense.datasets.transforms.align_transforms import (AlignRandomFlip, AlignResize,
                                                           LoadAlignImage, PackAlignInputs)
from pe_dense.models.teachers.sa1b_masks import (LoadSA1BMaskTargets, mask_to_logits,
                                                 pick_masks, prompt_pixels, read_sa1b_masks,
                                                 sa1b_mask_logits)
from pe_dense.models.teachers.sam_targets import grid_points
from pe_dense.toy import make_toy

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
H, W = 4, 6  # non-square masks; a 2x2 prompt grid hits pixels (1, 1) (1, 4) (3, 1) (3, 4)


def _masks():
    a = np.zeros((H, W), bool)
    a[:2, :3] = True             # top-left block: holds prompt 0 only
    b = np.zeros((H, W), bool)
    b[:, :3] = True              # left half: holds prompts 0 and 2, contains a
    c = np.zeros((H, W), bool)
    c[1, 4] = True               # one pixel under prompt 1
    return np.stack([a, b, c])


def test_prompt_pixels_follow_the_sam_grid():
    rows, cols = prompt_pixels(2, (H, W))
    assert rows.tolist() == [1, 1, 3, 3] and cols.tolist() == [1, 4, 1, 4]
    # same cell centres as the SAM teacher's points, scaled from its square frame to (H, W)
    pts = grid_points(2, 1024).numpy() / 1024 * np.array([W, H])
    assert np.floor(pts[:, 1]).tolist() == rows.tolist()
    assert np.floor(pts[:, 0]).tolist() == cols.tolist()


def test_pick_best_iou_then_smallest():
    m = _masks()
    assert pick_masks(m, [0.90, 0.95, 0.5], 2).tolist() == [1, 2, 1, -1]
    assert pick_masks(m, [0.95, 0.90, 0.5], 2).tolist() == [0, 2, 1, -1]
    assert pick_masks(m, [0.90, 0.90, 0.5], 2).tolist() == [0, 2, 1, -1]  # tie: smaller
    assert pick_masks(m, [0.90, 0.95, 0.5], 2, select='smallest').tolist() == [0, 2, 1, -1]
    assert pick_masks(m[:0], [], 2).tolist() == [-1, -1, -1, -1]
    assert sa1b_mask_logits([], [], 2, (1, 3)).tolist() == [[[-32.0] * 3]] * 4


def test_maps_on_the_mask_grid_by_hand():
    c = 32.0
    out = sa1b_mask_logits(_masks(), [0.90, 0.95, 0.5], grid=2, grid_hw=(H, W))
    assert out.shape == (4, H, W) and out.dtype == torch.float32
    left = torch.tensor([[c, c, c, -c, -c, -c]] * H)
    dot = torch.full((H, W), -c)
    dot[1, 4] = c
    expected = torch.stack([left, dot, left, torch.full((H, W), -c)])
    torch.testing.assert_close(out, expected, rtol=0, atol=0)


def test_signed_distance_logits_by_hand():
    m = np.zeros((3, 5), bool)
    m[:, :2] = True
    d = mask_to_logits(m, 'distance', margin=2.0, scale=1.0)
    # inside: distance to the first outside pixel centre minus half a pixel; outside: negative
    assert d[0].tolist() == [1.5, 0.5, -0.5, -1.5, -2.0]
    assert (d == d[0]).all() and d.dtype == np.float32
    assert mask_to_logits(m, 'margin', margin=3.0)[0].tolist() == [3, 3, -3, -3, -3]


def test_resampled_to_the_token_grid():
    masks = np.zeros((1, 8, 12), bool)
    masks[0, :, :6] = True  # left half; the 2x2 grid's prompts 0 and 2 hit it
    out = sa1b_mask_logits(masks, [0.9], grid=2, grid_hw=(2, 3), margin=1.0)
    assert out.shape == (4, 2, 3)
    # each token column averages 4 mask columns (antialiased): left all-in, right all-out,
    # middle half in and half out with mirror-symmetric weights -> exactly 0
    torch.testing.assert_close(out[0], torch.tensor([[1.0, 0.0, -1.0]] * 2), rtol=0, atol=1e-6)
    torch.testing.assert_close(out[1], torch.full((2, 3), -1.0))
    assert torch.equal(out[0], out[2]) and torch.equal(out[1], out[3])


def test_bad_input_is_named(tmp_path):
    with pytest.raises(ValueError, match='3 masks but 2 predicted_iou'):
        sa1b_mask_logits(_masks(), [0.9, 0.8], 2, (2, 2))
    with pytest.raises(ValueError, match='margin'):
        sa1b_mask_logits(_masks(), [0.9, 0.8, 0.7], 2, (2, 2), margin=40)
    p = tmp_path / 'sa_1.json'
    rle = mask_util.encode(np.asfortranarray(np.ones((4, 5), np.uint8)))
    seg = dict(size=[4, 5], counts=rle['counts'].decode())
    image = dict(height=4, width=6, file_name='sa_1.jpg')
    p.write_text(json.dumps(dict(image=image, annotations=[
        dict(segmentation=seg, predicted_iou=0.9)])))
    with pytest.raises(ValueError, match=r'sa_1.json: annotation 0 segmentation size'):
        read_sa1b_masks(str(p))
    p.write_text(json.dumps(dict(image=dict(height=4, width=5, file_name='sa_1.jpg'),
                                 annotations=[dict(segmentation=seg)])))
    with pytest.raises(ValueError, match=r'sa_1.json: annotation 0 lacks "predicted_iou"'):
        read_sa1b_masks(str(p))
    p.write_text(json.dumps(dict(image=dict(height=4, width=5, file_name='sa_1.jpg'))))
    with pytest.raises(ValueError, match=r'sa_1.json has no "annotations" list'):
        read_sa1b_masks(str(p))
    p.write_text('{"image": ')
    with pytest.raises(ValueError, match=r'cannot read .*sa_1.json'):
        read_sa1b_masks(str(p))
    p.write_text(json.dumps(dict(annotations=[])))
    with pytest.raises(ValueError, match=r'sa_1.json has no "image" record'):
        read_sa1b_masks(str(p))


@pytest.fixture(scope='module')
def toy(tmp_path_factory):
    out = tmp_path_factory.mktemp('sa1b_masks') / 'toy_sa1b'
    summary = make_toy('sa1b', str(out), num_train=4, num_val=1, size='80x48', seed=3,
                       progress_bar=False)
    assert summary['kind'] == 'sa1b'
    return out


def test_toy_sa1b_round_trips(toy):
    ds = SA1BDataset(data_root=str(toy), data_prefix=dict(img_path=str(toy / 'sa_000000')))
    assert len(ds) == 4
    info = ds.get_data_info(0)
    assert (info['height'], info['width']) == (48, 80)
    assert info['ann_path'] == osp.splitext(info['img_path'])[0] + '.json'
    rec = json.load(open(info['ann_path']))
    assert set(rec['image']) == {'image_id', 'width', 'height', 'file_name'}
    keys = {'id', 'segmentation', 'area', 'bbox', 'predicted_iou', 'stability_score',
            'point_coords', 'crop_box'}
    lazy, ious = read_sa1b_masks(info['ann_path'])
    masks = np.stack([lazy[i] for i in range(len(lazy))])
    assert masks.shape == (len(rec['annotations']), 48, 80)
    for a, m in zip(rec['annotations'], masks):
        assert set(a) == keys
        dec = mask_util.decode(a['segmentation'])
        assert dec.shape == (48, 80) and np.array_equal(dec.astype(bool), m)
        assert int(mask_util.area(a['segmentation'])) == a['area'] == int(m.sum())
        assert mask_util.toBbox(a['segmentation']).tolist() == a['bbox']
    assert ious.tolist() == [a['predicted_iou'] for a in rec['annotations']]
    assert LoadAlignImage()(dict(info))['img'].shape == (48, 80, 3)


def test_transform_equals_function_and_flips(toy):
    ds = SA1BDataset(data_root=str(toy), data_prefix=dict(img_path='sa_000000'))
    info = ds.get_data_info(1)
    masks, ious = read_sa1b_masks(info['ann_path'])
    expected = sa1b_mask_logits(masks, ious, 4, (3, 5))
    res = LoadAlignImage()(dict(info))
    res = AlignResize(size=(48, 80))(res)
    res = LoadSA1BMaskTargets(grid=4, grid_hw=(3, 5))(res)
    torch.testing.assert_close(res['sam_targets'], expected, rtol=0, atol=0)
    # json found from the image path too (a dataset that does not set ann_path)
    alone = LoadSA1BMaskTargets(grid=4, grid_hw=(3, 5))(dict(img_path=info['img_path']))
    assert torch.equal(alone['sam_targets'], expected)
    packed = PackAlignInputs()(AlignRandomFlip(prob=1.0, seed=0)(res))
    assert torch.equal(packed['data_samples']['sam_targets'], expected.flip(-1))


def test_toy_config_loss_runs_on_mask_targets(toy):
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'align', 'toy_align_sa1b_masks.py'))
    assert cfg.model.sam_teacher is None
    ds_cfg = cfg.train_dataloader.dataset
    ds_cfg.data_root = str(toy)
    from mmengine.registry import DATASETS
    ds = DATASETS.build(ds_cfg)
    batch = [ds[i] for i in range(2)]
    images = torch.stack([b['inputs'] for b in batch])
    samples = [b['data_samples'] for b in batch]
    assert images.shape == (2, 3, 128, 128)
    assert samples[0]['sam_targets'].shape == (64, 8, 8)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    assert model.sam_teacher is None  # targets come from the masks, not from SAM
    losses = model.loss(images, samples)
    assert torch.isfinite(losses['loss_sam']) and losses['loss_sam'] > 0
    losses['loss_sam'].backward()
    grads = [p.grad for p in model.student.parameters() if p.grad is not None]
    assert grads and sum(g.abs().sum() for g in grads) > 0
    # the loss changes when the mask relations change (they are really consumed)
    shuffled = [dict(s, sam_targets=s['sam_targets'].roll(3, dims=-1)) for s in samples]
    assert not torch.isclose(model.loss(images, shuffled)['loss_sam'], losses['loss_sam'])


def test_make_toy_data_cli_sa1b(tmp_path, capsys):
    import runpy
    main = runpy.run_path(osp.join(ROOT, 'tools', 'make_toy_data.py'))['main']
    main(['sa1b', '--out', str(tmp_path), '--num-train', '1', '--num-val', '0', '--size',
          '40x24', '--seed', '1', '--no-progress'])
    assert json.loads(capsys.readouterr().out)['splits']['train']['images'] == 1
    rec = json.load(open(tmp_path / 'sa_000000' / 'sa_1.json'))
    assert (rec['image']['width'], rec['image']['height']) == (40, 24)
    assert all(a['segmentation']['size'] == [24, 40] for a in rec['annotations'])
