"""Configs reuse the backbone bases: inside the repository (ADE20k / NYU inherit
configs/_base_/backbones) and from another project through mim's ``pe_dense::`` prefix."""
import json
import os
import os.path as osp
import subprocess
import sys
import textwrap

import pytest
from mmengine.config import Config

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def test_ade20k_and_nyu_configs_inherit_the_backbone_base_with_the_same_values():
    """The configs take arch / width / depth / patch / checkpoint from
    configs/_base_/backbones/pe_spatial_g14.py; every merged value is what the configs said
    before they inherited it (fixture written from the previous configs; custom_imports and
    the base's own pe_* keys aside)."""
    with open(osp.join(REPO, 'tests', 'fixtures', 'seg_configs_before_backbone_bases.json')) as f:
        before = json.load(f)
    assert len(before) == 6
    for rel, want in before.items():
        path = osp.join(REPO, rel)
        with open(path) as f:
            assert '_base_.pe_arch' in f.read() or rel.endswith('_whole.py'), rel
        cfg = Config.fromfile(path, import_custom_modules=False)
        got = json.loads(json.dumps(cfg.to_dict(), default=repr))
        got = {k: v for k, v in got.items() if k != 'custom_imports' and not k.startswith('pe_')}
        assert got == want, rel
        assert cfg.pe_arch == cfg.model.backbone.arch == 'PE-Spatial-G14-448'


def _install_copy(tmp_path):
    """pe_dense built and installed as a user's `pip install .` would, into a folder of its own
    (the build runs on a copy of the sources: nothing is written into the repository)."""
    src = tmp_path / 'src'
    for name in ('setup.py', 'README.md', 'model-index.yml'):
        os.makedirs(src, exist_ok=True)
        with open(osp.join(REPO, name), 'rb') as f:
            (src / name).write_bytes(f.read())
    ignore = __import__('shutil').ignore_patterns('__pycache__', '*.pyc', '.mim')
    for name in ('pe_dense', 'configs', 'tools'):
        __import__('shutil').copytree(osp.join(REPO, name), src / name, ignore=ignore)
    site = tmp_path / 'site'
    out = subprocess.run([sys.executable, '-m', 'pip', 'install', '--no-deps',
                          '--no-build-isolation', '--no-index', '--quiet', '--target', str(site),
                          str(src)], capture_output=True, text=True,
                         env=dict(os.environ, PIP_NO_CACHE_DIR='1'))
    assert out.returncode == 0, out.stderr[-3000:]
    return site


@pytest.mark.slow
def test_a_config_outside_the_repository_inherits_a_backbone_base_through_mim(tmp_path):
    """An installed pe_dense ships configs/ as pe_dense/.mim/configs (and model-index.yml):
    another project's config inherits ``pe_dense::_base_/backbones/pe_spatial_t16.py`` and the
    model builds and runs; MMEngine's ``get_config`` finds a full config and its weights
    through model-index.yml. The process imports pe_dense first (the ``pe_dense::`` prefix)."""
    site = _install_copy(tmp_path)
    mim = site / 'pe_dense' / '.mim'
    assert (mim / 'configs' / '_base_' / 'backbones' / 'pe_spatial_t16.py').is_file()
    assert (mim / 'model-index.yml').is_file() and (mim / 'tools' / 'train.py').is_file()
    project = tmp_path / 'my_project'
    project.mkdir()
    (project / 'my_model.py').write_text(textwrap.dedent("""
        _base_ = ['pe_dense::_base_/backbones/pe_spatial_t16.py']
        custom_imports = dict(imports=['pe_dense.backbone'], allow_failed_imports=False)
        model = dict(_base_.pe_backbone, init_cfg=None)
        """))
    code = textwrap.dedent("""
        import json, torch, pe_dense
        from mmengine.config import Config
        from mmengine.registry import MODELS
        cfg = Config.fromfile('my_model.py')
        torch.manual_seed(0)
        model = MODELS.build(cfg.model).eval()
        with torch.no_grad():
            out = model(torch.randn(1, 3, 48, 80))[0]
        from mmengine.hub import get_config
        davis = get_config('pe_dense::davis/pe_spatial_t16_davis.py', pretrained=True)
        print(json.dumps(dict(pe_dense=pe_dense.__file__, arch=cfg.pe_arch, shape=list(out.shape),
                              width=cfg.pe_width, davis=davis.filename,
                              davis_arch=davis.pe_backbone.arch, weights=davis.model_path)))
        """)
    run = subprocess.run([sys.executable, '-c', code], cwd=project, capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=str(site), OMP_NUM_THREADS='1'))
    assert run.returncode == 0, run.stderr[-3000:]
    got = json.loads(run.stdout.strip().splitlines()[-1])
    assert got['pe_dense'].startswith(str(site))
    assert got['arch'] == got['davis_arch'] == 'PE-Spatial-T16-512'
    assert got['shape'] == [1, 192, 3, 5] and got['width'] == 192
    assert got['davis'].startswith(str(mim / 'configs' / 'davis'))
    assert got['weights'] == ('https://huggingface.co/facebook/PE-Spatial-T16-512/resolve/main/'
                              'PE-Spatial-T16-512.pt')


def test_model_index_lists_configs_weights_and_the_published_metrics_of_the_docs():
    """Each metafile row names an existing config and Meta's released weights; every metric
    is the published number the task's doc (the collection's README) states."""
    import yaml
    with open(osp.join(REPO, 'model-index.yml')) as f:
        index = yaml.safe_load(f)
    names, configs, metrics = set(), set(), 0
    for meta in index['Import']:
        with open(osp.join(REPO, meta)) as f:
            data = yaml.safe_load(f)
        readme = {c['Name']: c['README'] for c in data['Collections']}
        for model in data['Models']:
            assert model['Name'] not in names, model['Name']
            names.add(model['Name'])
            assert osp.isfile(osp.join(REPO, model['Config'])), model['Config']
            configs.add(model['Config'])
            assert model['Weights'].startswith('https://huggingface.co/facebook/'), model['Name']
            with open(osp.join(REPO, readme[model['In Collection']])) as f:
                doc = f.read()
            for result in model.get('Results', []):
                for key, value in result['Metrics'].items():
                    assert isinstance(value, float) and f'{value:.1f}' in doc, (model['Name'], key)
                    metrics += 1
    assert metrics == 19 and len(configs) == len(names) == 17
    assert 'configs/pe_spatial_deta_coco.py' in configs
