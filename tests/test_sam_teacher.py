"""SAM 2.1 teacher: grid prompts, parity with SAM2ImagePredictor, checkpoint checks.

SAM runs at a reduced 128 px input (``image_size`` override) so that random-weight SAM 2.1-T
costs seconds on a shared CPU; the code path is the one used at 1024 px.
"""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pe_dense.models.teachers import SAM2Teacher, grid_points, maps_to_tokens

RES = 128


@pytest.fixture(scope='module')
def teacher():
    torch.manual_seed(0)
    return SAM2Teacher('t', checkpoint=None, grid=4, chunk=6, image_size=RES)


@pytest.fixture(scope='module')
def picture():
    from skimage import data
    img = data.astronaut()[::4, ::3]  # 128 x 171, not square
    return np.ascontiguousarray(img)


def test_grid_points_cover_image_in_sam_frame():
    pts = grid_points(32, 1024)
    assert pts.shape == (1024, 2)
    xs, ys = pts[:, 0].reshape(32, 32), pts[:, 1].reshape(32, 32)
    assert torch.allclose(xs[0], (torch.arange(32) + 0.5) * 32)  # centred cells, x inner
    assert torch.allclose(ys[:, 0], (torch.arange(32) + 0.5) * 32)  # y outer
    assert pts.min() == 16 and pts.max() == 1008
    # an image of any size: cell centres in image pixels map onto the same SAM-frame points
    from sam2.utils.transforms import SAM2Transforms
    tf = SAM2Transforms(resolution=1024, mask_threshold=0.0)
    h, w = 300, 500
    cy, cx = torch.meshgrid((torch.arange(32) + 0.5) * h / 32, (torch.arange(32) + 0.5) * w / 32,
                            indexing='ij')
    img_pts = torch.stack([cx.flatten(), cy.flatten()], -1)
    assert torch.allclose(tf.transform_coords(img_pts, normalize=True, orig_hw=(h, w)), pts,
                          atol=1e-4)


@pytest.fixture(scope='module')
def predictor_run(teacher, picture):
    """Our batched logits (both selections) and SAM2ImagePredictor's, one image embedding each."""
    from sam2.sam2_image_predictor import SAM2ImagePredictor
    x = torch.from_numpy(picture).permute(2, 0, 1)[None].float()
    feats = teacher.embed(x)
    pred = SAM2ImagePredictor(teacher.sam)
    pred._bb_feat_sizes = [(RES // 4, RES // 4), (RES // 8, RES // 8), (RES // 16, RES // 16)]
    pred.set_image(picture)
    h, w = picture.shape[:2]
    pts = teacher.points.numpy() / RES * np.array([w, h])
    out = dict(feats=feats, pred_feats=pred._features)
    for select in ('single', 'best_iou'):
        teacher.mask_select = select
        out[select] = teacher.mask_logits(feats, 0)  # 16 prompts in chunks of 6
        multi = select == 'best_iou'
        _, iou, low = pred.predict(point_coords=pts[:, None], point_labels=np.ones((16, 1)),
                                   multimask_output=multi, return_logits=True)
        out['pred_' + select] = low[np.arange(16), iou.argmax(1)] if multi else low[:, 0]
    teacher.mask_select = 'single'
    return out


@pytest.mark.parametrize('select', ['single', 'best_iou'])
def test_batched_targets_equal_predictor_low_res_logits(predictor_run, select):
    torch.testing.assert_close(predictor_run['feats']['image_embed'],
                               predictor_run['pred_feats']['image_embed'])
    ours = predictor_run[select]
    assert ours.shape == (16, RES // 4, RES // 4)
    np.testing.assert_allclose(ours.numpy(), predictor_run['pred_' + select], atol=1e-4, rtol=0)
    assert ours.abs().max() > 0  # not trivially zero


def test_forward_resamples_to_token_grid(teacher, picture, predictor_run):
    x = torch.from_numpy(picture).permute(2, 0, 1)[None].float()
    maps = teacher(x, (5, 7))
    assert maps.shape == (1, 16, 5, 7)
    ref = F.interpolate(predictor_run['single'][None], size=(5, 7), mode='bilinear',
                        align_corners=False, antialias=True)[0]
    torch.testing.assert_close(maps[0], ref)
    assert maps_to_tokens(maps).shape == (1, 35, 16)
    with pytest.raises(ValueError, match='RGB'):
        teacher(x[:, :1], (5, 7))


def test_checkpoint_of_another_size_is_refused(teacher, tmp_path):
    path = tmp_path / 'sam21_t.pt'
    torch.save({'model': teacher.sam.state_dict()}, path)
    loaded = SAM2Teacher('t', checkpoint=str(path), grid=2, image_size=RES)
    torch.testing.assert_close(loaded.sam.sam_mask_decoder.iou_token.weight,
                               teacher.sam.sam_mask_decoder.iou_token.weight)
    with pytest.raises(ValueError, match=r"sam21_t.pt does not match size 's'"):
        SAM2Teacher('s', checkpoint=str(path), grid=2, image_size=RES)
    with pytest.raises(FileNotFoundError, match='not found'):
        SAM2Teacher('t', checkpoint=str(tmp_path / 'nope.pt'), image_size=RES)
    with pytest.raises(ValueError, match='size must be one of'):
        SAM2Teacher('xl')
