"""scripts/install_mmcv.py: which path it takes (wheelhouse, cache, source build), the C++
patch, and each CUDA decision (fed fake torch builds, nvcc releases and environments)."""
import importlib.util
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
spec = importlib.util.spec_from_file_location('install_mmcv',
                                              os.path.join(ROOT, 'scripts', 'install_mmcv.py'))
install_mmcv = importlib.util.module_from_spec(spec)
spec.loader.exec_module(install_mmcv)


def test_cxx_standard_is_raised_to_20():
    text = "extra_compile_args = {'cxx': ['-std=c++14']}\nflags = ['-std=c++17', '-O3']"
    out = install_mmcv.raise_cxx_standard(text)
    assert '-std=c++14' not in out and '-std=c++17' not in out and out.count('-std=c++20') == 2
    assert install_mmcv.needs_cxx20('2.14.1') and not install_mmcv.needs_cxx20('2.9.1')
    assert install_mmcv.needs_cxx20('2.10.0+cu128') and not install_mmcv.needs_cxx20('1.13.1+cpu')


def test_wheelhouse_then_cache_are_searched_for_this_python_and_platform(tmp_path):
    house, cache = tmp_path / 'house', tmp_path / 'cache'
    house.mkdir()
    cache.mkdir()
    name = f'mmcv-2.1.0-{install_mmcv.wheel_tag()}.whl'
    (house / 'mmcv-2.1.0-cp27-cp27-win32.whl').write_bytes(b'')
    assert install_mmcv.find_wheel([str(house), str(cache)]) == ''
    (cache / name).write_bytes(b'')
    assert install_mmcv.find_wheel([str(house), str(cache)]) == str(cache / name)
    (house / name).write_bytes(b'')
    assert install_mmcv.find_wheel([str(house), str(cache)]) == str(house / name)


@pytest.mark.parametrize('version, cuda, cuda_ops, key', [
    ('2.14.1+cu130', '13.0', True, 'torch-2.14.1+cu130'),
    ('2.14.1', '12.8', True, 'torch-2.14.1+cu128'),      # PyPI's CUDA torch has no local tag
    ('2.14.1+cu130', '13.0', False, 'torch-2.14.1+cu130-cpu-ops'),
    ('2.14.1+cpu', None, False, 'torch-2.14.1+cpu'),
    ('2.14.1', None, False, 'torch-2.14.1+cpu'),
])
def test_cache_key_is_the_full_torch_build_and_the_ops_kind(tmp_path, version, cuda, cuda_ops,
                                                            key):
    assert install_mmcv.cache_key(version, cuda, cuda_ops) == key
    assert install_mmcv.cache_dir(str(tmp_path), key) == str(tmp_path / key)


def test_cpu_and_cuda_builds_of_one_torch_never_share_a_cache_folder():
    keys = {install_mmcv.cache_key('2.14.1', c, o)
            for c, o in [(None, False), ('12.8', True), ('12.8', False), ('13.0', True)]}
    assert len(keys) == 4


ARCHS = ['sm_75', 'sm_80', 'sm_86', 'sm_90', 'sm_100', 'sm_120']  # torch 2.14.1+cu130's list


def test_arch_list_of_torch_archs():
    assert install_mmcv.arch_list_of(ARCHS) == '7.5;8.0;8.6;9.0;10.0;12.0+PTX'
    assert install_mmcv.arch_list_of(['sm_90a', 'compute_90', 'sm_80']) == '8.0;9.0+PTX'
    assert install_mmcv.arch_list_of([]) == ''


def test_cuda_plan_on_a_gpu_node_with_a_matching_nvcc_builds_cuda_ops_for_its_gpus():
    cuda_ops, error, note, archs = install_mmcv.cuda_plan('13.0', True, '13.0', {}, ARCHS)
    assert (cuda_ops, error, archs) == (True, '', '')  # torch picks the visible GPUs' archs
    assert 'FORCE_CUDA=1' in note and 'the visible GPUs' in note
    # a minor mismatch only makes torch warn; FORCE_CUDA=0 cannot stop mmcv when a GPU is seen
    assert install_mmcv.cuda_plan('12.8', True, '12.4', {'FORCE_CUDA': '0'})[:2] == (True, '')


def test_cuda_plan_without_a_gpu_builds_cuda_ops_only_when_asked():
    plan = install_mmcv.cuda_plan
    cuda_ops, error, note, archs = plan('13.0', False, '13.0', {}, ARCHS)
    assert (cuda_ops, error, archs) == (False, '', '')
    assert 'no GPU is visible' in note and 'CPU ops only' in note and 'TORCH_CUDA_ARCH_LIST' in note
    # asked with the GPUs named: their list is kept
    assert plan('13.0', False, '13.0', {'TORCH_CUDA_ARCH_LIST': '9.0'}, ARCHS)[::2] == (
        True, 'FORCE_CUDA=1: building CUDA ops with nvcc 13.0 (torch CUDA 13.0) for 9.0')
    assert plan('13.0', False, '13.0', {'TORCH_CUDA_ARCH_LIST': '9.0'}, ARCHS)[3] == ''
    # asked with FORCE_CUDA=1: every architecture of this torch (torch itself would IndexError)
    assert plan('13.0', False, '13.0', {'FORCE_CUDA': '1'}, ARCHS)[:2] == (True, '')
    assert plan('13.0', False, '13.0', {'FORCE_CUDA': '1'}, ARCHS)[3] == '7.5;8.0;8.6;9.0;10.0;12.0+PTX'
    assert 'TORCH_CUDA_ARCH_LIST' in plan('13.0', False, '13.0', {'FORCE_CUDA': '1'}, [])[1]
    # FORCE_CUDA=0 wins over a list
    env = {'FORCE_CUDA': '0', 'TORCH_CUDA_ARCH_LIST': '9.0'}
    cuda_ops, error, note, _ = plan('13.0', False, '13.0', env, ARCHS)
    assert not cuda_ops and not error and 'FORCE_CUDA=0' in note


def test_cuda_plan_without_nvcc_builds_cpu_ops_on_a_cpu_node_and_refuses_on_a_gpu_node():
    cuda_ops, error, note, _ = install_mmcv.cuda_plan('13.0', False, '', {}, ARCHS)
    assert not cuda_ops and not error
    assert 'no nvcc' in note and 'CUDA 13.0' in note and 'CPU ops only' in note
    for gpu, env in [(True, {}), (False, {'FORCE_CUDA': '1'})]:
        cuda_ops, error, _, _ = install_mmcv.cuda_plan('13.0', gpu, '', env, ARCHS)
        assert cuda_ops and 'no nvcc' in error and 'CUDA 13.0' in error and 'CUDA_HOME' in error


def test_cuda_plan_refuses_an_nvcc_of_another_major_release():
    cuda_ops, error, _, _ = install_mmcv.cuda_plan('13.0', True, '12.4')
    assert cuda_ops and 'nvcc is CUDA 12.4' in error and 'CUDA 13.0' in error


def test_cuda_plan_for_a_cpu_torch():
    assert install_mmcv.cuda_plan(None, False, '13.0') == (
        False, '', 'torch is a CPU build: building CPU ops only', '')
    for gpu, env in [(True, {}), (False, {'FORCE_CUDA': '1'})]:
        cuda_ops, error, _, _ = install_mmcv.cuda_plan(None, gpu, '13.0', env)
        assert not cuda_ops and 'CPU build' in error


def test_build_env_sets_force_cuda_and_archs_from_the_plan():
    base = {'PATH': '/bin', 'FORCE_CUDA': '1'}
    env = install_mmcv.build_env(base, 3, cuda_ops=False)
    assert env == {'PATH': '/bin', 'FORCE_CUDA': '0', 'MMCV_WITH_OPS': '1', 'MAX_JOBS': '3'}
    env = install_mmcv.build_env({}, 2, cuda_ops=True, arch_list='8.0+PTX')
    assert (env['FORCE_CUDA'], env['TORCH_CUDA_ARCH_LIST']) == ('1', '8.0+PTX')
    assert base['FORCE_CUDA'] == '1'


def test_cuda_home_is_searched_as_torch_does():
    def exists(path):
        return path in {'/opt/cuda-12.8/bin/nvcc', '/usr/local/cuda/bin/nvcc'}

    def which(name):
        return None

    home = install_mmcv.cuda_home
    assert home({'CUDA_HOME': '/opt/cuda-12.8'}, which, exists) == '/opt/cuda-12.8'
    assert home({'CUDA_PATH': '/opt/cuda-12.8'}, which, exists) == '/opt/cuda-12.8'
    assert home({'CUDA_HOME': '/opt/none'}, which, exists) == ''
    assert home({}, lambda n: '/opt/cuda-12.8/bin/nvcc', exists) == '/opt/cuda-12.8'
    assert home({}, which, exists) == '/usr/local/cuda'
    assert home({}, which, lambda p: False) == ''


def test_nvcc_release_is_read_from_nvcc_version(tmp_path):
    (tmp_path / 'bin').mkdir()
    nvcc = tmp_path / 'bin' / 'nvcc'
    nvcc.write_text('#!/bin/sh\necho "nvcc: NVIDIA (R) Cuda compiler driver"\n'
                    'echo "Cuda compilation tools, release 12.8, V12.8.93"\n')
    nvcc.chmod(0o755)
    assert install_mmcv.nvcc_release(str(tmp_path)) == '12.8'


@pytest.mark.parametrize('info, gpu, words', [
    (None, False, 'does not import'),
    ({'version': '2.0.1', 'cuda': 'not available'}, False, 'mmcv 2.0.1'),
    ({'version': '2.1.0', 'cuda': 'not available', 'cuda_op': None}, True, 'without CUDA'),
    ({'version': '2.1.0', 'cuda': '12.8', 'cuda_op': 'RuntimeError: no kernel image'}, True,
     'no kernel image'),
])
def test_mmcv_problem_names_what_is_wrong(info, gpu, words):
    assert words in install_mmcv.mmcv_problem(info, gpu)


def test_mmcv_problem_accepts_cpu_ops_without_a_gpu_and_cuda_ops_that_run():
    assert install_mmcv.mmcv_problem({'version': '2.1.0', 'cuda': 'not available'}, False) == ''
    assert install_mmcv.mmcv_problem({'version': '2.1.0', 'cuda': '12.8', 'cuda_op': 'ok'},
                                     True) == ''


def _fake_machine(monkeypatch, torch, probes, nvcc='13.0'):
    """install_mmcv.main on a pretend machine: torch build, successive mmcv probe results."""
    probes = list(probes)
    calls = []
    monkeypatch.setattr(install_mmcv, '_probe', lambda code: (
        torch if code == install_mmcv._TORCH_PROBE else probes.pop(0)))
    monkeypatch.setattr(install_mmcv, 'cuda_home', lambda env: '/cuda' if nvcc else '')
    monkeypatch.setattr(install_mmcv, 'nvcc_release', lambda home: nvcc)
    monkeypatch.setattr(install_mmcv, 'run', lambda cmd, **kw: calls.append(cmd))
    monkeypatch.delenv('PIP_FIND_LINKS', raising=False)
    monkeypatch.delenv('FORCE_CUDA', raising=False)
    monkeypatch.delenv('TORCH_CUDA_ARCH_LIST', raising=False)
    return calls


GPU_TORCH = {'version': '2.14.1+cu130', 'cuda': '13.0', 'cuda_available': True,
             'archs': ARCHS}
CPU_OPS = {'version': '2.1.0', 'cuda': 'not available', 'cuda_op': None}
CUDA_OPS = {'version': '2.1.0', 'cuda': '13.0', 'cuda_op': 'ok'}


def test_gpu_node_with_cpu_only_mmcv_builds_cuda_ops_into_the_cuda_key(monkeypatch, tmp_path):
    calls = _fake_machine(monkeypatch, GPU_TORCH, [CPU_OPS, CUDA_OPS])
    built = []

    def build(out_dir, torch_ver, jobs, cuda_ops, arch_list):
        built.append((out_dir, cuda_ops))
        wheel = os.path.join(out_dir, f'mmcv-2.1.0-{install_mmcv.wheel_tag()}.whl')
        os.makedirs(out_dir, exist_ok=True)
        open(wheel, 'wb').close()
        return wheel

    monkeypatch.setattr(install_mmcv, 'build_wheel', build)
    assert install_mmcv.main(['--cache', str(tmp_path)]) == 0
    assert built == [(str(tmp_path / 'torch-2.14.1+cu130'), True)]
    assert calls[0][-3:] == ['--no-deps', '--force-reinstall', built[0][0] + '/' +
                             f'mmcv-2.1.0-{install_mmcv.wheel_tag()}.whl']


def test_gpu_node_fails_clearly_when_the_installed_wheel_has_no_cuda_ops(monkeypatch, tmp_path):
    house = tmp_path / 'house'
    house.mkdir()
    (house / f'mmcv-2.1.0-{install_mmcv.wheel_tag()}.whl').write_bytes(b'')
    _fake_machine(monkeypatch, GPU_TORCH, [None, CPU_OPS])
    with pytest.raises(SystemExit) as exc:
        install_mmcv.main(['--cache', str(tmp_path / 'cache'), '--wheelhouse', str(house)])
    assert 'compiled without CUDA' in str(exc.value)
    assert not (tmp_path / 'cache').exists()  # a refused wheel is not cached


def test_gpu_node_without_nvcc_refuses_to_build(monkeypatch, tmp_path):
    _fake_machine(monkeypatch, GPU_TORCH, [None], nvcc='')
    monkeypatch.setattr(install_mmcv, 'build_wheel', lambda *a: pytest.fail('built'))
    with pytest.raises(SystemExit) as exc:
        install_mmcv.main(['--cache', str(tmp_path)])
    assert 'no nvcc' in str(exc.value) and 'CUDA 13.0' in str(exc.value)


def test_a_wheelhouse_wheel_is_cached_under_the_key_of_what_it_reports(monkeypatch, tmp_path):
    house = tmp_path / 'house'
    house.mkdir()
    name = f'mmcv-2.1.0-{install_mmcv.wheel_tag()}.whl'
    (house / name).write_bytes(b'x')
    torch = dict(GPU_TORCH, cuda_available=False)  # CUDA torch, nvcc, no GPU: CUDA if asked
    _fake_machine(monkeypatch, torch, [None, CUDA_OPS])
    monkeypatch.setenv('FORCE_CUDA', '1')
    assert install_mmcv.main(['--cache', str(tmp_path / 'c'), '--wheelhouse', str(house)]) == 0
    assert os.listdir(tmp_path / 'c') == ['torch-2.14.1+cu130']


def test_a_cpu_ops_wheelhouse_wheel_is_not_cached_as_a_cuda_build(monkeypatch, tmp_path):
    house = tmp_path / 'house'
    house.mkdir()
    (house / f'mmcv-2.1.0-{install_mmcv.wheel_tag()}.whl').write_bytes(b'x')
    _fake_machine(monkeypatch, dict(GPU_TORCH, cuda_available=False), [None, CPU_OPS])
    monkeypatch.setenv('FORCE_CUDA', '1')  # the plan says CUDA ops, the wheel has CPU ops
    assert install_mmcv.main(['--cache', str(tmp_path / 'c'), '--wheelhouse', str(house)]) == 0
    assert os.listdir(tmp_path / 'c') == ['torch-2.14.1+cu130-cpu-ops']


def test_check_mode_reports_the_installed_mmcv():
    out = subprocess.run([sys.executable, os.path.join(ROOT, 'scripts', 'install_mmcv.py'),
                          '--check'], capture_output=True, text=True, check=True)
    assert 'already installed' in out.stdout


def test_torch_probe_reads_the_real_torch():
    import torch
    info = install_mmcv._probe(install_mmcv._TORCH_PROBE)
    assert info == {'version': torch.__version__,
                                            'cuda': torch.version.cuda,
                                            'cuda_available': torch.cuda.is_available(),
                                            'archs': torch.cuda.get_arch_list()}
