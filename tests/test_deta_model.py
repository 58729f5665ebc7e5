"""DETA detector on a tiny PE: loss / predict, single-batch overfit, proposal and query rules."""
import copy
import os.path as osp

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.utils import register_all_modules
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.structures import InstanceData

import pe_dense.det  # noqa: F401  registers the det components
from pe_dense.models.detectors import deta_convert as dc
from pe_dense.models.detectors import select_queries
from pe_dense.models.detectors.deta import level_ids_of

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
register_all_modules(init_default_scope=False)

W, D = 32, 32  # backbone width, detector width


def tiny_cfg(num_queries: int = 20, num_classes: int = 3) -> dict:
    """The real base config (configs/_base_/models/deta_pe.py) shrunk to a few k parameters."""
    m = copy.deepcopy(Config.fromfile(osp.join(ROOT, 'configs/_base_/models/deta_pe.py')).model)
    m.backbone = dict(type='PE', arch=dict(patch_size=16, width=W, depth=2, heads=2, mlp_dim=64,
                                           cls_token=False, pool=None, out_dim=None,
                                           layer_scale=0.1, ln_post=False, img_size=64),
                      pos_embed_mode='tile', rope_mode='eva', out_indices=(-1, ))
    m.neck[0].in_channels = W
    m.neck[1].update(in_channels=[W // 2, W, W], out_channels=D,
                     norm_cfg=dict(type='GN', num_groups=8))
    for part in ('encoder', 'decoder'):
        m[part].num_layers = 2
        for sub in m[part].layer_cfg.values():
            sub.embed_dims = D
            if 'num_heads' in sub:
                sub.num_heads = 4
        m[part].layer_cfg.ffn_cfg.feedforward_channels = 64
    m.positional_encoding.num_feats = D // 2
    m.bbox_head.update(embed_dims=D, num_classes=num_classes)
    m.num_queries = num_queries
    m.train_cfg.assigner.num = num_queries
    return m.to_dict()


def build_cfg(cfg):
    with DefaultScope.overwrite_default_scope('mmdet'):
        return MODELS.build(cfg)


def build(**kw):
    torch.manual_seed(0)
    model = build_cfg(tiny_cfg(**kw))
    model.init_weights()
    return model


def samples(shapes=((64, 64), (64, 48)), batch=(64, 64)):
    out = []
    for i, shp in enumerate(shapes):
        d = DetDataSample(metainfo=dict(img_shape=shp, batch_input_shape=batch, ori_shape=shp,
                                        scale_factor=(1., 1.)))
        boxes = torch.tensor([[4., 6., 30., 40.], [30., 10., 46., 26.]])[:1 + i % 2]
        d.gt_instances = InstanceData(bboxes=boxes, labels=torch.tensor([0, 2])[:len(boxes)])
        out.append(d)
    return out


def test_loss_and_predict():
    model = build()
    torch.manual_seed(0)
    x = torch.randn(2, 3, 64, 64)
    losses = model.loss(x, samples())
    names = {f'{p}loss_{k}' for p in ('', 'd0.', 'enc_') for k in ('cls', 'bbox', 'iou')}
    assert set(losses) == names
    assert all(torch.isfinite(v) and v > 0 for v in losses.values())
    sum(losses.values()).backward()
    # pix_trans is on the query path, so it learns
    assert model.pix_trans_fc.weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        res = model.predict(x, samples(), rescale=True)
    assert len(res) == 2
    pred = res[0].pred_instances
    assert pred.bboxes.shape[1] == 4 and len(pred.bboxes) <= 100
    assert (pred.scores[:-1] >= pred.scores[1:]).all() and pred.labels.max() < 3


def test_single_batch_overfit_reduces_loss():
    model = build()
    torch.manual_seed(0)
    x = torch.randn(2, 3, 64, 64)
    data = samples(shapes=((64, 64), (64, 64)))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    first = None
    for _ in range(25):
        loss = sum(model.loss(x, data).values())
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.6 * first, (first, loss.item())


def test_proposals_exclude_padding_and_out_of_range_anchors():
    model = build()
    # levels of 4x4, 2x2 and four 1x1 (w = h = 1.6 on the last); image 0's right half is padding
    shapes = torch.tensor([[4, 4], [2, 2], [1, 1], [1, 1], [1, 1], [1, 1]])
    mask = torch.zeros(2, 24, dtype=torch.bool)
    mask[0, :16] = torch.tensor([0, 0, 1, 1] * 4, dtype=torch.bool)
    mask[0, 16:20] = torch.tensor([0, 1, 0, 1], dtype=torch.bool)
    memory = torch.randn(2, 24, D)
    out_mem, props = model.gen_encoder_output_proposals(memory, mask, shapes)
    # expected validity, computed independently: centre / valid size and w = h = 0.05 * 2^lvl
    for b in range(2):
        idx = 0
        for lvl, (h, w) in enumerate(shapes.tolist()):
            vw = w - int(mask[b, idx:idx + h * w].view(h, w)[0].sum())
            for i in range(h):
                for j in range(w):
                    box = torch.tensor([(j + .5) / vw, (i + .5) / h, .05 * 2 ** lvl, .05 * 2 ** lvl])
                    ok = bool(((box > .01) & (box < .99)).all()) and not mask[b, idx]
                    assert torch.isfinite(props[b, idx]).all() == ok, (b, lvl, i, j)
                    if not ok:  # zeroed memory before the output linear + norm
                        zero = model.memory_trans_norm(model.memory_trans_fc(torch.zeros(D)))
                        assert torch.allclose(out_mem[b, idx], zero, atol=1e-5)
                    else:
                        assert torch.allclose(props[b, idx].sigmoid(), box, atol=1e-5)
                    idx += 1
    assert not torch.isfinite(props[0, 2]).any()  # padding
    assert torch.isfinite(props[1, :23]).all() and not torch.isfinite(props[1, 23]).any()


def test_query_selection_balances_levels_and_applies_nms():
    level_ids = level_ids_of(torch.tensor([[4, 4], [2, 2], [1, 2]]))  # 16 + 4 + 2
    assert level_ids.tolist() == [0] * 16 + [1] * 4 + [2] * 2
    logits = torch.linspace(5, -5, 22)                    # level 0 scores highest
    boxes = torch.rand(22, 2).mul(0.5).repeat(1, 2) + torch.tensor([0, 0, 0.3, 0.3])
    keep = select_queries(logits, boxes, level_ids, num_queries=6)
    assert len(keep) == 6 and len(set(keep.tolist())) == 6
    assert (level_ids[keep] == 0).sum() == 2 and (level_ids[keep] == 1).sum() == 2
    # duplicates (IoU 1 within a level) are removed before the per-level quota
    dup = boxes.clone()
    dup[1] = dup[0]
    keep = select_queries(logits, dup, level_ids, num_queries=6)
    assert 0 in keep.tolist() and 1 not in keep.tolist()
    # too few NMS survivors: falls back to the plain top-k
    same = torch.tensor([[0.1, 0.1, 0.5, 0.5]]).repeat(22, 1)
    keep = select_queries(logits, same, level_ids, num_queries=6)
    assert sorted(keep.tolist()) == list(range(6))
    with pytest.raises(ValueError, match='num_queries=30'):
        select_queries(logits, boxes, level_ids, num_queries=30)


def test_bad_config_raises():
    cfg = tiny_cfg()
    with pytest.raises(ValueError, match='two-stage'):
        build_cfg(dict(cfg, as_two_stage=False))
    with pytest.raises(KeyError, match='query_selection'):
        build_cfg(dict(cfg, query_selection=dict(topk=3)))


def test_official_checkpoint_layout_loads_without_missing_keys():
    spec = dc.DetaSpec(embed_dim=W, depth=2, num_heads=2, mlp_dim=64, pos_grid=4, window_size=2,
                       global_attn_indexes=(1, ), img_size=64, hidden_dim=D, ffn_dim=64,
                       num_heads_det=4, enc_layers=2, dec_layers=2, num_classes=3)
    sd = dc.convert_official_deta(dc.random_official_state_dict(spec), class_map=None,
                                  num_dec_layers=2)
    model = build()
    missing, unexpected = model.load_state_dict(sd, strict=False)
    assert not missing and not unexpected


def test_toy_config_keeps_detas_assignment_and_losses():
    cfg = Config.fromfile(osp.join(ROOT, 'configs/demo/pe_deta_toy.py'))
    base = Config.fromfile(osp.join(ROOT, 'configs/_base_/models/deta_pe.py'))
    for key in ('loss_cls', 'loss_bbox', 'loss_iou'):
        assert cfg.model.bbox_head[key] == base.model.bbox_head[key]
    assert cfg.model.train_cfg.enc_assigner == base.model.train_cfg.enc_assigner
    s2 = dict(cfg.model.train_cfg.assigner, num=base.model.num_queries)
    assert s2 == base.model.train_cfg.assigner
    assert cfg.model.train_cfg.assigner.num == cfg.model.num_queries
    assert cfg.model.query_selection == base.model.query_selection
    assert cfg.model.backbone.type == 'PE' and cfg.randomness.seed is not None
    torch.manual_seed(0)
    model = build_cfg(cfg.model)
    model.init_weights()
    losses = model.loss(torch.randn(1, 3, 80, 128),  # a 144x96 toy picture, resized and padded
                        samples(shapes=((80, 120), ), batch=(80, 128)))
    assert all(torch.isfinite(v) for v in losses.values())


def test_level_embed_is_initialised_at_construction():
    """mmdet leaves level_embed as uninitialised memory until init_weights; DETA must not."""
    for seed in range(4):
        torch.manual_seed(seed)
        junk = torch.full((64, 1024), float('nan'))  # leave NaNs in freed memory
        del junk
        model = build_cfg(tiny_cfg())
        assert torch.isfinite(model.level_embed).all()
        assert model.level_embed.std() > 0.5  # drawn from N(0, 1), as init_weights does
