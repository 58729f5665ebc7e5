"""Command-line messages and outputs of the small tools: flags named as flags, no silent
random weights, distinct output files."""
import importlib.util
import json
import os.path as osp

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def load_tool(rel):
    spec = importlib.util.spec_from_file_location(rel.replace('/', '_'), osp.join(ROOT, rel))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_make_toy_data_names_the_flags_a_kind_does_not_take(tmp_path, capsys):
    tool = load_tool('tools/make_toy_data.py')
    with pytest.raises(SystemExit) as exc:
        tool.main(['coco', '--out', str(tmp_path / 'c'), '--frames', '3', '--max-count', '2'])
    assert exc.value.code == 2  # argparse's usage error
    err = capsys.readouterr().err
    assert 'coco does not take --frames, --max-count' in err
    flags = err.split('its flags: ')[1].split()
    assert {'--num-train', '--num-val', '--classes', '--no-progress', '--mask-format'} <= set(flags)
    assert not [w for w in err.split() if w in ('num_train', 'progress_bar', "'num_train',")]
    assert '--frames' not in flags and not (tmp_path / 'c').exists()


def test_eval_zeroshot_needs_a_checkpoint_or_an_explicit_random_init(capsys):
    tool = load_tool('tools/eval_zeroshot.py')
    cfg = osp.join(ROOT, 'configs', 'core', 'pe_core_toy.py')
    with pytest.raises(SystemExit):
        tool.parse_args([cfg])
    assert '--checkpoint FILE (or --random-init' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        tool.parse_args([cfg, '--checkpoint', 'a.pt', '--random-init'])
    assert tool.parse_args([cfg, '--random-init']).random_init
    assert tool.parse_args([cfg, '--checkpoint', 'a.pt']).checkpoint == 'a.pt'


def test_eval_zeroshot_unique_captions_and_cfg_options(tmp_path):
    """--unique-captions keeps the first item of each caption, in manifest order."""
    from PIL import Image
    root = tmp_path / 'it'
    root.mkdir()
    captions = ['a red circle', 'a blue square', 'a red circle', 'a green ball',
                'a blue square', 'a red circle']
    with open(root / 'val.jsonl', 'w') as fh:
        for i, cap in enumerate(captions):
            Image.new('RGB', (8, 6)).save(root / f'{i}.png')
            fh.write(json.dumps(dict(image=f'{i}.png', caption=cap, label=i % 2)) + '\n')
    tool = load_tool('tools/eval_zeroshot.py')
    cfg_file = osp.join(ROOT, 'configs', 'core', 'pe_core_toy.py')
    args = tool.parse_args([cfg_file, '--random-init', '--data-root', str(root),
                            '--ann-file', 'val.jsonl', '--unique-captions',
                            '--cfg-options', 'test_dataloader.batch_size=3'])
    cfg = tool.build_cfg(args)
    assert cfg.test_dataloader.dataset.indices == [0, 1, 3]
    assert cfg.test_dataloader.batch_size == 3
    args = tool.parse_args([cfg_file, '--random-init', '--data-root', str(root),
                            '--ann-file', 'val.jsonl'])
    assert 'indices' not in tool.build_cfg(args).test_dataloader.dataset


def test_visualize_features_with_and_without_mask_write_different_files(tmp_path):
    tool = load_tool('tools/analysis/visualize_features.py')
    arch = json.dumps(dict(patch_size=16, width=32, depth=2, heads=2, mlp_dim=64, cls_token=True,
                           pool=None, out_dim=None, layer_scale=None, ln_post=False,
                           img_size=64))
    common = ['skimage:astronaut', '--arch', arch, '--layer', '1', '--size', '64',
              '--height', '32', '--out', str(tmp_path), '--device', 'cpu']
    plain = tool.main(common)
    masked = tool.main(common + ['--mask', '0.5'])
    assert [osp.basename(p) for p in plain] == ['layer1_astronaut.png']
    assert [osp.basename(p) for p in masked] == ['layer1_astronaut_mask0.5.png']
    assert osp.isfile(plain[0]) and osp.isfile(masked[0])
