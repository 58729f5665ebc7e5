"""A hook that sleeps after each iteration, so a test can SIGKILL a tiny run mid-interval."""
import time

from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module(force=True)
class SleepAfterIterHook(Hook):
    def __init__(self, seconds: float = 0.5):
        self.seconds = seconds

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        time.sleep(self.seconds)
