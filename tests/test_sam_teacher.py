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


@pytest.mark.parametrize('size', ['t', 's', 'b+', 'l'])
def test_factorised_decoder_equals_sam2_mask_decoder(size):
    """All four mask logits maps and the IoU of the factorised decoder equal sam2's
    ``MaskDecoder.predict_masks`` for every SAM 2.1 size (random weights, 128 px input, random
    image features), also with large logits (hypernetwork scaled up) and tiled upscaling."""
    import copy
    from pe_dense.models.teachers import build_sam21
    from pe_dense.models.teachers.sam_fast_decoder import FactorisedMaskDecoder
    torch.manual_seed(1)
    sam = build_sam21(size, image_size=RES)
    dec = sam.sam_mask_decoder
    for mlp in dec.output_hypernetworks_mlps:  # logits of tens, as trained SAM gives
        mlp.layers[-1].weight.data *= 30
    h = RES // 16
    embed = torch.randn(1, 256, h, h) * 2
    high = [torch.randn(1, 32, 4 * h, 4 * h), torch.randn(1, 64, 2 * h, 2 * h)]
    pts = torch.rand(7, 1, 2) * RES
    sparse, dense = sam.sam_prompt_encoder(
        points=(pts, torch.ones(7, 1, dtype=torch.int)), boxes=None, masks=None)
    with torch.no_grad():
        ref, ref_iou, _, _ = dec.predict_masks(embed, sam.sam_prompt_encoder.get_dense_pe(),
                                               sparse, dense, True, high)
        fd = FactorisedMaskDecoder(sam)
        fd.tile = 3 * h  # 3 grid rows per step: tiles and a partial last tile
        masks, iou = fd(fd.prepare(embed, high), sparse)
    assert masks.shape == ref.shape == (7, 4, 4 * h, 4 * h)
    assert ref.abs().max() > 10
    torch.testing.assert_close(masks, ref, atol=1e-4, rtol=0)
    torch.testing.assert_close(iou, ref_iou, atol=1e-5, rtol=0)
    with pytest.raises(NotImplementedError):
        bad = copy.deepcopy(sam)
        bad.sam_mask_decoder.transformer.depth = 3
        FactorisedMaskDecoder(bad)


def test_sam2_decoder_option_matches_factorised(teacher, predictor_run):
    """``decoder='sam2'`` (sam2's MaskDecoder on prompt batches) gives the same targets."""
    teacher.decoder = 'sam2'
    try:
        for select in ('single', 'best_iou'):
            teacher.mask_select = select
            torch.testing.assert_close(teacher.mask_logits(predictor_run['feats'], 0),
                                       predictor_run[select], atol=1e-4, rtol=0)
    finally:
        teacher.decoder, teacher.mask_select = 'factorised', 'single'
    with pytest.raises(ValueError, match='decoder must be'):
        SAM2Teacher('t', grid=2, image_size=RES, decoder='fast')


def test_resampling_to_token_grid_reads_every_low_res_pixel():
    """Why the upscaling runs on all 256x256 low-res pixels: the antialiased resampling to a
    32x32 token grid (triangle filter 16 px wide at stride 8) depends on every one of them."""
    from pe_dense.models.teachers import resample_logits
    x = torch.zeros(1, 256, 256, requires_grad=True)
    resample_logits(x, (32, 32)).sum().backward()
    assert (x.grad > 0).all()
    y = torch.zeros(1, 256, 256, requires_grad=True)
    resample_logits(y, (32, 32))[0, 0, 0].backward()  # one token: a 12x12 corner footprint
    assert (y.grad[0] > 0).sum() == 12 * 12


def _tiny_decoder_inputs(n_prompts=5):
    from pe_dense.models.teachers import build_sam21
    torch.manual_seed(2)
    sam = build_sam21('t', image_size=RES)
    h = RES // 16
    embed = torch.randn(1, 256, h, h) * 2
    high = [torch.randn(1, 32, 4 * h, 4 * h), torch.randn(1, 64, 2 * h, 2 * h)]
    pts = torch.rand(n_prompts, 1, 2) * RES
    sparse, _ = sam.sam_prompt_encoder(
        points=(pts, torch.ones(n_prompts, 1, dtype=torch.int)), boxes=None, masks=None)
    return sam, embed, high, sparse


@pytest.mark.slow
def test_compiled_factorised_decoder_equals_eager():
    """``compile=True`` (inductor on the attention part) gives the eager numbers, really compiled
    (no silent fallback). One chunk size only: each one is a compilation (~1-2 min cold)."""
    from pe_dense.models.teachers.sam_fast_decoder import FactorisedMaskDecoder
    sam, embed, high, sparse = _tiny_decoder_inputs()
    with torch.no_grad():
        eager = FactorisedMaskDecoder(sam)
        comp = FactorisedMaskDecoder(sam, compile=True)
        p = eager.prepare(embed, high)
        masks, iou = comp(p, sparse)
        ref_masks, ref_iou = eager(p, sparse)
    assert comp.compile and comp._compiled is not None  # no fallback happened
    assert ref_masks.abs().max() > 0
    torch.testing.assert_close(masks, ref_masks, atol=1e-4, rtol=0)
    torch.testing.assert_close(iou, ref_iou, atol=1e-5, rtol=0)


def test_compile_failure_falls_back_to_eager(monkeypatch):
    """When compilation fails (e.g. no C++ compiler) the decoder warns and runs eager."""
    from pe_dense.models.teachers.sam_fast_decoder import FactorisedMaskDecoder
    sam, embed, high, sparse = _tiny_decoder_inputs(3)

    def broken(fn, **kwargs):
        def run(*args):
            raise RuntimeError('no compiler')
        return run

    monkeypatch.setattr(torch, 'compile', broken)
    with torch.no_grad():
        fd = FactorisedMaskDecoder(sam, compile=True)
        p = fd.prepare(embed, high)
        with pytest.warns(UserWarning, match='no compiler'):
            masks, iou = fd(p, sparse)
        assert not fd.compile
        ref_masks, ref_iou = FactorisedMaskDecoder(sam)(p, sparse)
    torch.testing.assert_close(masks, ref_masks, atol=0, rtol=0)
    torch.testing.assert_close(iou, ref_iou, atol=0, rtol=0)
    assert SAM2Teacher('t', grid=2, image_size=RES, compile=True)._factorised.compile
