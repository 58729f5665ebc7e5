# Two commands on a fresh machine:  make demo  |  make test
# Both create .venv, install the tested stack (mmcv built from source when no wheel matches,
# and cached in ~/.cache/pe_dense/wheels), then run the demo or the test suite.
PYTHON ?= python3
# A fixed hash seed keeps set/dict-of-str iteration identical between runs, so logs and
# generated files compare byte for byte. A seed given in the environment wins.
export PYTHONHASHSEED ?= 0
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.pe_dense_installed
# The main job on an embedded default: toy DETA (generate data, train, evaluate, draw).
DEMO ?= scripts/demo.sh

.PHONY: install demo test test-fast miniature clean-venv check-fresh-install

install: $(STAMP)

$(STAMP): setup.py Makefile scripts/install_mmcv.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip wheel "setuptools<81"
	$(PIP) install torch==2.14.1 torchvision==0.29.1
	$(PIP) install mmengine==0.10.7 addict yapf packaging pyyaml Pillow \
		opencv-python-headless
	$(PY) scripts/install_mmcv.py
	$(PIP) install mmdet==3.3.0 mmsegmentation==1.2.2 "timm>=1.0.16,<1.1" open_clip_torch \
		pycocotools albumentations tensorboard scikit-image scipy safetensors ftfy regex \
		matplotlib tqdm pytest webdataset
	SAM2_BUILD_CUDA=0 $(PIP) install --no-build-isolation sam2==1.1.0
	# LVIS evaluation; --no-deps: lvis 0.5.3 asks for opencv-python and Cython, neither needed
	$(PIP) install --no-deps lvis==0.5.3
	$(PIP) install --no-deps --no-build-isolation -e .
	$(PY) -c "import pe_dense.all, mmcv.ops, mmdet, mmseg, sam2, lvis; print('pe_dense stack ready')"
	touch $(STAMP)

demo: install
	PYTHON=$(PY) bash $(DEMO)

test: install
	$(PY) -m pytest tests -q

test-fast: install
	$(PY) -m pytest tests -q -m "not slow"

# The paper in miniature (docs/paper_miniature.md): toy PE-Core CLIP -> layer sweep -> spatial
# alignment to its best intermediate block -> sweep again, 3 seeds, into work_dirs/paper_miniature.
miniature: install
	$(PY) tools/paper_miniature.py --seeds 0 1 2

clean-venv:
	rm -rf $(VENV)

# The whole bare-machine path (temporary clone, HOME and venv, no wheelhouse, mmcv built from
# source, then make demo), timed. Tests the committed HEAD.
check-fresh-install:
	bash scripts/check_fresh_install.sh
