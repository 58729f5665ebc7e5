"""pe_dense: Meta's Perception Encoder as a dense-prediction backbone for OpenMMLab."""
import os
import os.path as osp
import shutil
import sys

from setuptools import find_packages, setup

# Ranges, not pins: GPU users keep their own torch / CUDA build. The Makefile installs the
# tested versions (torch 2.14.1, torchvision 0.29.1, mmcv 2.1.0, mmengine 0.10.7, mmdet 3.3.0,
# mmsegmentation 1.2.2, sam2 1.1.0).
# The plain package is the backbone: `custom_imports=dict(imports=['pe_dense.backbone'])` needs
# only these (safetensors is read directly; mmengine 0.10.7 imports pkg_resources, gone from
# setuptools >= 81).
INSTALL_REQUIRES = [
    'torch>=2.1',
    'mmengine>=0.10.7,<0.11',
    'timm>=1.0.16',
    'safetensors>=0.4',
    'numpy>=1.24',
    'setuptools<81',
]
# Shared by every task part: mmcv's transforms / cnn (no compiled ops needed outside [det]),
# OpenCV, tqdm progress bars, and TensorBoard (the configs' visualisation backend).
_TASK = ['torchvision>=0.16', 'mmcv>=2.1.0,<2.2', 'opencv-python-headless>=4.8', 'tqdm>=4.65',
         'tensorboard>=2.14']
EXTRAS_REQUIRE = {
    # pe_dense.det: DETA, COCO; scikit-image draws the toy detection set (make demo)
    'det': _TASK + ['mmdet>=3.3.0,<3.4', 'pycocotools>=2.0.7', 'scikit-image>=0.22'],
    # pe_dense.seg: ADE20k / NYU heads, DAVIS (scikit-image), layer analysis plots (matplotlib)
    'seg': _TASK + ['mmsegmentation>=1.2.2,<1.3', 'scikit-image>=0.22', 'matplotlib>=3.7'],
    # pe_dense.align: SAM 2.1 teacher; sam2 needs SAM2_BUILD_CUDA=0 and --no-build-isolation
    # on CPU machines (docs/install.md)
    'align': _TASK + ['sam2>=1.1.0'],
    # pe_dense.core: PE-Core CLIP (open_clip's tokenizer)
    'core': _TASK + ['open_clip_torch>=2.24'],
    # the custom-dataset template's opt-in photometric augmentation (mmdet's Albu)
    'albu': ['albumentations>=1.4'],
}
EXTRAS_REQUIRE['sam'] = ['sam2>=1.1.0']
EXTRAS_REQUIRE['all'] = sorted({r for k in ('det', 'seg', 'align', 'core') for r in EXTRAS_REQUIRE[k]})
# the suite also runs the Albu template test and checks toy labels with scipy.ndimage
EXTRAS_REQUIRE['test'] = ['pytest>=7', 'albumentations>=1.4', 'scipy>=1.10']

MIM_FILES = ['configs', 'tools', 'model-index.yml']


def add_mim_extension():
    """Ship configs, tools and model-index.yml inside the package as ``pe_dense/.mim``, the
    OpenMMLab layout: ``_base_ = ['pe_dense::_base_/backbones/pe_spatial_t16.py']`` and ``mim``
    find them in an installed pe_dense. Editable installs get symlinks, built ones copies."""
    if any(cmd in sys.argv for cmd in ('develop', 'editable_wheel')):
        mode = 'copy' if os.name == 'nt' else 'symlink'
    elif any(cmd in sys.argv for cmd in ('sdist', 'bdist_wheel', 'build', 'build_py')):
        mode = 'copy'
    else:
        return
    here = osp.dirname(osp.abspath(__file__))
    mim = osp.join(here, 'pe_dense', '.mim')
    os.makedirs(mim, exist_ok=True)
    for name in MIM_FILES:
        src, dst = osp.join(here, name), osp.join(mim, name)
        if osp.islink(dst) or osp.isfile(dst):
            os.remove(dst)
        elif osp.isdir(dst):
            shutil.rmtree(dst)
        if mode == 'symlink':
            os.symlink(osp.relpath(src, mim), dst)
        elif osp.isdir(src):
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))
        else:
            shutil.copyfile(src, dst)


add_mim_extension()
setup(
    name='pe_dense',
    version='0.1.0',
    description="Meta's Perception Encoder as an MMEngine / MMDetection / MMSegmentation backbone",
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['pe_dense', 'pe_dense.*']),
    package_data={'pe_dense': ['.mim/model-index.yml', '.mim/configs/**/*.py',
                               '.mim/configs/**/*.yml', '.mim/tools/**/*.py',
                               '.mim/tools/*.sh']},
    python_requires='>=3.9',
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS_REQUIRE,
)
