"""Label propagation: the DINO protocol pieces, and tracking quality on synthetic videos."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pe_dense.evaluation.davis_metric import evaluate_sequence, summarize
from pe_dense.tracking.label_propagation import (LabelPropagator, neighbourhood_mask,
                                                 onehot_at_grid, propagate, upsample_labels)


def test_neighbourhood_mask_matches_loops():
    h, w, r = 4, 5, 1
    ref = torch.zeros(h, w, h, w, dtype=torch.bool)
    for i in range(h):
        for j in range(w):
            ref[i, j, max(i - r, 0):i + r + 1, max(j - r, 0):j + r + 1] = True
    assert torch.equal(neighbourhood_mask(h, w, r), ref.reshape(h * w, h * w))


def _dino_reference(target, sources, labels, topk, temperature, mask):
    """Straight transcription of the protocol: zero all but the top-k, normalise, mix."""
    m, n, _ = sources.shape
    t = F.normalize(target, dim=-1)
    s = F.normalize(sources, dim=-1)
    aff = torch.exp(torch.bmm(t[None].repeat(m, 1, 1), s.transpose(1, 2)) / temperature)
    aff = (aff * mask).transpose(2, 1).reshape(m * n, n)  # (sources, targets)
    kth = aff.topk(topk, dim=0).values.min(0).values
    aff = torch.where(aff < kth, torch.zeros_like(aff), aff)
    aff = aff / aff.sum(0, keepdim=True)
    segs = labels.permute(1, 0, 2).reshape(labels.shape[1], m * n)
    return segs @ aff


def test_propagate_matches_reference_protocol():
    g = torch.Generator().manual_seed(0)
    h, w, c, m, k = 5, 6, 16, 3, 4
    target = torch.randn(h * w, c, generator=g)
    sources = torch.randn(m, h * w, c, generator=g)
    labels = torch.rand(m, k, h * w, generator=g)
    mask = neighbourhood_mask(h, w, 2)
    out = propagate(target, sources, labels, topk=5, temperature=0.1, mask=mask)
    ref = _dino_reference(target, sources, labels, 5, 0.1, mask)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)


def test_neighbourhood_excludes_far_sources():
    # one source token identical to the target but 3 tokens away; radius 1 must ignore it
    h, w = 1, 5
    feats = torch.eye(5)
    target = feats[4:5].repeat(5, 1)
    sources = feats[None]
    labels = torch.eye(5)[None]  # label = source position
    out = propagate(target, sources, labels, topk=1, mask=neighbourhood_mask(h, w, 1))
    assert out[:, 0].argmax() != 4  # target 0 cannot see source 4
    out = propagate(target, sources, labels, topk=1, mask=None)
    assert out[:, 0].argmax() == 4


def test_onehot_and_upsample_roundtrip():
    lab = np.zeros((32, 48), np.uint8)
    lab[8:24, 16:40] = 2
    oh = onehot_at_grid(lab, 3, (4, 6))
    assert oh.shape == (3, 4, 6) and torch.all(oh.sum(0) == 1)
    assert oh[2, 1:3, 2:5].all() and oh[1].sum() == 0
    back = upsample_labels(oh, (32, 48))
    assert back.dtype == np.uint8 and (back == lab).mean() > 0.95


def _disc_video(rng, frames=10, size=(96, 128), n_obj=2):
    """Frames where object k is painted with colour k over a grey background, and labels."""
    h, w = size
    yy, xx = np.mgrid[:h, :w]
    colours = np.array([[128, 128, 128], [230, 30, 30], [30, 200, 40], [40, 60, 220]])
    # objects side by side, drifting mostly vertically, so they never occlude each other
    start = np.stack([rng.uniform(30, h - 30, n_obj), (np.arange(n_obj) + 0.5) * w / n_obj], 1)
    vel = rng.uniform([-2, -0.8], [2, 0.8], (n_obj, 2))
    radius = rng.uniform(16, 22, n_obj)
    imgs, labs = [], []
    for t in range(frames):
        lab = np.zeros((h, w), np.uint8)
        for k in range(n_obj):
            cy, cx = np.clip(start[k] + t * vel[k], 20, [h - 20, w - 20])
            lab[(yy - cy) ** 2 + (xx - cx) ** 2 <= radius[k] ** 2] = k + 1
        imgs.append(colours[lab].astype(np.uint8))
        labs.append(lab)
    return imgs, np.stack(labs)


class ColourFeatures:
    """Per-patch mean colour (object identity) plus Gaussian noise; counts its calls."""

    def __init__(self, patch=4, noise=0.1, seed=0):
        self.patch, self.noise, self.calls = patch, noise, 0
        self.gen = torch.Generator().manual_seed(seed)

    def __call__(self, frame):
        self.calls += 1
        x = torch.from_numpy(frame).permute(2, 0, 1).float()[None] / 255
        f = F.avg_pool2d(x, self.patch)[0].permute(1, 2, 0)
        return f + self.noise * torch.randn(f.shape, generator=self.gen)


def test_tracks_identity_features_on_toy_videos():
    rng = np.random.default_rng(0)
    results = {}
    for v in range(2):
        imgs, labs = _disc_video(rng)
        feats = ColourFeatures(noise=0.05, seed=v)
        prop = LabelPropagator(feats, n_last=7, topk=5, radius=12, temperature=0.1)
        preds = np.stack(list(prop(imgs, labs[0])))
        assert feats.calls == len(imgs)  # features computed once per frame
        np.testing.assert_array_equal(preds[0], labs[0])
        results[f'v{v}'] = evaluate_sequence(f'v{v}', labs, preds[1:-1])
    jf = summarize(results)['global']['J&F-Mean']
    assert jf >= 0.95, jf


def test_noise_only_features_do_not_track():
    rng = np.random.default_rng(1)
    imgs, labs = _disc_video(rng)
    gen = torch.Generator().manual_seed(0)
    prop = LabelPropagator(lambda f: torch.randn(24, 32, 8, generator=gen))
    preds = np.stack(list(prop(imgs, labs[0])))
    jf = summarize({'v': evaluate_sequence('v', labs, preds[1:-1])})['global']['J&F-Mean']
    assert jf < 0.8


def test_bad_inputs():
    feats = ColourFeatures()
    frames = [np.zeros((32, 32, 3), np.uint8), np.zeros((32, 40, 3), np.uint8)]
    with pytest.raises(ValueError, match=r'frame 1 is \(32, 40\), frame 0 is \(32, 32\)'):
        list(LabelPropagator(feats)(frames, np.zeros((32, 32), np.uint8)))
    with pytest.raises(ValueError, match='first-frame mask'):
        list(LabelPropagator(feats)(frames[:1], np.zeros((16, 32), np.uint8)))
    with pytest.raises(ValueError, match='no frames'):
        list(LabelPropagator(feats)([], np.zeros((16, 32), np.uint8)))
    with pytest.raises(ValueError, match='topk'):
        LabelPropagator(feats, topk=0)


@pytest.mark.parametrize('hard', [False, True])
def test_queue_holds_first_frame_and_last_n(monkeypatch, hard):
    import pe_dense.tracking.label_propagation as lp
    seen = []
    real = lp.propagate

    def spy(target, sources, labels, *args):
        seen.append(labels.clone())
        return real(target, sources, labels, *args)

    monkeypatch.setattr(lp, 'propagate', spy)
    imgs, labs = _disc_video(np.random.default_rng(2), frames=6)
    list(LabelPropagator(ColourFeatures(noise=0.3), n_last=2, hard_queue=hard)(imgs, labs[0]))
    assert [len(s) for s in seen] == [1, 2, 3, 3, 3]  # first frame + at most 2 previous
    first = onehot_at_grid(labs[0], 3, (24, 32)).flatten(1)
    assert all(torch.equal(s[0], first) for s in seen)
    queued = torch.cat([s[1:] for s in seen[1:]])
    is_onehot = bool(((queued == 0) | (queued == 1)).all())
    assert is_onehot == hard


def test_topk_spans_all_context_frames_when_a_frame_has_fewer_tokens():
    # 1 x 2 token grid, 4 context frames: the top-5 sources come from several frames (a
    # per-frame cap would keep only 2)
    g = torch.Generator().manual_seed(3)
    h, w, c, m, k = 1, 2, 8, 4, 3
    target = torch.randn(h * w, c, generator=g)
    sources = torch.randn(m, h * w, c, generator=g)
    labels = torch.rand(m, k, h * w, generator=g)
    mask = neighbourhood_mask(h, w, 1)
    out = propagate(target, sources, labels, topk=5, temperature=0.1, mask=mask)
    ref = _dino_reference(target, sources, labels, 5, 0.1, mask)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)


def test_void_pixels_of_the_first_mask_propagate_as_background():
    # 32 x 48 frames, 4-pixel patches: grey background, a red object (id 1) at rows 16-31,
    # columns 8-23, and a blue stripe (rows 0-7) annotated void (255) in the first mask.
    # Void is "not an object": the stripe must come out as background (0), never as 255.
    frame = np.full((32, 48, 3), 128, np.uint8)
    frame[16:32, 8:24] = (230, 30, 30)
    frame[0:8] = (40, 60, 220)
    first = np.zeros((32, 48), np.uint8)
    first[16:32, 8:24] = 1
    first[0:8] = 255
    preds = list(LabelPropagator(ColourFeatures(noise=0.0), n_last=1, topk=3, radius=2)(
        [frame] * 3, first))
    np.testing.assert_array_equal(preds[0], first)
    for pred in preds[1:]:
        assert (pred[0:8] == 0).all() and not (pred == 255).any()
        assert (pred[18:30, 10:22] == 1).all()  # the object's inside (corners are upsampled)
