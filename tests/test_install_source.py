"""The source path of scripts/install_mmcv.py up to, not including, compilation.

Every install without a prebuilt mmcv wheel takes this path, CI (which has one) otherwise never
would. The sdist comes from the package index through this Python's pip with the installer's own
function and flags; then the C++ patch, then mmcv's metadata is prepared with the flags of the
build command. pip's isolated build env (newest setuptools, no pkg_resources, which mmcv's
setup.py imports) fails at exactly these two steps.
"""
import importlib.util
import json
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
spec = importlib.util.spec_from_file_location('install_mmcv',
                                              os.path.join(ROOT, 'scripts', 'install_mmcv.py'))
install_mmcv = importlib.util.module_from_spec(spec)
spec.loader.exec_module(install_mmcv)


@pytest.mark.slow  # ~20 s idle (a download, torch imported by mmcv's setup.py), more when loaded
def test_sdist_download_patch_and_metadata_without_compiling(tmp_path):
    sdist = install_mmcv.download_sdist(str(tmp_path / 'download'))
    assert os.path.basename(sdist) == 'mmcv-2.1.0.tar.gz' and os.path.getsize(sdist) > 100_000
    src = install_mmcv.prepare_source(sdist, str(tmp_path), '2.14.1')
    setup_py = open(os.path.join(src, 'setup.py')).read()
    assert 'from pkg_resources import' in setup_py  # the reason isolation must stay off
    assert not re.search(r'-std=c\+\+1[47]', setup_py) and setup_py.count('-std=c++20') >= 4
    report = tmp_path / 'report.json'
    out = subprocess.run(
        [sys.executable, '-m', 'pip', 'install', '--dry-run', '--quiet', '--report', str(report),
         *install_mmcv.PIP_SOURCE_FLAGS, '.'],
        cwd=src, env=install_mmcv.build_env(os.environ, 1, cuda_ops=False),
        capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    (item,) = json.loads(report.read_text())['install']
    assert (item['metadata']['name'], item['metadata']['version']) == ('mmcv', '2.1.0')
    assert not list(tmp_path.rglob('*.so')) and not list(tmp_path.rglob('*.o'))
