"""Test isolation: MMEngine's DefaultScope is process-global; a test that builds a Runner leaves
its scope current and later registry look-ups in other tests then resolve in that scope."""
import pytest
from mmengine.registry import DefaultScope


@pytest.fixture(autouse=True)
def _restore_default_scope():
    before = dict(DefaultScope._instance_dict)
    yield
    DefaultScope._instance_dict.clear()
    DefaultScope._instance_dict.update(before)
