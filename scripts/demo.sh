#!/usr/bin/env bash
# `make demo`: the main job on an embedded default. Generates the toy COCO set (real pictures
# from scikit-image with drawn objects), trains a small DETA on a PE-T-shaped backbone from
# scratch on CPU, evaluates it with pycocotools (tools/test.py prints the AP table) and draws
# the detections into work_dirs/pe_deta_toy/show/.
set -euo pipefail
PYTHON=${PYTHON:-.venv/bin/python}
CONFIG=configs/demo/pe_deta_toy.py
WORK=work_dirs/pe_deta_toy
"$PYTHON" tools/make_toy_data.py coco --out data/toy_coco --num-train 256 --num-val 32
"$PYTHON" tools/train.py "$CONFIG" --work-dir "$WORK"
CKPT=$("$PYTHON" -c "from pe_dense.engine.atomic_io import find_resumable_checkpoint as f; print(f('$WORK'))")
"$PYTHON" tools/test.py "$CONFIG" "$CKPT" --work-dir "$WORK" --show-dir "$WORK/show"
"$PYTHON" tools/infer.py "$CONFIG" "$CKPT" data/toy_coco/val2017 --out-dir "$WORK/infer" \
  --ann-file data/toy_coco/annotations/instances_val2017.json
echo "demo: pictures in $WORK/show and $WORK/infer/vis, detections in $WORK/infer/detections.json"
