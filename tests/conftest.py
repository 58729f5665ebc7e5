"""Test isolation: MMEngine's DefaultScope is process-global. A test that builds a Runner (or
calls init_default_scope) leaves its scope current, and registry look-ups in later tests then
resolve in that library (mmdet's CrossEntropyLoss instead of mmseg's, say). Every test starts
with no current scope, as a fresh process would, and leaves none behind."""
import pytest
from mmengine.registry import DefaultScope


@pytest.fixture(autouse=True)
def _fresh_default_scope():
    saved = dict(DefaultScope._instance_dict)
    DefaultScope._instance_dict.clear()
    yield
    DefaultScope._instance_dict.clear()
    DefaultScope._instance_dict.update(saved)
