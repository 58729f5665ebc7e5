"""An epoch loop whose mid-epoch checkpoints resume at the next batch.

MMEngine's ``EpochBasedTrainLoop`` restarts a resumed epoch from its first batch, so a
checkpoint taken inside an epoch (``CheckpointHook(by_epoch=False)``) replays the batches it
already trained on and ends the epoch with extra iterations. For detectors whose epochs last
hours that makes mid-epoch checkpoints useless. This loop skips the trained batches by index,
without loading them, so the resumed run continues with exactly the batches (and, with
``RNGStateHook``, the random draws) of the uninterrupted run.
"""
from mmengine.registry import LOOPS
from mmengine.runner import EpochBasedTrainLoop
from torch.utils.data import DataLoader


class _SkipBatches:
    """The index batches of ``batch_sampler`` after its first ``count``; nothing is loaded."""

    def __init__(self, batch_sampler, count: int):
        self.batch_sampler, self.count = batch_sampler, count

    def __iter__(self):
        for i, batch in enumerate(self.batch_sampler):
            if i >= self.count:
                yield batch

    def __len__(self):
        return max(len(self.batch_sampler) - self.count, 0)


def _resumed_loader(loader: DataLoader, skip: int) -> DataLoader:
    """A loader over the same dataset, workers and collate that starts at batch ``skip``."""
    kwargs = dict(num_workers=loader.num_workers, collate_fn=loader.collate_fn,
                  pin_memory=loader.pin_memory, timeout=loader.timeout,
                  worker_init_fn=loader.worker_init_fn, generator=loader.generator,
                  multiprocessing_context=loader.multiprocessing_context)
    if loader.num_workers > 0:
        kwargs.update(prefetch_factor=loader.prefetch_factor, persistent_workers=False)
    return DataLoader(loader.dataset, batch_sampler=_SkipBatches(loader.batch_sampler, skip),
                      **kwargs)


@LOOPS.register_module()
class ResumableEpochBasedTrainLoop(EpochBasedTrainLoop):
    """``EpochBasedTrainLoop`` that resumes a mid-epoch checkpoint at the following batch."""

    def run_epoch(self) -> None:
        done = self._iter - self._epoch * len(self.dataloader)
        if not 0 < done < len(self.dataloader):
            return super().run_epoch()
        self.runner.call_hook('before_train_epoch')  # sampler epoch set, RNG states restored
        self.runner.model.train()
        for idx, data_batch in enumerate(_resumed_loader(self.dataloader, done), start=done):
            self.run_iter(idx, data_batch)
        self.runner.call_hook('after_train_epoch')
        self._epoch += 1
