"""PE-Core CLIP model: tokenizer parity with open_clip, text tower rules, the official whole-CLIP
layout round trip, mask regularisation, distillation and video embeddings."""
import pytest
import torch
from open_clip.tokenizer import SimpleTokenizer

from pe_dense.models.backbones.checkpoint import CheckpointError
from pe_dense.models.clip import (PECLIP, TEXT_CONFIGS, PETextTower, PETokenizer, fit_context,
                                  resolve_text_arch)

VISION = dict(arch=dict(patch_size=8, width=32, depth=2, heads=2, mlp_dim=64, cls_token=True,
                        pool='attn', out_dim=16, ln_post=True, img_size=32))
TEXT = dict(arch=dict(context_length=12, width=32, layers=2, heads=2, output_dim=16))


def tiny_clip(**kw):
    torch.manual_seed(0)
    return PECLIP(VISION, TEXT, **kw)


def test_tokenizer_matches_open_clip_padding_and_truncation():
    texts = ['A photo of a Dog.', '  two   red circles ', 'word ' * 40]
    ours = PETokenizer(32)(texts)
    ref = SimpleTokenizer(context_length=32)(texts)
    assert torch.equal(ours, ref)
    tok = PETokenizer(32)
    assert ours[0, 0] == tok.sot_token_id and ours[0].argmax() == (ours[0] > 0).sum() - 1
    assert ours[2, -1] == tok.eot_token_id  # truncated text still ends with EOT
    assert (ours[1, (ours[1] > 0).sum():] == 0).all()  # zero padding
    with pytest.raises(ValueError, match='empty'):
        tok(['fine', '   '])


def test_fit_context_repads_and_retruncates():
    tok = PETokenizer(16)
    t = tok(['a b c d e f g h i j k l m n', 'short'])
    longer = fit_context(t, 20, tok.eot_token_id)
    assert longer.shape == (2, 20) and torch.equal(longer[:, :16], t)
    shorter = fit_context(t, 8, tok.eot_token_id)
    assert torch.equal(shorter, PETokenizer(8)(['a b c d e f g h i j k l m n', 'short']))


def test_text_configs_follow_the_official_table():
    assert TEXT_CONFIGS['PE-Core-G14-448'] == dict(context_length=72, width=1280, layers=24,
                                                    heads=20, output_dim=1280)
    assert TEXT_CONFIGS['PE-Core-B16-224']['context_length'] == 32
    assert resolve_text_arch('PE-Core-T16-384')['vocab_size'] == 49408
    with pytest.raises(KeyError, match='Unknown PE text arch'):
        resolve_text_arch('PE-Core-X')
    with pytest.raises(KeyError, match='missing keys'):
        resolve_text_arch(dict(width=8))


def test_text_tower_is_causal_and_pools_at_eot():
    torch.manual_seed(0)
    tower = PETextTower(**TEXT).eval()
    names = set(tower.state_dict())
    assert {'token_embedding.weight', 'positional_embedding', 'ln_final.weight',
            'text_projection', 'transformer.resblocks.0.attn.in_proj_weight',
            'transformer.resblocks.1.mlp.c_proj.bias'} <= names
    tok = PETokenizer(12)(['a red circle', 'a red circle'])
    changed = tok.clone()
    eot = int(tok[1].argmax())
    changed[1, eot + 1:] = 5  # tokens after EOT must not reach the EOT output (causal mask)
    out = tower(torch.cat([tok[:1], changed[1:]]))
    torch.testing.assert_close(out[0], out[1])
    changed2 = tok.clone()
    changed2[1, 1] = 1000  # a token before EOT changes it
    out2 = tower(changed2)
    assert not torch.allclose(out2[0], out2[1])
    with pytest.raises(ValueError, match='exceed the text context'):
        tower(torch.zeros(1, 13, dtype=torch.long))


def test_official_whole_clip_round_trip(tmp_path):
    src = tiny_clip()
    official = src.official_state_dict()
    assert 'logit_scale' in official and 'visual.conv1.weight' in official
    assert 'token_embedding.weight' in official and 'text.token_embedding.weight' not in official
    # an official file: random weights, wrapped like the released ones, with rope constants
    torch.manual_seed(1)
    ckpt = {k: torch.randn_like(v) for k, v in official.items()}
    ckpt['visual.rope.rope.freqs'] = torch.arange(4.)
    torch.save({'state_dict': {'module.' + k: v for k, v in ckpt.items()}}, tmp_path / 'pe.pt')
    model = tiny_clip()
    model.load_checkpoint(str(tmp_path / 'pe.pt'))
    model.export_official(str(tmp_path / 'out.pt'))
    back = torch.load(tmp_path / 'out.pt', weights_only=True)
    assert set(back) == set(ckpt)
    for k in ckpt:
        assert torch.equal(back[k], ckpt[k]), k
    # the loaded weights are used: embeddings differ from the random init
    img = torch.randn(2, 3, 32, 32)
    assert not torch.allclose(model.encode_image(img), src.encode_image(img))


def test_load_rejects_foreign_checkpoints(tmp_path):
    model = tiny_clip()
    torch.save({'conv1.weight': torch.zeros(1)}, tmp_path / 'vision_only.pt')
    with pytest.raises(CheckpointError, match='no "visual." keys'):
        model.load_checkpoint(str(tmp_path / 'vision_only.pt'))
    sd = model.official_state_dict()
    sd['weird.key'] = torch.zeros(1)
    torch.save(sd, tmp_path / 'weird.pt')
    with pytest.raises(CheckpointError, match='weird.key'):
        model.load_checkpoint(str(tmp_path / 'weird.pt'))
    small = PECLIP(VISION, dict(arch=dict(TEXT['arch'], layers=1)))
    torch.save(sd | {}, tmp_path / 'x.pt')
    sd.pop('weird.key')
    torch.save(sd, tmp_path / 'deeper.pt')
    with pytest.raises(CheckpointError, match='unexpected'):
        small.load_checkpoint(str(tmp_path / 'deeper.pt'))


def _batch(model, n=4, video=False):
    shape = (n, 3, 3, 32, 32) if video else (n, 3, 32, 32)
    x = torch.randint(0, 256, shape, dtype=torch.uint8)
    caps = ['a red circle', 'two blue squares', 'a green star', 'three yellow triangles'][:n]
    return model.data_preprocessor(dict(inputs=x, data_samples=dict(caption=caps,
                                                                     label=torch.arange(n))), True)


def test_loss_mask_regularisation_and_training_step():
    model = tiny_clip(mask_reg=dict(batch_fraction=0.5, mask_ratio=0.5))
    data = _batch(model)
    losses = model(**data, mode='loss')
    assert set(losses) == {'logit_scale', 'loss_clip', 'loss_mask'}
    assert losses['logit_scale'].item() == pytest.approx(1 / 0.07, rel=1e-4)
    sum(v for k, v in losses.items() if k.startswith('loss')).backward()
    assert model.mask_token.grad is not None and model.mask_token.grad.abs().sum() > 0
    assert model.logit_scale.grad.abs() > 0  # the temperature is learned
    with pytest.raises(ValueError, match='mask_ratio'):
        tiny_clip(mask_reg=dict(mask_ratio=1.5))


def test_video_embedding_is_the_mean_of_frame_embeddings():
    model = tiny_clip().eval()
    data = _batch(model, n=2, video=True)
    video = data['inputs']
    assert video.shape == (2, 3, 3, 32, 32)
    frames = model.encode_image(video[0], normalize=False)
    expected = torch.nn.functional.normalize(frames.mean(0), dim=-1)
    torch.testing.assert_close(model.encode_video(video)[0], expected, rtol=1e-5, atol=1e-6)
    assert 'loss_clip' in model(**data, mode='loss')


def test_distillation_uses_a_frozen_teacher(tmp_path):
    teacher = tiny_clip()
    teacher.export_official(str(tmp_path / 'teacher.pt'))
    student_text = dict(arch=dict(context_length=8, width=16, layers=1, heads=2, output_dim=16))
    student = PECLIP(dict(arch=dict(VISION['arch'], width=16, depth=1)), student_text,
                     distill=dict(teacher=dict(vision=VISION, text=TEXT),
                                  teacher_checkpoint=str(tmp_path / 'teacher.pt'),
                                  loss=dict(type='ClipDistillLoss', temperature=2.0),
                                  contrastive_weight=0.5))
    assert not any(k.startswith('teacher') for k in student.state_dict())
    assert torch.equal(student.teacher.visual.conv1.weight, teacher.visual.conv1.weight)
    data = _batch(student)
    losses = student(**data, mode='loss')
    assert {'loss_clip', 'loss_distill'} <= set(losses)
    losses['loss_distill'].backward()
    assert student.visual.conv1.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in student.teacher.parameters())


def test_predict_outputs_embeddings_and_zero_shot_scores():
    model = tiny_clip(zero_shot=dict(classnames=['red circle', 'blue square'],
                                     templates=['a {}', '{}s'])).eval()
    data = _batch(model, n=2)
    out = model(**data, mode='predict')
    assert len(out) == 2 and out[0]['class_scores'].shape == (2,)
    assert out[1]['gt_label'] == 1
    torch.testing.assert_close(out[0]['image_emb'].norm(), torch.tensor(1.))
    clf = model.build_classifier(['red circle', 'blue square'], ['a {}', '{}s'])
    torch.testing.assert_close(out[0]['class_scores'], out[0]['image_emb'] @ clf.t())
