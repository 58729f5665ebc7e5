"""setup.py ranges hold for the tested stack; the Makefile installs in the order that works;
.ci/run keeps the caller's wheelhouses and runs exactly `make test`."""
import ast
import importlib.metadata as metadata
import os
import subprocess
import sys

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _setup_lists():
    tree = ast.parse(open(os.path.join(ROOT, 'setup.py'), encoding='utf-8').read())
    assign = next(n for n in tree.body if isinstance(n, ast.Assign)
                  and n.targets[0].id == 'INSTALL_REQUIRES')
    return [Requirement(r) for r in ast.literal_eval(assign.value)]


@pytest.mark.parametrize('req', _setup_lists(), ids=str)
def test_installed_stack_satisfies_setup_ranges(req):
    version = metadata.version(req.name)
    assert req.specifier.contains(Version(version).public, prereleases=True), \
        f'setup.py asks {req}, the tested environment has {version}'


def test_setup_gives_ranges_not_pins_for_torch():
    torch_req = next(r for r in _setup_lists() if r.name == 'torch')
    assert not any(s.operator == '==' for s in torch_req.specifier)


def _make_n(*targets, **variables):
    """What `make -n` would run. Clean of the outer make's variables: under `make test` the
    nested make would otherwise print its `Entering/Leaving directory` lines."""
    extra = [f'{k}={v}' for k, v in variables.items()]
    env = {k: v for k, v in os.environ.items() if k not in ('MAKEFLAGS', 'MAKELEVEL', 'MFLAGS')}
    out = subprocess.run(['make', '--no-print-directory', '-n', '-B', *targets, *extra],
                         cwd=ROOT, capture_output=True, text=True, check=True, env=env)
    return out.stdout


def test_install_order_pins_and_sam2_flags():
    text = _make_n('install')
    order = ['torch==2.14.1 torchvision==0.29.1', 'mmengine==0.10.7', 'scripts/install_mmcv.py',
             'mmdet==3.3.0 mmsegmentation==1.2.2', 'SAM2_BUILD_CUDA=0', '-e .', 'touch']
    positions = [text.index(s) for s in order]
    assert positions == sorted(positions), text
    sam_line = next(line for line in text.splitlines() if 'sam2==1.1.0' in line)
    assert '--no-build-isolation' in sam_line and sam_line.startswith('SAM2_BUILD_CUDA=0')


def test_test_and_demo_targets_install_first():
    test = _make_n('test').splitlines()
    assert test[-1] == '.venv/bin/python -m pytest tests -q'
    assert any('install_mmcv.py' in line for line in test[:-1])
    demo = _make_n('demo', DEMO='my_demo.sh').splitlines()
    assert demo[-1].endswith('bash my_demo.sh')


def test_ci_run_prepends_the_shared_wheelhouse_and_calls_make_test(tmp_path):
    repo, shared = tmp_path / 'repo', tmp_path / 'shared' / 'wheels'
    (repo / '.ci').mkdir(parents=True)
    shared.mkdir(parents=True)
    (repo / '.ci' / 'run').write_text(open(os.path.join(ROOT, '.ci', 'run')).read())
    fake_bin = tmp_path / 'bin'
    fake_bin.mkdir()
    (fake_bin / 'make').write_text('#!/usr/bin/env bash\necho "make $* | $PIP_FIND_LINKS"\n')
    (fake_bin / 'make').chmod(0o755)
    env = dict(os.environ, PATH=f'{fake_bin}:{os.environ["PATH"]}', PIP_FIND_LINKS='/opt/w')
    out = subprocess.run(['bash', str(repo / '.ci' / 'run')], cwd=tmp_path, env=env,
                         capture_output=True, text=True, check=True).stdout.strip()
    assert out == f'make test | {shared} /opt/w'


def test_check_fresh_install_runs_make_demo_on_a_clean_clone_home_and_no_wheelhouse(tmp_path):
    """scripts/check_fresh_install.sh with `make` replaced by a probe of what it would see."""
    repo, home, fake_bin = tmp_path / 'repo', tmp_path / 'home', tmp_path / 'bin'
    (repo / 'scripts').mkdir(parents=True)
    script = open(os.path.join(ROOT, 'scripts', 'check_fresh_install.sh')).read()
    (repo / 'scripts' / 'check_fresh_install.sh').write_text(script)
    (repo / 'committed.txt').write_text('v1')
    git = ['git', '-c', 'user.name=t', '-c', 'user.email=t@t']
    subprocess.run(git + ['init', '-q', str(repo)], check=True)
    subprocess.run(git + ['-C', str(repo), 'add', '.'], check=True)
    subprocess.run(git + ['-C', str(repo), 'commit', '-qm', 'c'], check=True)
    (repo / 'committed.txt').write_text('uncommitted edit')
    (home / '.config' / 'pip').mkdir(parents=True)
    (home / '.config' / 'pip' / 'pip.conf').write_text('[global]\nindex-url = file:///idx\n')
    (home / '.cache' / 'pe_dense' / 'wheels').mkdir(parents=True)
    fake_bin.mkdir()
    (fake_bin / 'make').write_text(
        '#!/usr/bin/env bash\n'
        'echo "args: $*"; echo "links: ${PIP_FIND_LINKS-unset} cache: ${PE_DENSE_WHEEL_CACHE-unset}"\n'
        'echo "home: $HOME"; echo "cached: $(ls -A "$HOME/.cache" 2>/dev/null)"\n'
        'cat "$HOME/.config/pip/pip.conf"\n'
        'cat "$2/committed.txt"; echo; echo "install_mmcv: building from source"\n')
    (fake_bin / 'make').chmod(0o755)
    env = dict(os.environ, HOME=str(home), PATH=f'{fake_bin}:{os.environ["PATH"]}',
               PYTHON=sys.executable,
               PIP_FIND_LINKS='/opt/wheels', PE_DENSE_WHEEL_CACHE='/w', TMPDIR=str(tmp_path))
    env.pop('XDG_CONFIG_HOME', None)
    out = subprocess.run(['bash', str(repo / 'scripts' / 'check_fresh_install.sh')], env=env,
                         capture_output=True, text=True, check=True).stdout
    assert 'uncommitted changes' in out and '\nv1\n' in out  # the clone holds HEAD only
    lines = dict(line.split(': ', 1) for line in out.splitlines()
                 if line.split(':')[0] in ('args', 'home', 'cached', 'links'))
    fresh = lines['home'][:-len('/home')]
    assert fresh.startswith(str(tmp_path / 'pe_dense_fresh.')) and lines['home'].endswith('/home')
    assert lines['args'] == f'-C {fresh}/pe_dense demo PYTHON={sys.executable}'
    assert lines['links'] == 'unset cache: unset' and lines['cached'] == ''
    assert 'index-url = file:///idx' in out and 'check-fresh-install: passed' in out
    assert not list(tmp_path.glob('pe_dense_fresh.*'))  # removed afterwards


def test_make_check_fresh_install_runs_the_script_without_installing_here():
    assert _make_n('check-fresh-install').splitlines() == ['bash scripts/check_fresh_install.sh']
