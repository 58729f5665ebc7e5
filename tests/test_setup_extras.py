"""setup.py: the plain package is the backbone; extras bring the task parts; every declared
dependency is used by the code (or, for the few used indirectly, says by what)."""
import ast
import glob
import importlib.metadata as metadata
import os
import re

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODULE = {'opencv-python-headless': 'cv2', 'scikit-image': 'skimage', 'mmsegmentation': 'mmseg',
          'open_clip_torch': 'open_clip', 'albumentations': 'Albu'}
# used without an import statement of ours: name -> where it is used
INDIRECT = {'setuptools': 'pkg_resources, imported by mmengine 0.10.7',
            'tensorboard': 'TensorboardVisBackend',  # the configs' visualisation backend
            'torchvision': 'mmdet / mmseg transforms and timm'}


def _setup():
    src = open(os.path.join(ROOT, 'setup.py'), encoding='utf-8').read()
    ns = {}
    exec(src.split('\nsetup(\n')[0].replace('from setuptools import find_packages, setup', ''), ns)
    return ns['INSTALL_REQUIRES'], ns['EXTRAS_REQUIRE']


def _sources():
    files = [f for d in ('pe_dense', 'tools', 'configs') for f in
             glob.glob(os.path.join(ROOT, d, '**', '*.py'), recursive=True)]
    return '\n'.join(open(f, encoding='utf-8').read() for f in files)


def test_plain_package_is_the_backbone():
    plain, extras = _setup()
    assert sorted(Requirement(r).name for r in plain) == \
        ['mmengine', 'numpy', 'safetensors', 'setuptools', 'timm', 'torch']
    names = {k: {Requirement(r).name for r in v} for k, v in extras.items()}
    assert {'mmdet', 'mmcv', 'pycocotools'} <= names['det']
    assert {'mmsegmentation', 'mmcv'} <= names['seg'] and 'mmdet' not in names['seg']
    assert 'sam2' in names['align'] and 'open_clip_torch' in names['core']
    assert names['all'] == names['det'] | names['seg'] | names['align'] | names['core']


@pytest.mark.parametrize('req', sorted({r for rs in _setup()[1].values() for r in rs}), ids=str)
def test_installed_stack_satisfies_extra_ranges(req):
    req = Requirement(req)
    version = metadata.version(req.name)
    assert req.specifier.contains(Version(version).public, prereleases=True), (str(req), version)


def test_every_declared_dependency_is_used():
    plain, extras = _setup()
    declared = {Requirement(r).name for r in plain} | {
        Requirement(r).name for k, rs in extras.items() if k != 'test' for r in rs}
    text = _sources()
    unused = []
    for name in sorted(declared):
        if name in INDIRECT:
            assert name != 'tensorboard' or INDIRECT[name] in text
            continue
        module = MODULE.get(name, name.replace('-', '_'))
        if not re.search(rf'(^|\W)(import|from) {module}\b|type=.{module}.', text, re.M):
            unused.append(name)
    assert unused == []
