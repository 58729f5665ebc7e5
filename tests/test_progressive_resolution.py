"""ProgressiveResolutionHook changes the training input size at the scheduled iterations, in both
'preprocessor' and 'pipeline' mode, inside a real MMEngine Runner; in 'pipeline' mode the crop of
every stage is cut from the source picture at the stage's size, with persistent worker processes
and across a resume."""
import json

import cv2
import numpy as np
import pytest
import torch
from mmengine.model import BaseModel
from PIL import Image
from mmengine.registry import MODELS, OPTIMIZERS
from mmengine.runner import Runner

import pe_dense.all  # noqa: F401  registers every component
from pe_dense.engine.hooks import ProgressiveResolutionHook
from tests.fixtures.global_state import checkpoint_io  # noqa: F401  (fixture: resume as the tools do)


@MODELS.register_module()
class _SizeRecorder(BaseModel):
    """Records the input size of every training batch."""

    def __init__(self, data_preprocessor=None):
        super().__init__(data_preprocessor=data_preprocessor)
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.sizes, self.fed = [], []

    def forward(self, inputs, data_samples=None, mode='loss'):
        self.sizes.append(tuple(inputs.shape[-2:]))
        self.fed.append((inputs.clone(), data_samples['sample_idx'].tolist()))
        return dict(loss=self.w.sum() * 0 + inputs.float().mean() * self.w.sum())


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp('prog')
    rows = []
    for i in range(4):
        cv2.imwrite(str(root / f'{i}.jpg'), np.full((40, 40, 3), 60 * i, np.uint8))
        rows.append(json.dumps(dict(image=f'{i}.jpg', caption=f'picture {i}')))
    (root / 'train.jsonl').write_text('\n'.join(rows))
    return root


def _runner(root, tmp_path, target, pipeline=None, max_iters=7, workers=0, **kwargs):
    pipeline = pipeline or [dict(type='ClipLoadImage'), dict(type='ClipResize', scale=40),
                            dict(type='PackClipInputs')]
    loader = dict(batch_size=2, num_workers=workers, persistent_workers=workers > 0,
                  sampler=dict(type='InfiniteSampler', shuffle=False),
                  collate_fn=dict(type='default_collate'),
                  dataset=dict(type='ImageTextDataset', data_root=str(root),
                               ann_file='train.jsonl', pipeline=pipeline))
    return Runner(
        model=dict(type='_SizeRecorder', data_preprocessor=dict(type='ClipDataPreprocessor')),
        work_dir=str(tmp_path), train_dataloader=loader,
        optim_wrapper=dict(optimizer=dict(type='Lamb', lr=1e-3)),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        custom_hooks=[dict(type='ProgressiveResolutionHook', target=target,
                           schedule=[(0, 16), (2, 24), (5, 32)])],
        default_hooks=dict(checkpoint=None, logger=dict(type='LoggerHook', interval=100)),
        randomness=dict(seed=0), **kwargs)


@pytest.mark.parametrize('target', ['preprocessor', 'pipeline'])
def test_size_changes_at_scheduled_iterations(data_dir, tmp_path, target):
    runner = _runner(data_dir, tmp_path, target)
    runner.train()
    sizes = [s[0] for s in runner.model.sizes]
    assert sizes == [16, 16, 24, 24, 24, 32, 32]
    from timm.optim import Lamb
    assert issubclass(OPTIMIZERS.get('Lamb'), Lamb)  # timm's LAMB (pe_dense/engine/optimizers)


@pytest.fixture(scope='module')
def photo_dir(tmp_path_factory):
    """Non-square noise pictures (45 x 70): any resampling of a smaller crop would blur them."""
    root = tmp_path_factory.mktemp('photos')
    rng = np.random.default_rng(0)
    rows = []
    for i in range(4):
        cv2.imwrite(str(root / f'{i}.png'), rng.integers(0, 256, (45, 70, 3), dtype=np.uint8))
        rows.append(json.dumps(dict(image=f'{i}.png', caption=f'picture {i}')))
    (root / 'train.jsonl').write_text('\n'.join(rows))
    return root


# the whole picture (area 1, its own aspect): the crop is the source, resized once to the size
WHOLE_CROP = [dict(type='ClipLoadImage'),
              dict(type='ClipRandomResizedCrop', size=224, scale=(1.0, 1.0),
                   ratio=(70 / 45, 70 / 45)),
              dict(type='PackClipInputs')]


def _direct_crop(root, idx, size):
    """Oracle: the source picture resized straight to ``size`` with PIL's bilinear filter."""
    rgb = np.asarray(Image.open(root / f'{idx}.png').convert('RGB'))
    out = np.asarray(Image.fromarray(rgb).resize((size, size), Image.BILINEAR))
    return torch.from_numpy(out.copy()).permute(2, 0, 1)


def test_pipeline_crops_each_stage_from_the_source_with_persistent_workers(photo_dir, tmp_path):
    """Two persistent, prefetching workers: batch k is cropped at the size of iteration k,
    straight from the source picture (equal to the oracle, not an upsampled smaller crop), and
    nothing on the device resizes it."""
    runner = _runner(photo_dir, tmp_path, 'pipeline', WHOLE_CROP, workers=2)
    runner.train()
    model = runner.model
    assert [s for s in model.sizes] == [(16, 16)] * 2 + [(24, 24)] * 3 + [(32, 32)] * 2
    assert model.data_preprocessor.size is None
    for k, (inputs, idx) in enumerate(model.fed):
        size = inputs.shape[-1]
        assert idx == [(2 * k) % 4, (2 * k + 1) % 4]  # the sampler's order is unchanged
        # the preprocessor normalised with mean = std = 127.5
        pixels = (inputs * 127.5 + 127.5).round().to(torch.uint8)
        for img, i in zip(pixels, idx):
            assert torch.equal(img, _direct_crop(photo_dir, i, size)), (k, i)
    # an upsampled 16 px crop would differ a lot from the direct 32 px crop of the noise
    up = torch.nn.functional.interpolate(_direct_crop(photo_dir, 0, 16)[None].float(), size=32,
                                         mode='bilinear', align_corners=False)[0]
    assert (up - _direct_crop(photo_dir, 0, 32).float()).abs().mean() > 10  # measured 19


def test_pipeline_sizes_follow_the_iteration_after_resume(photo_dir, tmp_path, checkpoint_io):
    """A run resumed at iteration 3 trains iterations 3..6 at 24, 24, 32, 32 px."""
    first = _runner(photo_dir, tmp_path, 'pipeline', WHOLE_CROP, max_iters=3)
    first.train()
    first.save_checkpoint(str(tmp_path), 'iter_3.pth')
    resumed = _runner(photo_dir, tmp_path / 'b', 'pipeline', WHOLE_CROP, max_iters=7,
                      resume=True, load_from=str(tmp_path / 'iter_3.pth'))
    resumed.train()
    assert [s[0] for s in resumed.model.sizes] == [24, 24, 32, 32]


def test_pipeline_mode_needs_a_resize_transform(data_dir, tmp_path):
    runner = _runner(data_dir, tmp_path, 'pipeline',
                     [dict(type='ClipLoadImage'), dict(type='PackClipInputs')])
    with pytest.raises(RuntimeError, match='no resize transform'):
        runner.train()


def test_validation_keeps_the_test_size_in_preprocessor_mode():
    """The device resize of 'preprocessor' mode applies to training batches only."""
    from pe_dense.models.clip.data_preprocessor import ClipDataPreprocessor
    pre = ClipDataPreprocessor(size=16)
    batch = dict(inputs=torch.zeros(2, 3, 24, 40, dtype=torch.uint8), data_samples=None)
    assert pre(batch, training=True)['inputs'].shape[-2:] == (16, 16)
    assert pre(batch, training=False)['inputs'].shape[-2:] == (24, 40)


def test_schedule_validation():
    hook = ProgressiveResolutionHook([(10, 154), (0, 98), (30, 224)])
    assert [hook.size_at(i) for i in (0, 9, 10, 29, 30, 10**6)] == [98, 98, 154, 154, 224, 224]
    with pytest.raises(ValueError, match='start at iteration 0'):
        ProgressiveResolutionHook([(5, 98)])
    with pytest.raises(ValueError, match='target'):
        ProgressiveResolutionHook([(0, 98)], target='model')
