"""scripts/install_mmcv.py: which path it takes (wheelhouse, cache, source build) and the patch."""
import importlib.util
import os
import subprocess
import sys

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


def test_cache_is_keyed_by_torch_version(tmp_path):
    assert install_mmcv.cache_dir(str(tmp_path), '2.14.1').endswith('torch-2.14.1')


def test_check_mode_reports_the_installed_mmcv():
    out = subprocess.run([sys.executable, os.path.join(ROOT, 'scripts', 'install_mmcv.py'),
                          '--check'], capture_output=True, text=True, check=True)
    assert 'already installed' in out.stdout
