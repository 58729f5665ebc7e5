"""Cached and online SAM targets are computed from the same picture (the aligned, square-resized
training input; flipped samples as the flipped map of the unflipped picture), so swapping a
cache in leaves the targets and the loss unchanged."""
import json
import os.path as osp
import runpy
import sys

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import Compose, pseudo_collate
from mmengine.registry import DATASETS, MODELS

import pe_dense.align  # noqa: F401  registers the alignment parts
from pe_dense.datasets import read_rgb

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    """Four non-square pictures, a fixed random SAM 2.1-T at 64 px (2x2 prompts), the toy config
    (128 px student, 8x8 tokens) pointed at them, and the cache written by the tool."""
    tmp = tmp_path_factory.mktemp('sam_cache')
    rng = np.random.default_rng(0)
    (tmp / 'imgs' / 'train').mkdir(parents=True)
    for i in range(4):
        h, w = 60 + 10 * i, 90
        img = cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), (9, 9), 3)
        cv2.rectangle(img, (5 + 7 * i, 10), (40 + 5 * i, h - 12), (250, 40, 20), -1)
        cv2.imwrite(str(tmp / 'imgs' / 'train' / f'{i}.png'), img)
    from pe_dense.models.teachers import SAM2Teacher
    torch.manual_seed(0)
    sam_ckpt = tmp / 'sam_t.pt'
    sam = SAM2Teacher('t', grid=2, image_size=64).sam
    for mlp in sam.sam_mask_decoder.output_hypernetworks_mlps:  # logits of tens, as trained SAM
        mlp.layers[-1].weight.data *= 30
    torch.save({'model': sam.state_dict()}, sam_ckpt)
    cfg_path = tmp / 'cfg.py'
    cfg_path.write_text(
        f"_base_ = ['{ROOT}/configs/align/toy_align_tiny.py']\n"
        f"sam_cache = dict(root='{tmp}/cache', grid_hw=(8, 8))\n"
        f"model = dict(sam_teacher=dict(grid=2, image_size=64, checkpoint='{sam_ckpt}'))\n"
        f"train_dataloader = dict(dataset=dict(data_root='{tmp}/imgs'))\n"
        f"train_pipeline = [dict(type='LoadAlignImage'), dict(type='AlignResize', size=128),\n"
        f"    dict(type='LoadSAMTargets', cache_root='{tmp}/cache'),\n"
        f"    dict(type='AlignRandomFlip', prob=0.5), dict(type='PackAlignInputs')]\n"
        f"train_dataloader['dataset']['pipeline'] = train_pipeline\n")
    old = sys.argv
    sys.argv = ['cache_sam_targets.py', str(cfg_path), '--no-progress']
    try:
        runpy.run_path(osp.join(ROOT, 'tools', 'cache_sam_targets.py'), run_name='__main__')
    finally:
        sys.argv = old
    cfg = Config.fromfile(str(cfg_path))
    torch.manual_seed(1)
    model = MODELS.build(cfg.model)
    model.sam_teacher.sam.load_state_dict(torch.load(sam_ckpt, weights_only=True)['model'])
    return cfg, model, tmp


def _batch(cfg, cached: bool):
    """The four samples through the train pipeline (with or without LoadSAMTargets), flips
    drawn from one seed so both passes flip the same samples."""
    steps = [t for t in cfg.train_dataloader.dataset.pipeline
             if cached or t['type'] != 'LoadSAMTargets']
    ds = DATASETS.build(dict(cfg.train_dataloader.dataset, pipeline=steps))
    np.random.seed(3)
    data = pseudo_collate([ds[i] for i in range(len(ds))])
    return model_inputs(data), data['data_samples']


def model_inputs(data):
    return torch.stack(data['inputs']).float()


@pytest.mark.slow
def test_cached_and_online_targets_and_losses_agree(setup):
    cfg, model, _ = setup
    images, cached_samples = _batch(cfg, cached=True)
    images_online, online_samples = _batch(cfg, cached=False)
    assert torch.equal(images, images_online)
    flips = online_samples['flip']  # pseudo_collate, as the config's loader: dict of lists
    assert any(flips) and not all(flips)  # both kinds of sample are checked
    assert flips == cached_samples['flip'] and 'sam_targets' not in online_samples
    hw = (8, 8)
    with torch.no_grad():
        from_cache = model.sam_tokens(images, cached_samples, hw)
        online = model.sam_tokens(images, online_samples, hw)
    assert online.abs().max() > 5  # logits of SAM's scale, not near-zero noise
    # the cache stores fp16: equal up to its rounding (2^-11 relative)
    assert torch.allclose(from_cache, online, rtol=1e-3, atol=1e-3), \
        (from_cache - online).abs().max()
    losses = []
    for samples in (cached_samples, online_samples):
        torch.manual_seed(5)  # same token mask
        with torch.no_grad():
            losses.append(model.loss(images, samples))
    assert torch.equal(losses[0]['loss_cos'], losses[1]['loss_cos'])
    assert torch.allclose(losses[0]['loss_sam'], losses[1]['loss_sam'], rtol=1e-3, atol=1e-6)


@pytest.mark.slow
def test_the_raw_picture_would_give_other_targets(setup):
    """What the tool computed before (SAM on the source picture, not the 128 px square input)
    differs far beyond the fp16 rounding: the check above can fail. (SAM resizes both to its
    input size, so only the double resampling differs: measured 0.07 on logits of ~1, 50x the
    tolerance above.)"""
    cfg, model, tmp = setup
    images, cached_samples = _batch(cfg, cached=True)
    i = cached_samples['flip'].index(False)
    raw = read_rgb(cached_samples['img_path'][i])
    with torch.no_grad():
        from_raw = model.sam_teacher(torch.from_numpy(raw).permute(2, 0, 1)[None].float(), (8, 8))
    cached = cached_samples['sam_targets'][i]
    assert (from_raw[0] - cached).abs().max() > 0.03


@pytest.mark.slow
def test_cache_records_the_input_steps_and_refuses_random_ones(setup, tmp_path):
    cfg, _, tmp = setup
    meta = json.loads((tmp / 'cache' / 'cache_meta.json').read_text())
    assert [t['type'] for t in meta['input']] == ['LoadAlignImage', 'AlignResize']
    sys.path.insert(0, osp.join(ROOT, 'tools'))
    try:
        from cache_sam_targets import aligned_input_steps
    finally:
        sys.path.pop(0)
    bad = [dict(type='LoadAlignImage'), dict(type='AlignRandomFlip'),
           dict(type='LoadSAMTargets', cache_root='x')]
    with pytest.raises(ValueError, match='AlignRandomFlip'):
        aligned_input_steps(bad, 'cfg.py')
    with pytest.raises(KeyError, match='no LoadSAMTargets'):
        aligned_input_steps(bad[:2], 'cfg.py')
    assert [type(t).__name__ for t in Compose(meta['input']).transforms] == \
        [step['type'] for step in meta['input']]
