"""Official --bf16 (stages 3 and 4): autocast around the backbone only, the rest in fp32;
and the class heads dropped from ``load_from`` when stages 2 and 3 start."""
import os.path as osp
from types import SimpleNamespace

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import EpochBasedTrainLoop
from mmengine.structures import InstanceData

import pe_dense.det  # noqa: F401  registers the detection parts
from pe_dense.engine.hooks import DropLoadedKeysHook
from tests.fixtures.small_deta import shrink_deta

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def _model(config):
    cfg = Config.fromfile(osp.join(ROOT, 'configs', config))
    shrink_deta(cfg, num_queries=10, num_classes=3)
    init_default_scope('mmdet')
    torch.manual_seed(0)
    return MODELS.build(cfg.model).train()


def _run(model):
    """One loss computation; dtypes seen at the module boundaries that matter."""
    seen = {}

    def out_hook(name):
        def hook(_, __, out):
            seen[name] = {t.dtype for t in (out if isinstance(out, (tuple, list)) else [out])}
        return hook

    def in_hook(name):
        def hook(_, args, kwargs):
            flat = []
            for a in list(args) + list(kwargs.values()):
                flat += list(a) if isinstance(a, (tuple, list)) else [a]
            tensors = [a for a in flat if torch.is_tensor(a) and a.is_floating_point()]
            seen.setdefault(name, set()).update(t.dtype for t in tensors)
        return hook

    block = model.backbone.transformer.resblocks[-1]
    handles = [model.backbone.register_forward_hook(out_hook('backbone')),
               block.mlp.c_fc.register_forward_hook(out_hook('backbone_matmul')),
               model.neck[0].fpn1.register_forward_hook(out_hook('fpn_deconv')),
               model.neck[0].register_forward_hook(out_hook('simple_fpn')),
               model.neck[1].register_forward_pre_hook(in_hook('channel_mapper'), with_kwargs=True),
               model.encoder.layers[0].self_attn.register_forward_pre_hook(
                   in_hook('encoder_deform_attn'), with_kwargs=True),
               model.decoder.layers[1].cross_attn.register_forward_pre_hook(
                   in_hook('decoder_deform_attn'), with_kwargs=True),
               model.bbox_head.register_forward_pre_hook(in_hook('head'), with_kwargs=True)]
    sample = DetDataSample(metainfo=dict(img_shape=(192, 256), ori_shape=(192, 256),
                                         pad_shape=(256, 256), batch_input_shape=(256, 256),
                                         scale_factor=(1.0, 1.0)))
    sample.gt_instances = InstanceData(bboxes=torch.tensor([[10., 12., 70., 60.],
                                                            [20., 30., 50., 55.]]),
                                       labels=torch.tensor([1, 2]))
    g = torch.Generator().manual_seed(0)
    losses = model.loss(torch.randn(1, 3, 256, 256, generator=g), [sample])
    for h in handles:
        h.remove()
    return seen, losses


def test_stage3_autocasts_only_the_backbone():
    model = _model('deta/pe_spatial_g_coco_stage3_1728.py')
    assert model.backbone_autocast == 'bfloat16'
    seen, losses = _run(model)
    # matmuls / convs of the tower and of the simple FPN (part of the official backbone) run
    # in bf16; the residual stream stays fp32 as in the official code (the fp32 position
    # embedding promotes it, LayerNorm keeps it)
    assert seen['backbone_matmul'] == {torch.bfloat16}
    assert seen['fpn_deconv'] == {torch.bfloat16}
    assert torch.bfloat16 in seen['simple_fpn']
    for name in ('channel_mapper', 'encoder_deform_attn', 'decoder_deform_attn', 'head'):
        assert seen[name] == {torch.float32}, name
    assert {v.dtype for v in losses.values()} == {torch.float32}
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert all(torch.isfinite(v) for v in losses.values())
    loss = sum(losses.values())
    loss.backward()
    assert model.backbone.conv1.weight.grad.dtype == torch.float32


def test_fp32_stages_do_not_autocast():
    model = _model('deta/pe_spatial_g_o365_stage2_1536.py')
    assert model.backbone_autocast is None
    seen, _ = _run(model)
    assert seen['backbone_matmul'] == {torch.float32} and seen['fpn_deconv'] == {torch.float32}
    assert seen['backbone'] == {torch.float32} and seen['simple_fpn'] == {torch.float32}


def test_bad_autocast_dtype_is_named():
    cfg = Config.fromfile(osp.join(ROOT, 'configs/deta/pe_spatial_g_coco_stage3_1728.py'))
    shrink_deta(cfg)
    cfg.model.backbone_autocast = 'bf16'
    init_default_scope('mmdet')
    with pytest.raises(ValueError, match="'bf16' is not a torch dtype"):
        MODELS.build(cfg.model)


def _runner(training=True, resume=False):
    loop = object.__new__(EpochBasedTrainLoop) if training else dict(type='EpochBasedTrainLoop')
    return SimpleNamespace(_train_loop=loop, _resume=resume)


def test_class_heads_dropped_only_when_a_training_run_starts_from_load_from():
    hook = DropLoadedKeysHook(patterns=[r'^bbox_head\.cls_branches\.'])
    keys = ['bbox_head.cls_branches.0.weight', 'bbox_head.cls_branches.6.bias',
            'bbox_head.reg_branches.0.0.weight', 'backbone.conv1.weight']

    def ckpt():
        return {'state_dict': {k: torch.zeros(1) for k in keys}, 'meta': {}}

    c = ckpt()
    hook.after_load_checkpoint(_runner(), c)
    assert sorted(c['state_dict']) == ['backbone.conv1.weight', 'bbox_head.reg_branches.0.0.weight']
    for runner in (_runner(resume=True), _runner(training=False)):  # resume / test: untouched
        c = ckpt()
        hook.after_load_checkpoint(runner, c)
        assert sorted(c['state_dict']) == sorted(keys)
    with pytest.raises(ValueError, match='patterns'):
        DropLoadedKeysHook(patterns=r'^bbox_head')
