"""pe_dense: Meta's Perception Encoder as a dense-prediction backbone for OpenMMLab."""
from setuptools import find_packages, setup

# Ranges, not pins: GPU users keep their own torch / CUDA build. The Makefile installs the
# tested versions (torch 2.14.1, torchvision 0.29.1, mmcv 2.1.0, mmengine 0.10.7, mmdet 3.3.0,
# mmsegmentation 1.2.2, sam2 1.1.0).
INSTALL_REQUIRES = [
    'torch>=2.1',
    'torchvision>=0.16',
    'mmengine>=0.10.7,<0.11',
    'mmcv>=2.1.0,<2.2',
    'mmdet>=3.3.0,<3.4',
    'mmsegmentation>=1.2.2,<1.3',
    'timm>=1.0.16',
    'open_clip_torch>=2.24',
    'safetensors>=0.4',
    'pycocotools>=2.0.7',
    'scipy>=1.10',
    'scikit-image>=0.22',
    'opencv-python-headless>=4.8',
    'albumentations>=1.4',
    'tensorboard>=2.14',
    'matplotlib>=3.7',
    'ftfy>=6.1',
    'regex>=2023.0',
    'tqdm>=4.65',
    'numpy>=1.24',
    'setuptools<81',  # mmengine 0.10.7 imports pkg_resources, gone from setuptools >= 81
]

setup(
    name='pe_dense',
    version='0.1.0',
    description="Meta's Perception Encoder as an MMEngine / MMDetection / MMSegmentation backbone",
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['pe_dense', 'pe_dense.*']),
    python_requires='>=3.9',
    install_requires=INSTALL_REQUIRES,
    extras_require={
        # sam2 needs SAM2_BUILD_CUDA=0 and --no-build-isolation on CPU machines: see docs/install.md
        'sam': ['sam2>=1.1.0'],
        'lvis': ['lvis>=0.5.3'],  # LVIS evaluation (mmdet's LVISMetric); pure Python
        'test': ['pytest>=7'],
    },
)
