"""Official DETA_pe checkpoint layout and its conversion into pe_dense's DETA."""
import argparse
import importlib.util
from pathlib import Path

import pytest
import torch

from pe_dense.models.backbones import CheckpointError
from pe_dense.models.detectors import deta_convert as dc

SMALL = dc.DetaSpec(embed_dim=64, depth=3, num_heads=4, mlp_dim=96, pos_grid=4, window_size=4,
                    global_attn_indexes=(1,), img_size=128, hidden_dim=32, ffn_dim=48,
                    num_heads_det=4, enc_layers=2, dec_layers=2, enc_points=2, dec_points=2,
                    num_classes=91)


def test_gwin384_layout_matches_official_code():
    layout = dc.official_deta_layout()
    # tower: 16x16 patch conv, 24x24 tiled pos-emb with a batch dim, no cls token, LayerScale
    assert layout['backbone.0.body.conv1.weight'] == (1536, 3, 16, 16)
    assert layout['backbone.0.body.positional_embedding'] == (1, 576, 1536)
    assert 'backbone.0.body.class_embedding' not in layout
    assert layout['backbone.0.body.transformer.resblocks.49.ls_2.gamma'] == (1536,)
    assert layout['backbone.0.body.transformer.resblocks.0.mlp.c_fc.weight'] == (8960, 1536)
    # RoPE tables: head_dim 96 wide, 24x24 in window blocks, 114x114 in global blocks
    assert layout['backbone.0.body.rope_win.freqs_cos'] == (576, 96)
    assert layout['backbone.0.body.rope_glb.freqs_sin'] == (114 * 114, 96)
    assert layout['backbone.0.body.transformer.resblocks.11.attn.rope.freqs_cos'] == (576, 96)
    assert layout['backbone.0.body.transformer.resblocks.12.attn.rope.freqs_cos'] == (12996, 96)
    assert layout['backbone.0.body.fpn1.0.weight'] == (1536, 768, 2, 2)
    # neck projections: 768 / 1536 / 1536 channels, then p6 on raw p5 and p7 on projected p6
    assert layout['input_proj.0.0.weight'] == (256, 768, 1, 1)
    assert layout['input_proj.3.0.weight'] == (256, 1536, 3, 3)
    assert layout['input_proj.4.0.weight'] == (256, 256, 3, 3)
    # deformable attention: 8 heads x 5 levels x 4 points
    assert layout['transformer.encoder.layers.5.self_attn.sampling_offsets.weight'] == (320, 256)
    assert layout['transformer.decoder.layers.0.linear1.weight'] == (2048, 256)
    # two-stage + refine: 7 heads, stored twice; 91 COCO rows
    assert layout['class_embed.6.weight'] == (91, 256)
    assert layout['transformer.decoder.bbox_embed.6.layers.2.weight'] == (4, 256)
    assert 'class_embed.7.weight' not in layout
    assert layout['transformer.pix_trans.weight'] == (256, 256)
    assert layout['transformer.pos_trans.weight'] == (512, 512)
    n = sum(torch.Size(s).numel() for k, s in layout.items() if 'freqs' not in k
            and not k.startswith('transformer.decoder.class_embed')
            and not k.startswith('transformer.decoder.bbox_embed'))
    assert 1.85e9 < n < 1.9e9  # PE-G (~1.85B) + DETA head


def test_tower_layout_is_the_one_maskrcnn_uses_in_official_state_dict_order():
    from pe_dense.models.detectors import maskrcnn_convert as mc
    deta = [(k[len('backbone.0.body.'):], v) for k, v in dc.official_deta_layout(SMALL).items()
            if k.startswith('backbone.0.body.') and '.fpn1.' not in k]
    from dataclasses import fields as dc_fields

    from pe_dense.models.backbones.checkpoint import TowerSpec
    fields = [f.name for f in dc_fields(TowerSpec)]
    assert len(fields) == 10
    same = mc.MaskRCNNSpec(**{f: getattr(SMALL, f) for f in fields})
    assert deta == mc.tower_layout(same, prefix='')
    # torch's state_dict order of PEv1_simpleFPN / PEv1_det: own parameters first, then
    # submodules as registered (attn, ls_1, ln_1, mlp, ln_2, ls_2 in every block)
    assert [k for k, _ in deta[:4]] == ['positional_embedding', 'conv1.weight',
                                        'ln_pre.weight', 'ln_pre.bias']
    block = [k[len('transformer.resblocks.1.'):] for k, _ in deta
             if k.startswith('transformer.resblocks.1.')]
    assert block == ['attn.in_proj_weight', 'attn.in_proj_bias', 'attn.out_proj.weight',
                     'attn.out_proj.bias', 'attn.rope.freqs_cos', 'attn.rope.freqs_sin',
                     'ls_1.gamma', 'ln_1.weight', 'ln_1.bias', 'mlp.c_fc.weight', 'mlp.c_fc.bias',
                     'mlp.c_proj.weight', 'mlp.c_proj.bias', 'ln_2.weight', 'ln_2.bias', 'ls_2.gamma']
    assert dict(deta)['transformer.resblocks.1.attn.rope.freqs_cos'] == (64, 16)  # global: 8x8
    assert dict(deta)['transformer.resblocks.2.attn.rope.freqs_cos'] == (16, 16)  # window: 4x4


def test_every_kept_key_gets_a_unique_name():
    sd = dc.random_official_state_dict(SMALL)
    out = dc.convert_official_deta(sd, class_map=None, num_dec_layers=SMALL.dec_layers)
    dropped = [k for k in sd if 'freqs' in k or k.startswith('transformer.decoder.class_embed')
               or k.startswith('transformer.decoder.bbox_embed')]
    assert len(out) == len(sd) - len(dropped)
    assert out['backbone.positional_embedding'].shape == (16, 64)
    assert torch.equal(out['backbone.positional_embedding'],
                       sd['backbone.0.body.positional_embedding'][0])
    assert torch.equal(out['decoder.layers.1.norms.0.weight'],
                       sd['transformer.decoder.layers.1.norm2.weight'])  # norm after self-attn
    assert torch.equal(out['decoder.layers.1.norms.1.bias'],
                       sd['transformer.decoder.layers.1.norm1.bias'])    # norm after cross-attn
    assert torch.equal(out['bbox_head.reg_branches.2.4.weight'], sd['bbox_embed.2.layers.2.weight'])
    assert torch.equal(out['neck.1.extra_convs.1.conv.weight'], sd['input_proj.4.0.weight'])
    assert torch.equal(out['decoder.layers.0.self_attn.attn.in_proj_weight'],
                       sd['transformer.decoder.layers.0.self_attn.in_proj_weight'])


def test_class_map_selects_rows_and_keeps_objectness_row():
    sd = dc.random_official_state_dict(SMALL)
    out = dc.convert_official_deta(sd, class_map=dc.COCO_CATEGORY_IDS,
                                   num_dec_layers=SMALL.dec_layers)
    w = sd['class_embed.0.weight']
    assert out['bbox_head.cls_branches.0.weight'].shape == (80, 32)
    assert torch.equal(out['bbox_head.cls_branches.0.weight'][11], w[13])  # 12th class: id 13
    enc = out['bbox_head.cls_branches.2.bias']  # encoder proposal head: row 0 = objectness
    assert enc[0] == sd['class_embed.2.bias'][0]
    with pytest.raises(CheckpointError, match='row 200'):
        dc.convert_official_deta(sd, class_map=[1, 200], num_dec_layers=SMALL.dec_layers)


def test_decoder_head_aliases_must_equal_top_level_heads():
    sd = dc.random_official_state_dict(SMALL)  # aliases share values, as in the official model
    dc.convert_official_deta(sd, num_dec_layers=SMALL.dec_layers)
    sd['transformer.decoder.class_embed.1.bias'] = sd['class_embed.1.bias'] + 1
    with pytest.raises(CheckpointError, match='transformer.decoder.class_embed.1.bias differs'):
        dc.convert_official_deta(sd, num_dec_layers=SMALL.dec_layers)


def test_rope_tables_are_checked_against_the_eva_rule():
    sd = dc.random_official_state_dict(SMALL)
    glb = 'backbone.0.body.rope_glb.freqs_cos'
    assert sd[glb].shape == ((128 // 16) ** 2, 16)
    assert torch.equal(sd[glb][:, 0::2], sd[glb][:, 1::2])   # each pair's angle written twice
    # token (0, 0): EVA position 0 / N * 16 + 1 = 1 on both axes, theta 1e4 over 8 dims per axis
    freqs = torch.tensor([1., 0.1, 0.01, 0.001])
    assert torch.allclose(sd[glb][0], torch.cos(freqs.repeat(2).repeat_interleave(2)))
    dc.convert_official_deta(sd, num_dec_layers=SMALL.dec_layers)
    # tables of another position rule (plain integer positions) are refused
    sd['backbone.0.body.transformer.resblocks.0.attn.rope.freqs_sin'] = torch.sin(
        torch.arange(16.)[:, None] * torch.ones(1, 16))
    with pytest.raises(CheckpointError, match='resblocks.0.attn.rope.freqs_sin does not follow'):
        dc.convert_official_deta(sd, num_dec_layers=SMALL.dec_layers)


def test_unknown_key_is_named():
    with pytest.raises(KeyError, match='transformer.mystery.weight'):
        dc.rename_official_key('transformer.mystery.weight')


class Foreign:
    """An object a weights-only load must refuse."""


def _save_official(path, spec, with_training_state=True):
    sd = dc.random_official_state_dict(spec)
    obj = {'model': sd}
    if with_training_state:  # what main.py writes next to the weights
        obj.update(optimizer={'state': {}, 'param_groups': [{'lr': 5e-5, 'params': [0]}]},
                   lr_scheduler={'step_size': 10, 'last_epoch': 3}, epoch=2,
                   args=argparse.Namespace(lr=5e-5, backbone='pev1', lr_drop_epochs=None))
    torch.save(obj, path)
    return sd


def test_load_official_allows_namespace_only(tmp_path):
    path = tmp_path / 'deta.pth'
    sd = _save_official(path, SMALL)
    loaded = dc.load_official_deta(str(path))
    assert loaded.keys() == sd.keys()
    dc.check_layout(loaded, SMALL, str(path))

    bad = tmp_path / 'bad.pth'
    torch.save({'model': sd, 'evil': Foreign()}, bad)
    with pytest.raises(CheckpointError, match='bad.pth'):
        dc.load_official_deta(str(bad))
    with pytest.raises(CheckpointError, match='does not match the official DETA layout'):
        dc.check_layout(loaded, dc.DetaSpec(), str(path))


def _tool():
    spec = importlib.util.spec_from_file_location(
        'convert_checkpoint', Path(__file__).parents[1] / 'tools' / 'convert_checkpoint.py')
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_cli_deta_subcommand(tmp_path, capsys):
    src, dst = tmp_path / 'deta.pth', tmp_path / 'ours.pth'
    sd = _save_official(src, SMALL)
    tool = _tool()
    tool.main(['deta', str(src), str(dst), '--num-dec-layers', str(SMALL.dec_layers)])
    assert 'wrote' in capsys.readouterr().out
    ckpt = torch.load(dst, weights_only=True)
    assert ckpt['meta']['class_map'][:3] == [1, 2, 3]
    assert torch.equal(ckpt['state_dict']['backbone.conv1.weight'],
                       sd['backbone.0.body.conv1.weight'])
    with pytest.raises(SystemExit):
        tool.main(['deta', str(src), str(dst), '--class-map', 'cats'])
    assert '--class-map' in capsys.readouterr().err


def test_profiling_buffers_dropped_with_a_log_other_unknown_keys_fail(tmp_path, monkeypatch):
    """thop's total_ops / total_params counters (which the official loader filters out)
    load; any other unknown key still fails with its name."""
    sd = dc.random_official_state_dict(SMALL)
    plain = dc.convert_official_deta(sd, num_dec_layers=SMALL.dec_layers)
    profiled = dict(sd)
    profiled['total_ops'] = torch.zeros(1, dtype=torch.float64)
    profiled['backbone.0.body.conv1.total_params'] = torch.tensor([123.], dtype=torch.float64)
    profiled['transformer.encoder.layers.0.linear1.total_ops'] = torch.zeros(1)
    src, dst = tmp_path / 'profiled.pth', tmp_path / 'ours.pth'
    torch.save({'model': profiled}, src)
    logs = []
    monkeypatch.setattr(dc, 'print_log', lambda msg, **kw: logs.append(msg))
    out = dc.convert_file(str(src), str(dst), class_map=None, num_dec_layers=SMALL.dec_layers)
    assert out.keys() == plain.keys()
    assert all(torch.equal(out[k], plain[k]) for k in plain)
    assert len(logs) == 1 and 'dropped 3 profiling buffers' in logs[0]

    profiled['transformer.mystery.total_flops'] = torch.zeros(1)
    torch.save({'model': profiled}, src)
    with pytest.raises(KeyError, match='transformer.mystery.total_flops'):
        dc.convert_file(str(src), str(dst), class_map=None, num_dec_layers=SMALL.dec_layers)
