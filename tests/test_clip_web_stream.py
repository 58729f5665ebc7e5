"""Streaming webdataset shards: split by rank and worker, nothing opened at construction,
bad members skipped and counted, bad shards named, resumable at a shard boundary."""
import io
import tarfile

import numpy as np
import pytest
from PIL import Image
from torch.utils.data import DataLoader

from pe_dense.datasets import WebImageTextStream
from pe_dense.datasets.image_text import ManifestError
from tests.fixtures.global_state import checkpoint_io  # noqa: F401  (fixture: resume as tools do)

PIPE = [dict(type='ClipLoadImage', on_missing='skip'), dict(type='ClipResize', scale=24),
        dict(type='PackClipInputs', meta_keys=('caption', 'label', 'shard_pos'))]


def _jpeg(value, size=(20, 12)):
    buf = io.BytesIO()
    Image.fromarray(np.full((size[1], size[0], 3), value, np.uint8)).save(buf, 'JPEG')
    return buf.getvalue()


def _write_shard(path, members):
    with tarfile.open(path, 'w') as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def _shards(folder, bad_member=None):
    """3 shards of 5 samples; ``bad_member`` (shard, key) gets undecodable image bytes."""
    keys = {}
    for s in range(3):
        members = []
        for i in range(5):
            key = f's{s}_{i:02d}'
            img = b'\xff\xd8 not a jpeg' if (s, key) == bad_member else _jpeg(10 * s + i)
            members += [(f'{key}.jpg', img), (f'{key}.txt', f'caption {key}'.encode())]
            keys[key] = s
        _write_shard(folder / f'shard-{s:03d}.tar', members)
    return keys


def _keys(batch_list):
    return [b['data_samples']['caption'].split()[1] for b in batch_list]


def _read(ds, workers):
    loader = DataLoader(ds, batch_size=None, num_workers=workers, collate_fn=lambda x: x)
    return [(b['data_samples']['caption'].split()[1]) for b in loader]


def test_ranks_and_workers_see_every_sample_exactly_once(tmp_path):
    pattern = str(tmp_path / 'shard-{000..002}.tar')
    # constructed before any shard exists: nothing is opened (or even looked at) here
    ranks = [WebImageTextStream(pattern, PIPE, rank=r, world_size=2, seed=3) for r in (0, 1)]
    keys = _shards(tmp_path)
    for epoch in (0, 1):
        seen = []
        for ds in ranks:
            ds.set_epoch(epoch)
            seen += _read(ds, workers=2)
        assert sorted(seen) == sorted(keys)  # exactly once over 2 ranks x 2 workers
    # epochs change the shard order (seeded), not the set
    assert ranks[0].shard_order(0) != ranks[0].shard_order(1)
    # the rank/worker split is by shard: a consumer reads whole shards, in order
    mine = ranks[1].my_shards(worker=0, num_workers=2)
    assert [p for p, _ in mine] == [1]


def test_a_corrupt_member_is_skipped_and_counted(tmp_path):
    keys = _shards(tmp_path, bad_member=(1, 's1_03'))
    ds = WebImageTextStream(str(tmp_path / 'shard-*.tar'), PIPE, shuffle_shards=False)
    seen = _read(ds, workers=0)
    assert sorted(seen) == sorted(k for k in keys if k != 's1_03')
    assert ds.skipped == 1 and ds.skipped_shards == 0
    ds_err = WebImageTextStream(str(tmp_path / 'shard-*.tar'),
                                [dict(type='ClipLoadImage', on_missing='error')],
                                shuffle_shards=False)
    with pytest.raises(FileNotFoundError, match=r'shard-001.tar:s1_03.jpg'):
        list(ds_err)


def test_missing_caption_and_bad_shards_are_named(tmp_path):
    _shards(tmp_path)
    _write_shard(tmp_path / 'shard-003.tar', [('x.jpg', _jpeg(1)), ('x.txt', b'  ')])
    (tmp_path / 'shard-004.tar').write_bytes(b'this is not a tar file at all' * 40)
    urls = [str(tmp_path / f'shard-{s:03d}.tar') for s in range(6)]  # 005 does not exist
    ds = WebImageTextStream(urls, PIPE, shuffle_shards=False)
    assert len(_read(ds, workers=0)) == 15
    assert ds.skipped == 1 and ds.skipped_shards == 2
    strict = WebImageTextStream(urls[3:4], PIPE, on_bad='error')
    with pytest.raises(ManifestError, match=r'shard-003.tar:x: empty or missing caption'):
        list(strict)
    strict = WebImageTextStream(urls[4:5], PIPE, on_bad='error')
    with pytest.raises(ManifestError, match=r'shard-004.tar: not a readable tar shard'):
        list(strict)
    strict = WebImageTextStream(urls[5:], PIPE, on_bad='error')
    with pytest.raises(ManifestError, match=r'shard-005.tar: cannot open shard'):
        list(strict)


def test_resume_at_a_shard_boundary(tmp_path):
    keys = _shards(tmp_path)
    full = WebImageTextStream(str(tmp_path / 'shard-*.tar'), PIPE, seed=5)
    full.set_epoch(2)
    order = [int(u[-7:-4]) for u in full.shard_order()]
    samples = list(full)
    assert [s['data_samples']['shard_pos'] for s in samples] == [0] * 5 + [1] * 5 + [2] * 5
    resumed = WebImageTextStream(str(tmp_path / 'shard-*.tar'), PIPE, seed=5, start_shard=1)
    resumed.set_epoch(2)
    assert sorted(_keys(list(resumed))) == sorted(k for k, s in keys.items() if s != order[0])


def test_video_frames_are_seeked_not_all_decoded(tmp_path, monkeypatch):
    import cv2

    from pe_dense.datasets.transforms import clip_transforms
    path = str(tmp_path / 'a.mp4')
    w = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'mp4v'), 8, (32, 24))
    for i in range(40):
        w.write(np.full((24, 32, 3), i * 6, np.uint8))
    w.release()
    reads, real = [], cv2.VideoCapture

    class Counting:
        def __init__(self, p):
            self.cap = real(p)

        def read(self):
            reads.append(1)
            return self.cap.read()

        def __getattr__(self, name):
            return getattr(self.cap, name)

    monkeypatch.setattr(clip_transforms.cv2, 'VideoCapture', Counting)
    out = clip_transforms.ClipLoadVideoFrames(num_frames=4)(dict(video_path=path))
    assert len(reads) == 4  # 4 decodes, not 40
    assert list(out['frame_inds']) == [5, 15, 25, 35]
    means = [f.mean() for f in out['imgs']]
    assert means == pytest.approx([30, 90, 150, 210], abs=4)  # the sampled frames themselves
    assert out['img_shape'] == (24, 32)


def test_resume_shard_of_readers():
    from pe_dense.engine.hooks.web_stream_resume import consumer_of, resume_shard
    # 7 shards, 2 ranks x 2 workers: reader (rank r, worker w) reads r + 2w, r + 2w + 4
    assert [consumer_of(p, 0, 2, 2) for p in range(7)] == [0, 2, 1, 3, 0, 2, 1]
    assert resume_shard([4, 1, 2, 3], 0, 7, 2, 2) == 1  # rank 0 worker 1 still in shard 1
    assert resume_shard([4, -1, 6, 5], 0, 7, 2, 2) == 2  # reader 1 not started: its first is 2
    assert resume_shard([-1, -1, -1, -1], 3, 7, 2, 2) == 3  # nothing trained since start 3
    assert resume_shard([5, -1, 6, -1], 4, 7, 2, 2) == 5  # readers 1, 3 have no shard from 4


@pytest.mark.parametrize('workers', [0, 2])
def test_checkpoint_stores_the_stream_position_and_resumes_there(tmp_path, workers,
                                                                 checkpoint_io):
    """Six iterations of 2 samples over 3 shards of 5 (fixed order): the checkpoint after
    iteration 3 (samples 0-5: shard 0 done, shard 1 begun) stores shard 1; resumed from it,
    iteration 4 trains on shard 1 from its first sample. With 2 workers each reader takes
    every other shard and the batches alternate between them."""
    import torch
    from mmengine.config import Config
    from mmengine.runner import Runner
    import tests.fixtures.stream_model  # noqa: F401  registers StreamRecorder
    keys = _shards(tmp_path)
    by_shard = {s: sorted(k for k, v in keys.items() if v == s) for s in range(3)}

    def cfg(name, iters, **extra):
        return Config(dict(
            model=dict(type='StreamRecorder'), work_dir=str(tmp_path / 'work'),
            experiment_name=f'{name}_{workers}_{tmp_path.name}',
            train_dataloader=dict(
                batch_size=2, num_workers=workers, sampler=None,
                collate_fn=dict(type='pseudo_collate'),
                dataset=dict(type='WebImageTextStream', shards=str(tmp_path / 'shard-*.tar'),
                             pipeline=PIPE, shuffle_shards=False, num_samples=15)),
            train_cfg=dict(type='IterBasedTrainLoop', max_iters=iters),
            optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
            default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=3,
                                               by_epoch=False),
                               logger=dict(type='LoggerHook', interval=1)),
            log_processor=dict(by_epoch=False),
            custom_hooks=[dict(type='WebStreamResumeHook')],
            default_scope='mmengine', randomness=dict(seed=0), log_level='WARNING', **extra))

    import pe_dense.engine  # noqa: F401  registers the hook
    import pe_dense.datasets  # noqa: F401
    first = Runner.from_cfg(cfg('first', 3))
    first.train()
    ckpt = torch.load(tmp_path / 'work' / 'iter_3.pth', weights_only=False)
    seen = first.model.seen
    if workers == 0:
        assert seen == by_shard[0] + by_shard[1][:1]
        assert ckpt['web_stream'] == dict(epoch=0, start_shard=1)
    else:  # worker 0 reads shards 0, 2; worker 1 shard 1; batches alternate 0, 1, 0
        assert seen == by_shard[0][:2] + by_shard[1][:2] + by_shard[0][2:4]
        assert ckpt['web_stream'] == dict(epoch=0, start_shard=0)
    resumed = Runner.from_cfg(cfg('resumed', 4, resume=True,
                                  load_from=str(tmp_path / 'work' / 'iter_3.pth')))
    resumed.train()
    start = ckpt['web_stream']['start_shard']
    assert resumed.model.seen == by_shard[start][:2]


@pytest.mark.slow
def test_two_ranks_store_and_resume_the_stream_position(tmp_path):
    """2 gloo processes over 4 shards of 5 (rank 0 reads shards 0 and 2, rank 1 shards 1 and 3):
    after 3 iterations of 2 samples each rank has begun its second shard, so the checkpoint
    stores shard 2; resumed in 2 processes, rank 0 starts shard 2 and rank 1 shard 3."""
    import json
    import torch
    from tests.test_gpu_distributed import _torchrun
    for s in range(4):
        _write_shard(tmp_path / f'shard-{s:03d}.tar',
                     [m for i in range(5) for m in ((f's{s}_{i:02d}.jpg', _jpeg(10 * s + i)),
                                                    (f's{s}_{i:02d}.txt', f'cap s{s}_{i:02d}'
                                                     .encode()))])
    body = ("model = dict(type='StreamRecorder', out_dir=OUT)\n"
            "train_dataloader = dict(batch_size=2, num_workers=0, sampler=None, "
            "collate_fn=dict(type='pseudo_collate'), "
            f"dataset=dict(type='WebImageTextStream', shards={str(tmp_path / 'shard-*.tar')!r}, "
            f"pipeline={PIPE!r}, shuffle_shards=False, num_samples=20))\n"
            "train_cfg = dict(type='IterBasedTrainLoop', max_iters=ITERS)\n"
            "optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.1))\n"
            "default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=3, "
            "by_epoch=False), logger=dict(type='LoggerHook', interval=1))\n"
            "log_processor = dict(by_epoch=False)\n"
            "custom_hooks = [dict(type='WebStreamResumeHook')]\n"
            "default_scope = 'mmengine'\nrandomness = dict(seed=0)\n")
    body = ("custom_imports = dict(imports=['pe_dense.engine', 'pe_dense.datasets', "
            "'tests.fixtures.stream_model'], allow_failed_imports=False)\n" + body)
    work = tmp_path / 'work'
    first = tmp_path / 'first.py'
    first.write_text(body.replace('OUT', repr(str(tmp_path / 'first'))).replace('ITERS', '3'))
    _torchrun(str(first), work, tmp_path / 'first.log')
    seen = [json.load(open(tmp_path / 'first' / f'rank{r}.json')) for r in (0, 1)]
    assert seen == [[f's0_{i:02d}' for i in range(5)] + ['s2_00'],
                    [f's1_{i:02d}' for i in range(5)] + ['s3_00']]
    ckpt = torch.load(work / 'iter_3.pth', weights_only=False)
    assert ckpt['web_stream'] == dict(epoch=0, start_shard=2)
    resumed = tmp_path / 'resumed.py'
    resumed.write_text(body.replace('OUT', repr(str(tmp_path / 'resumed')))
                       .replace('ITERS', '4'))
    _torchrun(str(resumed), work, tmp_path / 'resumed.log', 'resume=True',
              f'load_from={work / "iter_3.pth"}')
    seen = [json.load(open(tmp_path / 'resumed' / f'rank{r}.json')) for r in (0, 1)]
    assert seen == [['s2_00', 's2_01'], ['s3_00', 's3_01']]
