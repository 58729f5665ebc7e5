"""Checkpoints by name (hf://, hf-hub:, timm/, http(s)) from a Hugging Face cache, offline.

huggingface_hub's own hf_hub_download fills a temporary cache from a local stand-in of the hub
(tests/fixtures/fake_hub.py), so the layout is the real one; every load then runs offline.
"""
import argparse
import fractions
import functools
import hashlib
import importlib.util
import io
import os
import pickle
import subprocess
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch
from huggingface_hub import constants, scan_cache_dir, try_to_load_from_cache
from mmengine.runner import load_checkpoint
from mmengine.runner.checkpoint import CheckpointLoader
from safetensors.torch import save as safetensors_bytes

from pe_dense.models.backbones import PE, CheckpointError
from pe_dense.models.backbones.checkpoint import official_to_timm
from pe_dense.models.backbones.hub import (parse_hub_name, register_checkpoint_schemes,
                                           resolve_checkpoint)
from tests.fixtures.fake_hub import COMMIT, FakeHub

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(patch_size=16, width=64, depth=2, heads=4, mlp_dim=128, cls_token=True,
            pool='attn', out_dim=32, layer_scale=0.1, ln_post=True, img_size=64)
OFFICIAL = 'hf://facebook/PE-Spatial-G14-448:PE-Spatial-G14-448.pt'
DETA = 'hf://facebook/PE-Detection:deta_coco_1824pix.pth'
TIMM = 'timm/vit_pe_spatial_gigantic_patch14_448.fb'
TIMM_BIN = 'timm/vit_pe_core_tiny_patch16_384.fb'  # a repo holding only pytorch_model.bin
TINY_TASK = 'hf://pe-dense-test/tiny-regressor:iter_8.pth'  # a whole MMEngine checkpoint


def _tool():
    spec = importlib.util.spec_from_file_location('convert_checkpoint',
                                                  ROOT / 'tools' / 'convert_checkpoint.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _weights(seed):
    torch.manual_seed(seed)
    return PE(TINY).state_dict()


def _torch_bytes(obj):
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


@pytest.fixture(scope='module')
def hub(tmp_path_factory):
    """Files of four hub repos, and an HF_HOME whose hub cache holds them (filled online once)."""
    dc = _tool().deta_convert
    small = dc.DetaSpec(embed_dim=64, depth=3, num_heads=4, mlp_dim=96, pos_grid=4,
                        window_size=4, global_attn_indexes=(1,), img_size=128, hidden_dim=32,
                        ffn_dim=48, num_heads_det=4, enc_layers=2, dec_layers=2, enc_points=2,
                        dec_points=2, num_classes=91)
    from tests.fixtures.tiny_task import TinyRegressor
    weights = {'official': _weights(0), 'timm': _weights(1), 'timm_bin': _weights(2)}
    weights['tiny_task'] = TinyRegressor().state_dict()  # seeded by _weights(2)
    deta = {'model': dc.random_official_state_dict(small), 'args': argparse.Namespace(lr=2e-4)}
    files = {
        ('facebook/PE-Spatial-G14-448', 'PE-Spatial-G14-448.pt'): _torch_bytes(weights['official']),
        ('facebook/PE-Detection', 'deta_coco_1824pix.pth'): _torch_bytes(deta),
        ('timm/vit_pe_spatial_gigantic_patch14_448.fb', 'model.safetensors'):
            safetensors_bytes(official_to_timm(weights['timm'])),
        ('timm/vit_pe_core_tiny_patch16_384.fb', 'pytorch_model.bin'):
            _torch_bytes(official_to_timm(weights['timm_bin'])),
        ('pe-dense-test/tiny-regressor', 'iter_8.pth'):
            _torch_bytes(dict(state_dict=weights['tiny_task'], meta=dict())),
    }
    home = tmp_path_factory.mktemp('hf_home')
    cache = home / 'hub'
    with FakeHub(files) as server, pytest.MonkeyPatch.context() as mp:
        mp.setattr(constants, 'HF_HUB_CACHE', str(cache))
        mp.setattr(constants, 'ENDPOINT', server.url)
        mp.setattr(constants, 'HUGGINGFACE_CO_URL_TEMPLATE',
                   server.url + '/{repo_id}/resolve/{revision}/{filename}')
        for name in (OFFICIAL, DETA, TIMM, TIMM_BIN, TINY_TASK):
            resolve_checkpoint(name)
    return dict(files=files, weights=weights, deta=deta, home=home, cache=cache)


@pytest.fixture
def offline(hub, monkeypatch):
    """HF_HUB_OFFLINE=1 on the filled cache; the hub address points nowhere."""
    monkeypatch.setattr(constants, 'HF_HUB_CACHE', str(hub['cache']))
    monkeypatch.setattr(constants, 'HF_HUB_OFFLINE', True)
    monkeypatch.setattr(constants, 'HUGGINGFACE_CO_URL_TEMPLATE',
                        'http://127.0.0.1:9/{repo_id}/resolve/{revision}/{filename}')
    return hub


def _loaded(name):
    model = PE(TINY, init_cfg=dict(type='Pretrained', checkpoint=name))
    model.init_weights()
    return model.state_dict()


def _equal(a, b):
    return set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)


def test_the_cache_has_huggingface_hubs_layout(hub):
    info = scan_cache_dir(hub['cache'])
    assert not info.warnings
    listed = {(r.repo_id, f.file_name) for r in info.repos for rev in r.revisions
              for f in rev.files}
    assert listed == set(hub['files'])
    for (repo, filename), data in hub['files'].items():
        path = try_to_load_from_cache(repo, filename, cache_dir=hub['cache'])
        assert path.endswith(f'snapshots/{COMMIT}/{filename}')
        assert Path(path).read_bytes() == data
        assert Path(path).resolve().name == hashlib.sha256(data).hexdigest()  # blobs/<sha256>
        assert (hub['cache'] / f"models--{repo.replace('/', '--')}" / 'refs' / 'main'
                ).read_text() == COMMIT


@pytest.mark.parametrize('name,key', [
    (OFFICIAL, 'official'),
    ('hf-hub:facebook/PE-Spatial-G14-448', 'official'),  # file implied: <repo name>.pt
    (TIMM, 'timm'),  # model.safetensors, timm layout converted on load
    ('hf-hub:' + TIMM, 'timm'),
    (TIMM_BIN, 'timm_bin'),  # no model.safetensors in that repo: pytorch_model.bin, as timm
])
def test_each_name_loads_offline(offline, name, key):
    assert _equal(_loaded(name), offline['weights'][key])


def test_deta_checkpoint_converts_by_name_offline(offline, tmp_path):
    tool = _tool()
    local = tmp_path / 'deta_coco_1824pix.pth'
    local.write_bytes(offline['files'][('facebook/PE-Detection', 'deta_coco_1824pix.pth')])
    args = ['--class-map', 'none', '--num-dec-layers', '2']
    tool.main(['deta', DETA, str(tmp_path / 'by_name.pth')] + args)
    tool.main(['deta', str(local), str(tmp_path / 'by_path.pth')] + args)
    by_name = torch.load(tmp_path / 'by_name.pth', weights_only=True)['state_dict']
    by_path = torch.load(tmp_path / 'by_path.pth', weights_only=True)['state_dict']
    assert len(by_name) > 50 and _equal(by_name, by_path)


@pytest.mark.slow  # a fresh interpreter importing pe_dense: ~10 s quiet, 40 s on a busy machine
def test_tool_reads_hf_home_and_hf_hub_offline_from_the_environment(hub, tmp_path):
    env = dict(os.environ, HF_HOME=str(hub['home']), HF_HUB_OFFLINE='1',
               HF_ENDPOINT='http://127.0.0.1:9', PYTHONPATH=str(ROOT))
    env.pop('HF_HUB_CACHE', None)
    out = tmp_path / 'official.pt'
    proc = subprocess.run([sys.executable, 'tools/convert_checkpoint.py', 'backbone',
                           'hf-hub:facebook/PE-Spatial-G14-448', str(out), '--to', 'official'],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert _equal(torch.load(out, weights_only=True), hub['weights']['official'])


@pytest.mark.parametrize('name,repo,filename', [
    ('hf://facebook/PE-Core-G14-448:PE-Core-G14-448.pt', 'facebook/PE-Core-G14-448',
     'PE-Core-G14-448.pt'),
    ('hf-hub:facebook/PE-Lang-L14-448', 'facebook/PE-Lang-L14-448', 'PE-Lang-L14-448.pt'),
    ('timm/vit_pe_lang_large_patch14_448.fb', 'timm/vit_pe_lang_large_patch14_448.fb',
     'model.safetensors'),
])
def test_uncached_name_offline_says_what_to_download(offline, name, repo, filename):
    with pytest.raises(CheckpointError) as err:
        PE(TINY).load_pretrained(name)
    msg = str(err.value)
    assert f'file {filename}' in msg and f'repo {repo}' in msg
    assert f'hf download {repo} {filename}' in msg and 'unset HF_HUB_OFFLINE' in msg


def test_names_parse_as_the_official_code_and_timm_do():
    assert parse_hub_name(OFFICIAL) == ('facebook/PE-Spatial-G14-448', ['PE-Spatial-G14-448.pt'])
    assert parse_hub_name('hf-hub:facebook/PE-Core-B16-224') == ('facebook/PE-Core-B16-224',
                                                               ['PE-Core-B16-224.pt'])
    assert parse_hub_name('hf://facebook/PE-Core-B16-224') == ('facebook/PE-Core-B16-224',
                                                             ['PE-Core-B16-224.pt'])
    assert parse_hub_name('hf-hub:facebook/PE-Detection:deta_coco_1824pix.pth') == \
        parse_hub_name(DETA) == ('facebook/PE-Detection', ['deta_coco_1824pix.pth'])
    assert parse_hub_name(TIMM) == ('timm/vit_pe_spatial_gigantic_patch14_448.fb',
                                    ['model.safetensors', 'pytorch_model.bin'])
    for bad in ('hf://PE-Spatial-G14-448', 'hf://facebook/PE:', 'hf-hub:a/b/c'):
        with pytest.raises(CheckpointError, match='e.g. hf://facebook/PE-Spatial-G14-448'):
            parse_hub_name(bad)
    with pytest.raises(CheckpointError, match=r'vit_pe_core_tiny_patch16_384\.fb'):
        parse_hub_name('timm/vit_pe_core_tiny_patch16_384.xx')  # known model, unknown tag


@pytest.fixture
def loader_table(monkeypatch):
    """MMEngine's loader table is process-wide: restored after the test."""
    monkeypatch.setattr(CheckpointLoader, '_schemes', dict(CheckpointLoader._schemes))


@pytest.fixture
def schemes(loader_table):
    register_checkpoint_schemes()


def test_mmengine_load_checkpoint_takes_names_after_registration(offline, schemes, tmp_path,
                                                                 monkeypatch):
    model = PE(TINY)
    load_checkpoint(model, 'hf-hub:facebook/PE-Spatial-G14-448', strict=True)
    assert _equal(model.state_dict(), offline['weights']['official'])
    # a local relative path that merely starts like a name is still a local file
    monkeypatch.chdir(tmp_path)
    os.makedirs('timm')
    torch.save(offline['weights']['timm'], 'timm/w.pth')
    load_checkpoint(model, 'timm/w.pth', strict=True)
    assert _equal(model.state_dict(), offline['weights']['timm'])


class _QuietFiles(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_test_tool_evaluates_a_checkpoint_by_name(offline, loader_table, tmp_path, capsys):
    from tests.test_tools_train import TEST_CFG, _expected_mse
    spec = importlib.util.spec_from_file_location('test_tool', ROOT / 'tools' / 'test.py')
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    assert tool.main([TEST_CFG, TINY_TASK, '--work-dir', str(tmp_path)]) == 0
    printed = eval(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed['mse'] == pytest.approx(_expected_mse(offline['weights']['tiny_task']), abs=1e-4)


@pytest.fixture
def web(tmp_path, monkeypatch):
    """A local http server over tmp_path/www, and a fresh torch hub cache."""
    (tmp_path / 'www').mkdir()
    monkeypatch.setattr(torch.hub, '_hub_dir', str(tmp_path / 'torch_hub'))
    handler = functools.partial(_QuietFiles, directory=str(tmp_path / 'www'))
    server = ThreadingHTTPServer(('127.0.0.1', 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield tmp_path / 'www', f'http://127.0.0.1:{server.server_address[1]}'
    server.shutdown()
    server.server_close()


def test_url_is_downloaded_once_into_torch_hubs_cache(web, schemes, tmp_path):
    www, url = web
    sd = _weights(3)
    torch.save(sd, www / 'w.pth')
    assert _equal(_loaded(f'{url}/w.pth'), sd)
    assert (tmp_path / 'torch_hub' / 'checkpoints' / 'w.pth').is_file()
    (www / 'w.pth').unlink()  # served no more: the cached copy is read
    model = PE(TINY)
    load_checkpoint(model, f'{url}/w.pth', strict=True)
    assert _equal(model.state_dict(), sd)


def test_url_through_mmengine_is_read_weights_only(web, schemes):
    """MMEngine's own http loader uses torch.load(weights_only=False); ours does not."""
    www, url = web
    torch.save({'w': torch.ones(2), 'f': fractions.Fraction(1, 3)}, www / 'frac.pth')
    with pytest.raises(pickle.UnpicklingError, match='fractions.Fraction'):
        CheckpointLoader.load_checkpoint(f'{url}/frac.pth')


# ------------------------------------------------------------------ refused pickles
class _System:
    def __reduce__(self):
        return os.system, ('echo should-never-run',)


def test_refused_class_is_named_with_the_file_and_what_to_do(tmp_path):
    path = tmp_path / 'frac.pt'
    torch.save({'conv1.weight': torch.ones(1), 'f': fractions.Fraction(1, 3)}, path)
    with pytest.raises(CheckpointError) as err:
        PE(TINY).load_pretrained(str(path))
    msg = str(err.value)
    assert msg.startswith(f'{path}: refused to unpickle fractions.Fraction')
    assert 'torch.serialization.add_safe_globals([fractions.Fraction])' in msg
    assert '\x1b' not in msg and 'two options' not in msg


def test_blocked_function_in_a_crafted_pickle_is_named(tmp_path):
    path = tmp_path / 'evil.pt'
    path.write_bytes(pickle.dumps({'w': _System()}, protocol=2))
    with pytest.raises(CheckpointError) as err:
        PE(TINY).load_pretrained(str(path))
    msg = str(err.value)
    assert f'{path}: refused to unpickle posix.system' in msg and 'do not load' in msg
    assert 'add_safe_globals' not in msg and '\x1b' not in msg
