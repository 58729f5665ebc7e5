#!/usr/bin/env python
"""Install mmcv 2.1.0 with compiled ops into the running Python, building it when needed.

PyPI has only the source of mmcv 2.1.0, and torch >= 2.10 headers need C++20 where mmcv's
setup.py asks for C++14/17. Order of preference:
  1. mmcv 2.1.0 with ops already importable (and CUDA ops when a GPU is visible) -> nothing;
  2. a matching wheel in a wheelhouse (PIP_FIND_LINKS, --wheelhouse) or in the cache
     (~/.cache/pe_dense/wheels/<key>/, key = full torch version with its CUDA tag) -> install;
  3. otherwise download the sdist, raise the C++ standard, build a wheel (about 20 minutes
     on 2 cores for CPU ops), keep it in the cache and install it.
CUDA ops are built (FORCE_CUDA=1) when torch has CUDA, nvcc matches it, and a GPU is visible or
TORCH_CUDA_ARCH_LIST / FORCE_CUDA=1 ask for them; after installing, a visible GPU must be served
by mmcv's CUDA ops or the script fails.
`--check` prints which path would be taken and exits.  Standard library only.
"""
import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile

VERSION = '2.1.0'
# mmcv's setup.py imports pkg_resources: its metadata and build must run in this Python
# (setuptools < 81), never in pip's isolated build env, which gets the newest setuptools.
PIP_SOURCE_FLAGS = ('--no-build-isolation', '--no-deps')

_TORCH_PROBE = ('import json, torch; print(json.dumps({"version": torch.__version__, '
                '"cuda": torch.version.cuda, "cuda_available": torch.cuda.is_available(), '
                '"archs": torch.cuda.get_arch_list()}))')
# The CUDA part runs only on a visible GPU: an NMS on CUDA tensors proves the kernels exist.
_MMCV_PROBE = '''
import json, mmcv, torch
from mmcv.ops import get_compiling_cuda_version, nms
info = {"version": mmcv.__version__, "cuda": get_compiling_cuda_version(), "cuda_op": None}
if torch.cuda.is_available():
    try:
        b = torch.tensor([[0., 0., 4., 3.], [1., 0., 5., 3.]], device="cuda")
        nms(b, torch.tensor([.9, .8], device="cuda"), .5)
        info["cuda_op"] = "ok"
    except Exception as e:
        info["cuda_op"] = f"{type(e).__name__}: {e}"
print(json.dumps(info))
'''


def run(cmd, **kw):
    print('+', ' '.join(cmd), flush=True)
    subprocess.run(cmd, check=True, **kw)


def _probe(code):
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    if out.returncode:
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def probe_torch() -> dict:
    info = _probe(_TORCH_PROBE)
    if info is None:
        sys.exit('install_mmcv: torch must be installed first (mmcv compiles against it)')
    return info


def mmcv_problem(info, cuda_available: bool) -> str:
    """Why the installed mmcv (probe result, None if it does not import) will not do; '' if it will."""
    if info is None:
        return 'mmcv with compiled ops (mmcv.ops) does not import'
    if info['version'] != VERSION:
        return f'mmcv {info["version"]} is installed, the stack needs {VERSION}'
    if cuda_available and info['cuda'] == 'not available':
        return ('a GPU is visible but mmcv.ops was compiled without CUDA '
                '(get_compiling_cuda_version() says "not available")')
    if cuda_available and info.get('cuda_op') != 'ok':
        return f'mmcv.ops.nms fails on a CUDA tensor: {info.get("cuda_op")}'
    return ''


def cuda_home(env, which=shutil.which, exists=os.path.exists) -> str:
    """The CUDA toolkit torch's extension builder will use (same search as torch)."""
    home = env.get('CUDA_HOME') or env.get('CUDA_PATH')
    if not home:
        nvcc = which('nvcc')
        home = os.path.dirname(os.path.dirname(nvcc)) if nvcc else '/usr/local/cuda'
    return home if exists(os.path.join(home, 'bin', 'nvcc')) else ''


def nvcc_release(home: str) -> str:
    out = subprocess.run([os.path.join(home, 'bin', 'nvcc'), '--version'],
                         capture_output=True, text=True).stdout
    m = re.search(r'release (\d+\.\d+)', out)
    return m.group(1) if m else ''


def arch_list_of(torch_archs) -> str:
    """torch.cuda.get_arch_list() (['sm_80', 'sm_90', ...]) as TORCH_CUDA_ARCH_LIST ('8.0;9.0+PTX')."""
    caps = sorted({int(re.sub(r'\D', '', a.split('_')[1])) for a in torch_archs if 'sm_' in a})
    return ';'.join(f'{c // 10}.{c % 10}' for c in caps) + ('+PTX' if caps else '')


def cuda_plan(torch_cuda, cuda_available: bool, nvcc_rel: str, env=None, torch_archs=()):
    """(build CUDA ops?, error that stops a build, note to print, TORCH_CUDA_ARCH_LIST to set).

    Pure, for the tests. torch_cuda: torch.version.cuda (None for a CPU torch); nvcc_rel: nvcc's
    release ('' when none); env: the user's environment (FORCE_CUDA, TORCH_CUDA_ARCH_LIST);
    torch_archs: torch.cuda.get_arch_list(). mmcv's setup.py compiles CUDA ops when a GPU is
    visible or FORCE_CUDA=1, so a visible GPU always means a CUDA build. Without a visible GPU,
    torch's extension builder picks no architecture (IndexError) unless TORCH_CUDA_ARCH_LIST is
    set: CUDA ops are then built when the user names the GPUs (TORCH_CUDA_ARCH_LIST) or asks for
    them (FORCE_CUDA=1: every architecture of this torch, much longer).
    """
    env = env or {}
    force, archs = env.get('FORCE_CUDA'), env.get('TORCH_CUDA_ARCH_LIST', '')
    if not torch_cuda:
        if cuda_available or force == '1':
            return False, ('torch is a CPU build (torch.version.cuda is None): mmcv cannot '
                           'compile CUDA ops against it; install a CUDA build of torch'), '', ''
        return False, '', 'torch is a CPU build: building CPU ops only', ''
    need = f'nvcc from CUDA {torch_cuda} (torch was built with it)'
    if not (cuda_available or force == '1' or (archs and force != '0')):
        why = ['FORCE_CUDA=0' if force == '0' else
               'no GPU is visible and neither TORCH_CUDA_ARCH_LIST nor FORCE_CUDA=1 is set']
        if not nvcc_rel:
            why.append('no nvcc was found (CUDA_HOME, PATH, /usr/local/cuda)')
        return False, '', (f'torch has CUDA {torch_cuda}, but {"; ".join(why)}: building CPU '
                           'ops only; this wheel cannot run CUDA ops and is cached apart from '
                           f'CUDA builds. For GPUs: {need}, and TORCH_CUDA_ARCH_LIST (e.g. '
                           '"8.0;9.0") or FORCE_CUDA=1 where no GPU is visible'), ''
    if not nvcc_rel:
        return True, (f'CUDA ops are wanted (torch has CUDA {torch_cuda}) but no nvcc was found '
                      f'(CUDA_HOME, PATH, /usr/local/cuda): install {need} and set CUDA_HOME, '
                      'or give a wheel built with CUDA ops (--wheelhouse)'), '', ''
    if nvcc_rel.split('.')[0] != torch_cuda.split('.')[0]:
        return True, (f'nvcc is CUDA {nvcc_rel} but torch was built with CUDA {torch_cuda}: '
                      f'install {need} and point CUDA_HOME at it'), '', ''
    set_archs = '' if archs or cuda_available else arch_list_of(torch_archs)
    if not (archs or cuda_available or set_archs):
        return True, ('no GPU is visible and torch lists no CUDA architecture: set '
                      'TORCH_CUDA_ARCH_LIST to your GPUs\' compute capabilities (e.g. "8.0;9.0")'), '', ''
    return True, '', (f'FORCE_CUDA=1: building CUDA ops with nvcc {nvcc_rel} (torch CUDA '
                      f'{torch_cuda}) for {archs or set_archs or "the visible GPUs"}'), set_archs


def cache_key(torch_version: str, torch_cuda, cuda_ops: bool) -> str:
    """torch-<version>+<cuXYZ|cpu>[-cpu-ops]: a wheel is reused only with the torch build it
    was compiled against, and a CPU-ops wheel never stands in for a CUDA-ops one."""
    public, _, local = torch_version.partition('+')
    local = local or (f'cu{torch_cuda.replace(".", "")}' if torch_cuda else 'cpu')
    suffix = '-cpu-ops' if torch_cuda and not cuda_ops else ''
    return f'torch-{public}+{local}{suffix}'


def cache_dir(root: str, key: str) -> str:
    return os.path.join(os.path.expanduser(root), key)


def wheel_tag() -> str:
    py = f'cp{sys.version_info.major}{sys.version_info.minor}'
    plat = sysconfig.get_platform().replace('-', '_').replace('.', '_')
    return f'{py}-{py}-{plat}'


def find_wheel(dirs) -> str:
    pattern = f'mmcv-{VERSION}-{wheel_tag()}.whl'
    for d in dirs:
        hits = sorted(glob.glob(os.path.join(d, pattern)))
        if hits:
            return hits[0]
    return ''


def needs_cxx20(torch_ver: str) -> bool:
    major, minor = (int(x) for x in torch_ver.split('+')[0].split('.')[:2])
    return (major, minor) >= (2, 10)


def raise_cxx_standard(setup_py_text: str) -> str:
    """mmcv's setup.py with every -std=c++14 / -std=c++17 flag raised to C++20."""
    return re.sub(r'-std=c\+\+1[47]', '-std=c++20', setup_py_text)


def build_env(base_env, jobs: int, cuda_ops: bool, arch_list: str = '') -> dict:
    env = dict(base_env, MMCV_WITH_OPS='1', MAX_JOBS=str(jobs))
    env['FORCE_CUDA'] = '1' if cuda_ops else '0'
    if arch_list:
        env['TORCH_CUDA_ARCH_LIST'] = arch_list
    return env


def download_sdist(dest: str) -> str:
    """mmcv's sdist from the index; pip prepares its metadata in this Python (see above)."""
    if subprocess.run([sys.executable, '-c', 'import pkg_resources'],
                      capture_output=True).returncode:
        sys.exit("install_mmcv: mmcv's setup.py imports pkg_resources, which this Python lacks: "
                 f'{sys.executable} -m pip install "setuptools<81"')
    run([sys.executable, '-m', 'pip', 'download', *PIP_SOURCE_FLAGS, '--no-binary', ':all:',
         f'mmcv=={VERSION}', '-d', dest])
    return os.path.join(dest, f'mmcv-{VERSION}.tar.gz')


def prepare_source(sdist: str, dest: str, torch_ver: str) -> str:
    """Unpack the sdist into dest; raise its C++ standard when torch needs it. Returns the tree."""
    with tarfile.open(sdist) as tar:
        tar.extractall(dest, filter='data')
    src = os.path.join(dest, f'mmcv-{VERSION}')
    if needs_cxx20(torch_ver):
        setup_py = os.path.join(src, 'setup.py')
        with open(setup_py) as f:
            text = f.read()
        with open(setup_py, 'w') as f:
            f.write(raise_cxx_standard(text))
        print(f'install_mmcv: setup.py patched to C++20 for torch {torch_ver}')
    return src


def build_wheel(out_dir: str, torch_ver: str, jobs: int, cuda_ops: bool, arch_list='') -> str:
    os.makedirs(out_dir, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix='mmcv-build-') as tmp:
        src = prepare_source(download_sdist(tmp), tmp, torch_ver)
        run([sys.executable, '-m', 'pip', 'wheel', *PIP_SOURCE_FLAGS, '.', '-w', out_dir],
            cwd=src, env=build_env(os.environ, jobs, cuda_ops, arch_list))
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

    torch = probe_torch()
    problem = mmcv_problem(_probe(_MMCV_PROBE), torch['cuda_available'])
    if not problem:
        print(f'install_mmcv: mmcv {VERSION} with compiled ops is already installed')
        return 0
    print(f'install_mmcv: {problem}')
    home = cuda_home(os.environ) if torch['cuda'] else ''
    cuda_ops, error, note, arch_list = cuda_plan(
        torch['cuda'], torch['cuda_available'], nvcc_release(home) if home else '', os.environ,
        torch.get('archs', []))
    cache = cache_dir(args.cache, cache_key(torch['version'], torch['cuda'], cuda_ops))
    links = [d for d in os.environ.get('PIP_FIND_LINKS', '').split() if os.path.isdir(d)]
    wheel = find_wheel(args.wheelhouse + links + [cache])
    if args.check:
        print(f'install_mmcv: would install wheel {wheel}' if wheel else
              f'install_mmcv: would build mmcv {VERSION} from source for torch '
              f'{torch["version"]} (C++{"20" if needs_cxx20(torch["version"]) else "17"}, '
              f'{"CUDA" if cuda_ops else "CPU"} ops) into {cache}'
              + (f'; cannot: {error}' if error else f'; {note}'))
        return 0
    if not wheel:
        if error:
            sys.exit(f'install_mmcv: {error}')
        print(f'install_mmcv: {note}\ninstall_mmcv: no mmcv {VERSION} wheel for {wheel_tag()} '
              f'in {cache}; building from source (about 20 minutes on 2 cores for CPU ops, '
              'much longer with CUDA ops; cached afterwards)', flush=True)
        wheel = build_wheel(cache, torch['version'], args.jobs, cuda_ops, arch_list)
    run([sys.executable, '-m', 'pip', 'install', '--no-deps', '--force-reinstall', wheel])
    info = _probe(_MMCV_PROBE)
    problem = mmcv_problem(info, torch['cuda_available'])
    if problem:
        sys.exit(f'install_mmcv: {wheel} installed, but {problem}; was it built for another '
                 f'torch than {torch["version"]}, or without CUDA ops? Remove it and run again.')
    # A wheel from a wheelhouse is cached under the key of what it reports, not of the plan.
    kept = cache_dir(args.cache, cache_key(torch['version'], torch['cuda'],
                                           info['cuda'] != 'not available'))
    if os.path.dirname(os.path.abspath(wheel)) != os.path.abspath(kept):
        os.makedirs(kept, exist_ok=True)
        shutil.copy2(wheel, kept)  # for the next install on this machine
    print(f'install_mmcv: mmcv {VERSION} ready ({os.path.basename(wheel)})')
    return 0


if __name__ == '__main__':
    sys.exit(main())
