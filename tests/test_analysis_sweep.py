"""Layer sweep: toy PE end to end with the cache, probe agreement, and an oracle layer."""
import hashlib
import json
import os.path as osp

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pe_dense.analysis import probes
from pe_dense.analysis.feature_cache import (FeatureCache, FeatureSource, PESource, read_rgb,
                                             to_tensor)
from pe_dense.analysis.layer_sweep import best_layer, run_sweep, sweep_layers, write_report
from pe_dense.analysis.tasks import build_task
from pe_dense.models.backbones import PE
from pe_dense.toy import make_toy

TINY = dict(patch_size=16, width=48, depth=4, heads=2, mlp_dim=96, cls_token=True, pool=None,
            out_dim=None, layer_scale=None, ln_post=False, img_size=64)
SIZE = 64


@pytest.fixture(scope='module')
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp('toy')
    spec = dict(
        segmentation=('ade20k', dict(num_train=6, num_val=3, size=96)),
        depth=('nyu', dict(num_train=6, num_val=3, size='96x72')),
        tracking=('davis', dict(num_train=1, num_val=2, frames=5, size='120x68')),
        classification=('imagetext', dict(num_train=16, num_val=8, num_videos=0,
                                          classes=('circle', 'square'), colors=('red', 'blue'))))
    for task, (kind, kw) in spec.items():
        make_toy(kind, str(root / kind), seed=0, progress_bar=False, **kw)
    return {task: str(root / kind) for task, (kind, _) in spec.items()}


def tasks_for(toy, size=SIZE):
    return [build_task(k, root, size=size) for k, root in toy.items()]


def tiny_source():
    torch.manual_seed(0)
    return PESource(PE(arch=TINY, frozen=True), 'tiny')


def test_sweep_caches_and_agrees_with_each_probe_alone(toy, tmp_path):
    source, cache = tiny_source(), FeatureCache(str(tmp_path / 'cache'), progress=False)
    tasks = tasks_for(toy)
    report = run_sweep(source, tasks, cache, range(4), progress=False)
    calls = source.forward_calls
    assert calls > 0 and cache.misses > 0 and cache.hits == 0
    # second run: every layer of every image list is a cache hit, the model never runs
    cache2 = FeatureCache(str(tmp_path / 'cache'), progress=False)
    again = run_sweep(source, tasks, cache2, range(4), progress=False)
    assert source.forward_calls == calls
    assert cache2.misses == 0 and cache2.hits == cache.misses
    assert again['tasks'] == report['tasks']
    assert set(report['tasks']) == {'segmentation', 'depth', 'tracking', 'classification'}

    # each probe alone, on features extracted without the cache, at one layer
    layer = 2

    def feats(paths, size):
        maps = []
        for s in range(0, len(paths), cache.batch_size):
            x = torch.stack([to_tensor(read_rgb(p), size, source.mean, source.std)
                             for p in paths[s:s + cache.batch_size]])
            maps.append(source.extract(x, [layer])[0].numpy().astype(np.float16))
        return np.concatenate(maps)

    seg, depth, track, cls = tasks
    sq = (SIZE, SIZE)
    alone = dict(
        segmentation=probes.segmentation_miou(
            feats(seg.data['training'][0], sq), seg.labels('training'),
            feats(seg.data['validation'][0], sq), seg.labels('validation'), 150),
        depth=probes.depth_rmse(feats(depth.data['train'][0], sq), depth.depths('train'),
                                feats(depth.data['test'][0], sq), depth.depths('test')),
        classification=probes.knn_accuracy(
            feats(cls.data['train'][0], sq), cls.data['train'][1],
            feats(cls.data['val'][0], sq), cls.data['val'][1], k=20),
        tracking=probes.propagation_jf(
            [(s.name, feats(s.images, track.groups(16)[s.name][1]),
              track.dataset.load_annotations(s)) for s in track.sequences]))
    for name, value in alone.items():
        assert report['tasks'][name]['scores'][str(layer)] == pytest.approx(value, abs=1e-9)
    rep = write_report(report, str(tmp_path / 'out'))
    assert json.load(open(rep['json']))['tasks']['depth']['higher_is_better'] is False
    assert osp.getsize(rep['plot']) > 1000


def _key(x: torch.Tensor) -> str:
    return hashlib.sha1(x.contiguous().numpy().tobytes()).hexdigest()


class OracleSource(FeatureSource):
    """Layer ``k`` carries each picture's labels (looked up by input); other layers are noise."""

    name, num_layers, patch_size = 'oracle', 4, 8
    channels = 152  # 0..149: class / object shares, 150: depth in metres, 151: always 0

    def __init__(self, k, tasks):
        super().__init__()
        self.k, self.gen, self.table = k, torch.Generator().manual_seed(0), {}
        seg, depth, track, cls = tasks
        for split in seg.splits:
            self._add(seg.data[split][0], seg.labels(split), seg.square(8))
        for split in depth.splits:
            self._add(depth.data[split][0], depth.depths(split), depth.square(8), depth=True)
        for split in cls.splits:
            paths, labels = cls.data[split]
            self._add(paths, [np.full((8, 8), c) for c in labels], cls.square(8))
        for name, (paths, size) in track.groups(8).items():
            seq = next(s for s in track.sequences if s.name == name)
            self._add(paths, track.dataset.load_annotations(seq), size)

    def _add(self, paths, targets, size, depth=False):
        for path, target in zip(paths, targets):
            x = to_tensor(read_rgb(path), size, self.mean, self.std)
            t = torch.as_tensor(np.asarray(target, np.float64))[None, None]
            t = F.interpolate(t, size=size, mode='nearest-exact')[0, 0]
            feat = torch.zeros(self.channels, *size, dtype=torch.float64)
            if depth:
                feat[150] = t
            else:
                valid = t != 255
                feat[t[valid].long(), valid.nonzero(as_tuple=True)[0],
                     valid.nonzero(as_tuple=True)[1]] = 1
            self.table[_key(x)] = F.avg_pool2d(feat[None], self.patch_size)[0].float()

    def fingerprint(self):
        return f'oracle-{self.k}'

    def _maps(self, x, layers):
        signal = torch.stack([self.table[_key(xi)] for xi in x])
        return [signal if k == self.k else torch.randn(signal.shape, generator=self.gen)
                for k in layers]


def test_sweep_finds_the_layer_that_carries_the_labels(toy, tmp_path):
    tasks = tasks_for(toy)
    source = OracleSource(2, tasks)
    report = run_sweep(source, tasks, FeatureCache(str(tmp_path), progress=False), range(4),
                       progress=False)
    for name, t in report['tasks'].items():
        assert t['best_layer'] == 2, (name, t['scores'])
    scores = {name: t['scores']['2'] for name, t in report['tasks'].items()}
    assert scores['classification'] == 100 and scores['segmentation'] > 60
    assert scores['tracking'] > 60 and scores['depth'] < min(
        report['tasks']['depth']['scores'][k] for k in '013')


def test_layer_selection_and_best_layer():
    assert sweep_layers(12, every=4) == [3, 7, 11]
    assert sweep_layers(10, every=4) == [3, 7, 9]
    assert sweep_layers(12, layers=[-1, 0]) == [0, 11]
    with pytest.raises(IndexError, match='outside'):
        sweep_layers(4, layers=[4])
    with pytest.raises(ValueError, match='every'):
        sweep_layers(4, every=0)
    assert best_layer({0: 1.0, 1: 3.0, 2: 3.0}, True) == 1
    assert best_layer({0: 1.0, 1: 0.5, 2: 2.0}, False) == 1


def test_layer_sweep_tool_and_bad_inputs(toy, tmp_path, capsys):
    import importlib.util
    root = osp.dirname(osp.dirname(osp.abspath(__file__)))
    spec = importlib.util.spec_from_file_location(
        'layer_sweep_tool', osp.join(root, 'tools', 'analysis', 'layer_sweep.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    args = ['--arch', json.dumps(TINY), '--segmentation', toy['segmentation'],
            '--classification', toy['classification'], '--size', str(SIZE), '--every', '2',
            '--cache-dir', str(tmp_path / 'c'), '--out', str(tmp_path / 'o'), '--no-progress']
    first = tool.main(args)
    assert first['layers'] == [1, 3] and first['cache']['misses'] == 2 * 2 * 2
    second = tool.main(args)  # --seed makes random weights reproducible: all cache hits
    assert second['cache'] == dict(hits=8, misses=0)
    assert second['tasks'] == first['tasks']
    assert osp.isfile(tmp_path / 'o' / 'sweep.png')
    assert 'best layer' in capsys.readouterr().out
    with pytest.raises(SystemExit):
        tool.main(['--arch', json.dumps(TINY)])
    with pytest.raises(FileNotFoundError, match='data root'):
        build_task('depth', str(tmp_path / 'nope'))
    with pytest.raises(ValueError, match='unknown sweep task'):
        build_task('pose', str(tmp_path))
    with pytest.raises(FileNotFoundError, match='no .jpg'):
        build_task('segmentation', str(tmp_path))


def test_sweep_on_a_timm_vit(toy, tmp_path):
    import timm

    from pe_dense.analysis.feature_cache import TimmSource
    torch.manual_seed(0)
    vit = timm.create_model('vit_tiny_patch16_224', pretrained=False, depth=2, img_size=SIZE,
                            dynamic_img_size=True)
    source = TimmSource(vit, 'vit-tiny-2')
    tasks = [build_task('classification', toy['classification'], size=SIZE),
             build_task('tracking', toy['tracking'], size=SIZE)]
    report = run_sweep(source, tasks, FeatureCache(str(tmp_path), progress=False), [0, -1],
                       progress=False)
    assert report['layers'] == [0, 1] and report['num_layers'] == 2
    assert all(set(t['scores']) == {'0', '1'} for t in report['tasks'].values())
    assert source.forward_calls > 0
