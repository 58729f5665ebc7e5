#!/usr/bin/env python
"""Install mmcv 2.1.0 with compiled ops into the running Python, building it when needed.

PyPI has only the source of mmcv 2.1.0, and torch >= 2.10 headers need C++20 where mmcv's
setup.py asks for C++14/17. Order of preference:
  1. mmcv 2.1.0 with ops already importable -> nothing to do;
  2. a matching wheel in a wheelhouse (PIP_FIND_LINKS, --wheelhouse) or in the cache
     (~/.cache/pe_dense/wheels/torch-<version>/) -> install it;
  3. otherwise download the sdist, raise the C++ standard, build a wheel (about 20 minutes
     on 2 cores), keep it in the cache and install it.
`--check` prints which path would be taken and exits.  Standard library only.
"""
import argparse
import glob
import os
import re
import subprocess
import sys
import sysconfig
import tarfile
import tempfile

VERSION = '2.1.0'


def run(cmd, **kw):
    print('+', ' '.join(cmd), flush=True)
    subprocess.run(cmd, check=True, **kw)


def torch_version() -> str:
    out = subprocess.run([sys.executable, '-c', 'import torch; print(torch.__version__)'],
                         capture_output=True, text=True)
    if out.returncode:
        sys.exit('install_mmcv: torch must be installed first (mmcv compiles against it)')
    return out.stdout.strip().split('+')[0]


def has_working_mmcv() -> bool:
    code = ('import mmcv, mmcv.ops; from mmcv.ops import nms; '
            f'assert mmcv.__version__ == "{VERSION}"')
    return subprocess.run([sys.executable, '-c', code], capture_output=True).returncode == 0


def wheel_tag() -> str:
    py = f'cp{sys.version_info.major}{sys.version_info.minor}'
    plat = sysconfig.get_platform().replace('-', '_').replace('.', '_')
    return f'{py}-{py}-{plat}'


def cache_dir(root: str, torch_ver: str) -> str:
    return os.path.join(os.path.expanduser(root), f'torch-{torch_ver}')


def find_wheel(dirs) -> str:
    pattern = f'mmcv-{VERSION}-{wheel_tag()}.whl'
    for d in dirs:
        hits = sorted(glob.glob(os.path.join(d, pattern)))
        if hits:
            return hits[0]
    return ''


def needs_cxx20(torch_ver: str) -> bool:
    major, minor = (int(x) for x in torch_ver.split('.')[:2])
    return (major, minor) >= (2, 10)


def raise_cxx_standard(setup_py_text: str) -> str:
    """mmcv's setup.py with every -std=c++14 / -std=c++17 flag raised to C++20."""
    return re.sub(r'-std=c\+\+1[47]', '-std=c++20', setup_py_text)


def build_wheel(out_dir: str, torch_ver: str, jobs: int) -> str:
    os.makedirs(out_dir, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix='mmcv-build-') as tmp:
        run([sys.executable, '-m', 'pip', 'download', '--no-deps', '--no-binary', ':all:',
             f'mmcv=={VERSION}', '-d', tmp])
        sdist = glob.glob(os.path.join(tmp, f'mmcv-{VERSION}.tar.gz'))[0]
        with tarfile.open(sdist) as tar:
            tar.extractall(tmp, filter='data')
        src = os.path.join(tmp, f'mmcv-{VERSION}')
        if needs_cxx20(torch_ver):
            setup_py = os.path.join(src, 'setup.py')
            with open(setup_py) as f:
                text = f.read()
            with open(setup_py, 'w') as f:
                f.write(raise_cxx_standard(text))
            print(f'install_mmcv: setup.py patched to C++20 for torch {torch_ver}')
        env = dict(os.environ, MMCV_WITH_OPS='1', MAX_JOBS=str(jobs))
        run([sys.executable, '-m', 'pip', 'wheel', '--no-build-isolation', '--no-deps', '.',
             '-w', out_dir], cwd=src, env=env)
    wheel = find_wheel([out_dir])
    if not wheel:
        sys.exit(f'install_mmcv: the build finished but no wheel is in {out_dir}')
    return wheel


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--wheelhouse', action='append', default=[],
                   help='extra folder with prebuilt wheels (PIP_FIND_LINKS is read too)')
    p.add_argument('--cache', default=os.environ.get('PE_DENSE_WHEEL_CACHE',
                                                     '~/.cache/pe_dense/wheels'))
    p.add_argument('--jobs', type=int, default=os.cpu_count() or 2)
    p.add_argument('--check', action='store_true', help='only say what would be done')
    args = p.parse_args(argv)

    if has_working_mmcv():
        print(f'install_mmcv: mmcv {VERSION} with compiled ops is already installed')
        return 0
    torch_ver = torch_version()
    cache = cache_dir(args.cache, torch_ver)
    links = [d for d in os.environ.get('PIP_FIND_LINKS', '').split() if os.path.isdir(d)]
    wheel = find_wheel(args.wheelhouse + links + [cache])
    if args.check:
        print(f'install_mmcv: would install wheel {wheel}' if wheel else
              f'install_mmcv: would build mmcv {VERSION} from source for torch {torch_ver} '
              f'(C++{"20" if needs_cxx20(torch_ver) else "17"}) into {cache}')
        return 0
    if not wheel:
        print(f'install_mmcv: no mmcv {VERSION} wheel for {wheel_tag()}; building from source '
              '(about 20 minutes on 2 cores, cached afterwards)', flush=True)
        wheel = build_wheel(cache, torch_ver, args.jobs)
    elif not wheel.startswith(cache):
        os.makedirs(cache, exist_ok=True)
        subprocess.run(['cp', wheel, cache], check=False)  # keep a copy for the next install
    run([sys.executable, '-m', 'pip', 'install', '--no-deps', wheel])
    if not has_working_mmcv():
        sys.exit(f'install_mmcv: {wheel} installed but mmcv.ops does not import; was it built '
                 f'for another torch than {torch_ver}?')
    print(f'install_mmcv: mmcv {VERSION} ready ({os.path.basename(wheel)})')
    return 0


if __name__ == '__main__':
    sys.exit(main())
