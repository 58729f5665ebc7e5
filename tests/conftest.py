"""Test isolation for MMEngine's process-global singletons (``ManagerMixin`` instances).

* DefaultScope: a test that builds a Runner (or calls init_default_scope) leaves its scope
  current, and registry look-ups in later tests then resolve in that library (mmdet's
  CrossEntropyLoss instead of mmseg's, say).
* Visualizer / logger / message hub instances are keyed by the run's timestamp: two Runners
  built in the same second share one Visualizer, and the second run's events land in the first
  run's work_dir.
Every test starts with none of them, as a fresh process would, and leaves none behind.

Random inputs: every test starts from seed 0 for torch, numpy and ``random``, so a test's
random tensors are the same whatever ran before it (tests may still seed explicitly).
"""
import random

import numpy as np
import pytest
import torch
from mmengine.registry import DefaultScope
from mmengine.utils import ManagerMixin


def _managed_classes(cls=ManagerMixin):
    for sub in cls.__subclasses__():
        yield sub
        yield from _managed_classes(sub)


def _clear_instances():
    for cls in _managed_classes():
        if '_instance_dict' in vars(cls):
            cls._instance_dict.clear()


@pytest.fixture(autouse=True)
def _fresh_mmengine_singletons():
    saved = dict(DefaultScope._instance_dict)
    _clear_instances()
    yield
    _clear_instances()
    DefaultScope._instance_dict.update(saved)


@pytest.fixture(autouse=True)
def _seeded_rngs():
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
