"""Stage-3 image+video finetuning: batches mix the two sources at the config's ratio, each batch
of one modality, every rank drawing the same modality; the real config loads both."""
import json

import cv2
import numpy as np
import pytest
from mmengine.config import Config
from mmengine.dataset import ConcatDataset, InfiniteSampler
from mmengine.registry import DATASETS
from mmengine.runner import Runner

import pe_dense.core  # noqa: F401  registers the CLIP parts
from pe_dense.datasets.samplers import ModalityMixBatchSampler

CONFIG = 'configs/core/pe_core_b16_video_ft.py'


def _jsonl(path, rows):
    path.write_text('\n'.join(json.dumps(r) for r in rows))


@pytest.fixture(scope='module')
def roots(tmp_path_factory):
    """5 non-square pictures and 3 short videos with captions."""
    root = tmp_path_factory.mktemp('mix')
    (root / 'img').mkdir()
    (root / 'vid').mkdir()
    rng = np.random.default_rng(0)
    for i in range(5):
        cv2.imwrite(str(root / 'img' / f'{i}.png'), rng.integers(0, 256, (30, 44, 3), np.uint8))
    _jsonl(root / 'img' / 'train.jsonl', [dict(image=f'{i}.png', caption=f'picture {i}')
                                          for i in range(5)])
    for i in range(3):
        w = cv2.VideoWriter(str(root / 'vid' / f'{i}.mp4'), cv2.VideoWriter_fourcc(*'mp4v'), 8,
                            (40, 24))
        for t in range(10):
            w.write(np.full((24, 40, 3), 20 * t + i, np.uint8))
        w.release()
    _jsonl(root / 'vid' / 'train.jsonl', [dict(video=f'{i}.mp4', caption=f'clip {i}')
                                          for i in range(3)])
    return root


def _concat(roots):
    return ConcatDataset([
        DATASETS.build(dict(type='ImageTextDataset', data_root=str(roots / 'img'),
                            ann_file='train.jsonl', pipeline=[])),
        DATASETS.build(dict(type='VideoTextDataset', data_root=str(roots / 'vid'),
                            ann_file='train.jsonl', pipeline=[]))])


def _sampler(ds, ratios, batch_size=1, rank=0, world_size=1):
    s = ModalityMixBatchSampler(InfiniteSampler(ds, seed=3), batch_size, ratios)
    s.rank, s.world_size = rank, world_size
    return s


def _take(sampler, n):
    it = iter(sampler)
    return [next(it) for _ in range(n)]


def test_config_ratio_is_the_share_of_image_batches():
    cfg = Config.fromfile(CONFIG)
    assert cfg.image_ratio == pytest.approx(50 / 72)
    bs = cfg.train_dataloader.batch_sampler
    assert bs.type == 'ModalityMixBatchSampler'
    assert bs.ratios == pytest.approx((cfg.image_ratio, 1 - cfg.image_ratio))
    types = [d['type'] for d in cfg.train_dataloader.dataset.datasets]
    assert types == ['ImageTextDataset', 'VideoTextDataset']


def test_each_batch_is_one_source_at_the_ratio(roots):
    ds = _concat(roots)
    batches = _take(_sampler(ds, (0.7, 0.3), batch_size=4), 3000)
    images = [all(i < 5 for i in b) for b in batches]
    videos = [all(5 <= i < 8 for i in b) for b in batches]
    assert all(a != b for a, b in zip(images, videos))  # never mixed within a batch
    assert abs(np.mean(images) - 0.7) < 0.035  # binomial sd 0.008
    only_images = _take(_sampler(ds, (1, 0)), 50)
    assert all(b[0] < 5 for b in only_images)


def test_sources_are_walked_in_permutations_and_split_between_ranks(roots):
    ds = _concat(roots)
    one = _take(_sampler(ds, (0.5, 0.5)), 400)
    first_images = [b[0] for b in one if b[0] < 5][:10]
    assert sorted(first_images[:5]) == [0, 1, 2, 3, 4]  # a full pass before any repeat
    assert sorted(first_images[5:]) == [0, 1, 2, 3, 4]
    r0 = _take(_sampler(ds, (0.5, 0.5), rank=0, world_size=2), 400)
    r1 = _take(_sampler(ds, (0.5, 0.5), rank=1, world_size=2), 400)
    assert [b[0] < 5 for b in r0] == [b[0] < 5 for b in r1]  # same modality on every rank
    img0 = [b[0] for b in r0 if b[0] < 5]
    img1 = [b[0] for b in r1 if b[0] < 5]
    # the one-rank permutation stream, dealt alternately to the two ranks
    stream = [b[0] for b in one if b[0] < 5]
    assert img0[:20] == stream[0:40:2] and img1[:20] == stream[1:40:2]


def test_bad_inputs_name_the_problem(roots):
    ds = _concat(roots)
    with pytest.raises(TypeError, match='ConcatDataset'):
        ModalityMixBatchSampler(InfiniteSampler(ds.datasets[0]), 2, (1,))
    with pytest.raises(ValueError, match='one non-negative weight per source'):
        ModalityMixBatchSampler(InfiniteSampler(ds), 2, (1, 1, 1))


def test_real_config_loads_image_and_video_batches(roots, tmp_path):
    cfg = Config.fromfile(CONFIG)
    loader = cfg.train_dataloader
    loader.update(batch_size=2, num_workers=0, persistent_workers=False)
    loader.dataset.datasets[0].data_root = str(roots / 'img')
    loader.dataset.datasets[1].data_root = str(roots / 'vid')
    dl = Runner.build_dataloader(loader.to_dict(), seed=0)
    shapes = set()
    for _, batch in zip(range(12), dl):
        shapes.add(tuple(batch['inputs'].shape))
    assert shapes == {(2, 3, 224, 224), (2, 8, 3, 224, 224)}
