"""The sweep's tasks: each reads a dataset in its standard layout, names the image lists it
needs features of, and scores one layer's features with a probe of ``probes.py``.

Layouts (the ones our toy generators and the real datasets share):
    segmentation  ADEChallengeData2016: images/{training,validation}/*.jpg + annotations/*.png
    depth         mmseg NYU: images/{train,test}/*.jpg + annotations/*.png (uint16 millimetres)
    classification  {train,val}.jsonl with "image" and "label" (toy imagetext), or an image
                  folder with one sub-folder per class: {train,val}/<class>/*.jpg
    tracking      DAVIS 2017: JPEGImages/480p, Annotations/480p, ImageSets/2017/<split>.txt
"""
import glob
import json
import os.path as osp
from typing import Dict, List, Tuple

import numpy as np
from PIL import Image

from . import probes

Group = Tuple[List[str], Tuple[int, int]]  # image paths, network input size (h, w)


def read_png(path: str) -> np.ndarray:
    if not osp.isfile(path):
        raise FileNotFoundError(f'label map {path} not found')
    return np.asarray(Image.open(path))


def _pairs(root: str, img_dir: str, ann_dir: str) -> Tuple[List[str], List[str]]:
    imgs = sorted(glob.glob(osp.join(root, img_dir, '*.jpg')))
    if not imgs:
        raise FileNotFoundError(f'no .jpg images in {osp.join(root, img_dir)}')
    anns = [osp.join(root, ann_dir, osp.splitext(osp.basename(p))[0] + '.png') for p in imgs]
    missing = [a for a in anns if not osp.isfile(a)]
    if missing:
        raise FileNotFoundError(f'{len(missing)} images without a label map, e.g. {missing[0]}')
    return imgs, anns


class Task:
    """Base: ``groups(patch)`` -> {group: (paths, size)}; ``score(maps)`` with maps per group."""

    name = 'task'
    metric = 'score'
    higher_is_better = True

    def __init__(self, root: str, size: int = 224, max_images: int = 0):
        if not osp.isdir(root):
            raise FileNotFoundError(f'{self.name} data root {root} not found')
        self.root, self.size, self.max_images = root, size, max_images

    def _cap(self, items: list) -> list:
        return items[:self.max_images] if self.max_images else items

    def square(self, patch: int) -> Tuple[int, int]:
        s = max(self.size // patch, 1) * patch
        return s, s


class SegmentationTask(Task):
    """ADE20K-style probe: ids 1..K, 0 = other (ignored when ``reduce_zero_label``)."""

    name, metric = 'segmentation', 'mIoU'

    def __init__(self, root, size=224, max_images=0, num_classes=150, reduce_zero_label=True,
                 splits=('training', 'validation')):
        super().__init__(root, size, max_images)
        self.num_classes, self.reduce_zero_label = num_classes, reduce_zero_label
        self.data = {}
        for split in splits:
            imgs, anns = _pairs(root, f'images/{split}', f'annotations/{split}')
            self.data[split] = (self._cap(imgs), self._cap(anns))
        self.splits = splits

    def labels(self, split: str) -> List[np.ndarray]:
        out = []
        for path in self.data[split][1]:
            lab = read_png(path).astype(np.int64)
            if self.reduce_zero_label:
                lab = np.where(lab == 0, probes.IGNORE + 1, lab) - 1
            out.append(lab)
        return out

    def groups(self, patch: int) -> Dict[str, Group]:
        return {s: (self.data[s][0], self.square(patch)) for s in self.splits}

    def score(self, maps) -> float:
        tr, va = self.splits
        return probes.segmentation_miou(maps[tr], self.labels(tr), maps[va], self.labels(va),
                                        self.num_classes)


class DepthTask(Task):
    """NYU-style depth probe; PNG values times ``scale`` are metres, 0 = invalid."""

    name, metric, higher_is_better = 'depth', 'RMSE', False

    def __init__(self, root, size=224, max_images=0, scale=1e-3, splits=('train', 'test')):
        super().__init__(root, size, max_images)
        self.scale, self.splits = scale, splits
        self.data = {}
        for split in splits:
            imgs, anns = _pairs(root, f'images/{split}', f'annotations/{split}')
            self.data[split] = (self._cap(imgs), self._cap(anns))

    def depths(self, split: str) -> List[np.ndarray]:
        return [read_png(p).astype(np.float64) * self.scale for p in self.data[split][1]]

    def groups(self, patch: int) -> Dict[str, Group]:
        return {s: (self.data[s][0], self.square(patch)) for s in self.splits}

    def score(self, maps) -> float:
        tr, va = self.splits
        return probes.depth_rmse(maps[tr], self.depths(tr), maps[va], self.depths(va))


class ClassificationTask(Task):
    """k-NN on mean-pooled tokens; labels from jsonl ``label`` or class sub-folders."""

    name, metric = 'classification', 'k-NN top-1'

    def __init__(self, root, size=224, max_images=0, k=20, splits=('train', 'val')):
        super().__init__(root, size, max_images)
        self.k, self.splits = k, splits
        self.data = {s: self._read(s) for s in splits}

    def _read(self, split: str) -> Tuple[List[str], List[int]]:
        jsonl = osp.join(self.root, f'{split}.jsonl')
        if osp.isfile(jsonl):
            paths, labels = [], []
            with open(jsonl) as fh:
                for n, line in enumerate(fh, 1):
                    if not line.strip():
                        continue
                    rec = json.loads(line)
                    if 'image' not in rec or not isinstance(rec.get('label'), int):
                        raise KeyError(f'{jsonl} line {n}: needs "image" and an integer "label"')
                    paths.append(osp.join(self.root, rec['image']))
                    labels.append(rec['label'])
        else:
            folder = osp.join(self.root, split)
            classes = sorted(d for d in glob.glob(osp.join(folder, '*')) if osp.isdir(d))
            if not classes:
                raise FileNotFoundError(f'neither {jsonl} nor class folders in {folder}')
            pairs = [(p, c) for c, d in enumerate(classes)
                     for p in sorted(glob.glob(osp.join(d, '*.jpg')) +
                                     glob.glob(osp.join(d, '*.png')))]
            paths, labels = [p for p, _ in pairs], [c for _, c in pairs]
        if not paths:
            raise FileNotFoundError(f'classification split {split} in {self.root} is empty')
        return self._cap(paths), self._cap(labels)

    def groups(self, patch: int) -> Dict[str, Group]:
        return {s: (self.data[s][0], self.square(patch)) for s in self.splits}

    def score(self, maps) -> float:
        tr, va = self.splits
        return probes.knn_accuracy(maps[tr], self.data[tr][1], maps[va], self.data[va][1],
                                   self.k)


class TrackingTask(Task):
    """DAVIS label propagation; frames keep their aspect with short side ``size``."""

    name, metric = 'tracking', 'J&F'

    def __init__(self, root, size=224, max_images=0, split='val', **propagation):
        super().__init__(root, size, max_images)
        from pe_dense.datasets.davis import DavisDataset
        self.dataset = DavisDataset(root, split)
        self.sequences = self._cap(list(self.dataset))
        self.propagation = propagation

    def input_size(self, h: int, w: int, patch: int) -> Tuple[int, int]:
        short = max(self.size // patch, 1) * patch
        long = max(int(self.size * max(h, w) / min(h, w)) // patch, 1) * patch
        return (short, long) if h <= w else (long, short)

    def groups(self, patch: int) -> Dict[str, Group]:
        out = {}
        for seq in self.sequences:
            h, w = read_png(seq.annotations[0]).shape[:2]
            out[seq.name] = (list(seq.images), self.input_size(h, w, patch))
        return out

    def score(self, maps) -> float:
        videos = [(s.name, maps[s.name], self.dataset.load_annotations(s))
                  for s in self.sequences]
        return probes.propagation_jf(videos, **self.propagation)


TASKS = dict(segmentation=SegmentationTask, depth=DepthTask,
             classification=ClassificationTask, tracking=TrackingTask)


def build_task(kind: str, root: str, **kw) -> Task:
    if kind not in TASKS:
        raise ValueError(f'unknown sweep task {kind!r}; choose from {sorted(TASKS)}')
    return TASKS[kind](root, **kw)
