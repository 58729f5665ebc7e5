"""Toy spatial alignment end to end: SAM target cache -> MMEngine Runner -> held-out gains.

Tiny PE (width 64, 4 blocks) self-distilled from its own frozen layer 2 and aligned to random-
weight SAM 2.1-T (128 px input, 8x8 prompts) through the toy config. On held-out pictures the
student must get closer to the teacher layer when 75% of its input is masked (the task the cosine
loss trains) and its token relations must correlate better with SAM's. (Unmasked, the student
starts as a copy of the random-weight teacher, cosine ~0.99, and the SAM loss pulls it away; that
number is printed, not asserted.)
"""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS
from mmengine.runner import Runner

from pe_dense.datasets import ImageFolderDataset, SAMTargetCache, fill_cache, read_rgb
from pe_dense.datasets.transforms.align_transforms import AlignResize
from pe_dense.models.aligners import random_token_mask
from pe_dense.models.backbones import PE
from pe_dense.models.backbones.checkpoint import save_state_dict
from pe_dense.models.losses import pairwise_cosine
from pe_dense.models.teachers import maps_to_tokens
from pe_dense.toy.images import make_images

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CFG = osp.join(ROOT, 'configs', 'align', 'toy_align_tiny.py')


@pytest.fixture
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matmuls: threads only contend on a shared CPU
    yield
    torch.set_num_threads(n)


def _config(tmp, core_ckpt, sam_ckpt, iters):
    cfg = Config.fromfile(CFG)
    init = dict(type='Pretrained', checkpoint=core_ckpt)
    cfg.model.student.init_cfg = init
    cfg.model.teacher.backbone.init_cfg = init
    cfg.model.sam_teacher.update(checkpoint=sam_ckpt, image_size=128)
    cfg.sam_cache.root = f'{tmp}/cache'
    ds = cfg.train_dataloader.dataset
    ds.data_root = f'{tmp}/toy'
    ds.pipeline[2].cache_root = cfg.sam_cache.root
    cfg.train_cfg.max_iters = iters
    cfg.default_hooks.checkpoint.interval = iters
    cfg.default_hooks.logger.interval = 10
    cfg.work_dir = f'{tmp}/work_dir'
    return cfg


def _heldout_metrics(model, images, sam_maps):
    """Token cosine to the teacher layer (75%-masked input, fixed masks; unmasked input) and
    mean Pearson r of the student's vs SAM's token relations (unmasked input)."""
    model.eval()
    with torch.no_grad():
        student, hw = model.student_tokens(images, masked=False)
        target, _ = model.teacher(model.normalize(images))
        mask = random_token_mask(images.shape[0], hw[0] * hw[1], model.mask_ratio,
                                 generator=torch.Generator().manual_seed(0))
        masked, _ = model.student.forward_tokens(model.normalize(images), [-1], token_mask=mask,
                                                 mask_token=model.mask_token)
        masked = masked[0][:, model.student.num_prefix_tokens:]
        cos = torch.nn.functional.cosine_similarity(masked, target, dim=-1).mean().item()
        cos_unmasked = torch.nn.functional.cosine_similarity(student, target, dim=-1).mean().item()
        s, t = pairwise_cosine(student), pairwise_cosine(maps_to_tokens(sam_maps))
        off = ~torch.eye(s.shape[1], dtype=torch.bool)
        rs = [torch.corrcoef(torch.stack([a[off], b[off]]))[0, 1] for a, b in zip(s, t)]
    return cos, torch.stack(rs).mean().item(), cos_unmasked


def _loss_curve(runner, key):
    values, _ = runner.message_hub.get_scalar(f'train/{key}').data
    return values


@pytest.mark.slow
def test_toy_alignment_improves_heldout(tmp_path, one_thread):
    tmp = str(tmp_path)
    make_images(f'{tmp}/toy', num_train=8, num_val=4, size=128, progress_bar=False)
    torch.manual_seed(0)
    core_ckpt = f'{tmp}/tiny_core.pt'
    cfg = Config.fromfile(CFG)
    save_state_dict(PE(arch=cfg.tiny_core).state_dict(), core_ckpt)
    sam_cfg = dict(cfg.model.sam_teacher, type='SAM2Teacher', image_size=128)
    sam = MODELS.build(sam_cfg)
    sam_ckpt = f'{tmp}/sam_t_random.pt'
    torch.save({'model': sam.sam.state_dict()}, sam_ckpt)
    cfg = _config(tmp, core_ckpt, sam_ckpt, iters=150)

    # SAM targets of train and held-out pictures, as tools/cache_sam_targets.py writes them
    cache = SAMTargetCache(cfg.sam_cache.root)
    grid_hw = tuple(cfg.sam_cache.grid_hw)

    def compute(rgb):
        return sam(torch.from_numpy(rgb).permute(2, 0, 1)[None].float(), grid_hw)[0]

    train = ImageFolderDataset(data_root=f'{tmp}/toy', data_prefix=dict(img_path='train'))
    val = ImageFolderDataset(data_root=f'{tmp}/toy', data_prefix=dict(img_path='val'))
    items = [(d['key'], d['img_path']) for d in map(train.get_data_info, range(len(train)))]
    resize = AlignResize(cfg.img_size)  # SAM sees the aligned training picture

    def aligned(path):
        return resize(dict(img=read_rgb(path)))['img']

    assert fill_cache(items, compute, cache, progress=False, load=aligned)['written'] == 8
    val_info = [val.get_data_info(i) for i in range(len(val))]
    val_imgs = torch.stack([torch.from_numpy(resize(dict(img=read_rgb(d['img_path'])))['img'])
                            .permute(2, 0, 1).float() for d in val_info])
    val_sam = sam(val_imgs, grid_hw)

    runner = Runner.from_cfg(cfg)
    runner.model.init_weights()  # student and teacher from the Core checkpoint, as train() does
    before = _heldout_metrics(runner.model, val_imgs, val_sam)
    runner.train()
    after = _heldout_metrics(runner.model, val_imgs, val_sam)

    cos_curve, sam_curve = _loss_curve(runner, 'loss_cos'), _loss_curve(runner, 'loss_sam')
    print(f'held-out (cos, r) before {before} after {after}; loss_cos {cos_curve[:10].mean():.3f}'
          f' -> {cos_curve[-10:].mean():.3f}; loss_sam {sam_curve[:10].mean():.3f} -> '
          f'{sam_curve[-10:].mean():.3f}')
    assert cos_curve[-10:].mean() < 0.8 * cos_curve[:10].mean()
    assert sam_curve[-10:].mean() < 0.8 * sam_curve[:10].mean()
    assert after[0] > before[0] + 0.05, (before, after)  # masked: closer to the teacher layer
    assert after[1] > before[1] + 0.05, (before, after)  # relations correlate better with SAM
    assert osp.isfile(osp.join(cfg.work_dir, 'student_official.pt'))
