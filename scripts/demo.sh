#!/usr/bin/env bash
# `make demo`: the backbone feature demo on a real picture (the toy DETA run replaces this
# once the detection issue lands).
set -euo pipefail
PYTHON=${PYTHON:-.venv/bin/python}
"$PYTHON" tools/demo_features.py skimage:astronaut --arch PE-Spatial-T16-512 --layers 3 7 -1
