"""``pe_dense.backbone`` needs only torch, mmengine and timm; importing pe_dense patches nothing.

Each check runs in a fresh interpreter: a pytest process has long imported everything.
"""
import glob
import json
import os
import re
import subprocess
import sys
import textwrap

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BLOCKED = ('mmdet', 'mmseg', 'mmcv', 'open_clip', 'sam2', 'mmpretrain')
ARCH = dict(patch_size=16, width=64, depth=2, heads=4, mlp_dim=128, cls_token=True, img_size=64)

BLOCKER = textwrap.dedent(f"""
    import importlib.abc, sys
    class Blocker(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split('.')[0] in {BLOCKED!r}:
                raise ImportError(f'{{name}} is blocked: the light backbone must not import it')
    sys.meta_path.insert(0, Blocker())
    """)


def _run(code: str) -> str:
    out = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='1'))
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout.strip().splitlines()[-1]


def _tiny_pe_output():
    from pe_dense.models.backbones import PE
    torch.manual_seed(0)
    model = PE(dict(ARCH), out_indices=(-1, )).eval()
    torch.manual_seed(1)
    with torch.no_grad():
        return model(torch.randn(1, 3, 48, 80))[0]


def test_backbone_registers_and_runs_without_task_libraries():
    """custom_imports=['pe_dense.backbone'] with mmdet, mmseg, mmcv (ops, ext), open_clip and
    sam2 unimportable: PE is registered, builds from a config dict and runs; the output equals
    the same seeded model built in this (fully equipped) process."""
    code = BLOCKER + textwrap.dedent(f"""
        import json, sys, torch
        from mmengine.config import Config
        from mmengine.registry import MODELS
        try:
            import mmcv.ops
            sys.exit('the blocker let mmcv.ops through')
        except ImportError:
            pass
        cfg = Config(dict(custom_imports=dict(imports=['pe_dense.backbone'],
                                              allow_failed_imports=False)))
        from mmengine.utils import import_modules_from_strings
        import_modules_from_strings(**cfg.custom_imports)
        torch.manual_seed(0)
        model = MODELS.build(dict(type='PE', arch={ARCH!r}, out_indices=(-1, ))).eval()
        torch.manual_seed(1)
        with torch.no_grad():
            out = model(torch.randn(1, 3, 48, 80))[0]
        loaded = sorted({{m.split('.')[0] for m in sys.modules}} & set({BLOCKED!r}))
        print(json.dumps(dict(shape=list(out.shape), values=out.flatten().tolist(),
                              loaded=loaded)))
        """)
    got = json.loads(_run(code))
    want = _tiny_pe_output()
    assert got['loaded'] == [] and got['shape'] == [1, 64, 3, 5]
    torch.testing.assert_close(torch.tensor(got['values']).view(want.shape), want)


def test_blocker_does_block_a_task_module():
    """The meta-path blocker is effective: importing the detection parts fails under it."""
    out = subprocess.run([sys.executable, '-c', BLOCKER + 'import pe_dense.det'], cwd=ROOT,
                         capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=ROOT))
    assert out.returncode != 0 and 'is blocked' in out.stderr


def test_importing_pe_dense_changes_nothing_global_until_the_tools_switch_it_on(tmp_path):
    """Third-party modules pe_dense imports (timm, mmdet, ...) are imported first: what they
    change on import is theirs. Then importing every part of pe_dense changes nothing
    (checkpoint loaders, file backends, torch's allowlist, warnings, logging, environment,
    existing registry entries) but add the ``pe_dense::`` config prefix; ``enable_checkpoint_io``
    does change them."""
    deps = tmp_path / 'deps.json'
    _run(textwrap.dedent(f"""
        import json, sys
        import pe_dense.all  # noqa
        mods = [m for m in sys.modules if not m.startswith(('pe_dense', 'tests'))]
        print(json.dump(mods, open({str(deps)!r}, 'w')))
        """))
    code = textwrap.dedent(f"""
        import importlib, json
        for name in json.load(open({str(deps)!r})):
            try:
                importlib.import_module(name)
            except Exception:
                pass
        from tests.fixtures.global_state import changed, snapshot
        before = snapshot()
        import pe_dense, pe_dense.backbone, pe_dense.all  # noqa
        after_import = changed(before, snapshot())
        from pe_dense.engine import enable_checkpoint_io
        enable_checkpoint_io()
        from mmengine.config.utils import MODULE2PACKAGE
        print(json.dumps(dict(imported=after_import, enabled=changed(before, snapshot()),
                              prefix=MODULE2PACKAGE.get('pe_dense'))))
        """)
    got = json.loads(_run(code))
    assert got['imported'] == [] and got['prefix'] == 'pe_dense'
    assert {'checkpoint_loaders', 'file_backends', 'file_prefixes', 'safe_globals'} <= \
        set(got['enabled'])


def test_pe_dense_checkpoint_loads_into_pe_without_the_process_allowlist(tmp_path):
    """A training checkpoint (MessageHub's HistoryBuffer, numpy meta) loads through PE's
    init_cfg; the allowlist is scoped to the call and leaves torch's list as it was."""
    import numpy as np
    from mmengine.logging.history_buffer import HistoryBuffer

    from pe_dense.models.backbones import PE
    torch.manual_seed(0)
    src = PE(dict(ARCH))
    buf = HistoryBuffer()
    buf.update(1.0)
    path = tmp_path / 'iter_4.pth'
    torch.save(dict(meta=dict(seed=np.int64(3)), message_hub=dict(loss=buf),
                    state_dict={f'backbone.{k}': v for k, v in src.state_dict().items()}), path)
    before = list(torch.serialization.get_safe_globals())
    dst = PE(dict(ARCH), init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    dst.init_weights()
    assert torch.serialization.get_safe_globals() == before
    for k, v in src.state_dict().items():
        torch.testing.assert_close(dst.state_dict()[k], v, msg=k)


def _config_types(obj, out):
    if isinstance(obj, dict):
        if isinstance(obj.get('type'), str):
            out.add(obj['type'])
        for v in obj.values():
            _config_types(v, out)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            _config_types(v, out)
    return out


def _inherited(paths):
    """Configs another config lists in ``_base_`` (fragments such as a model-only file)."""
    out = set()
    for path in paths:
        with open(path) as f:
            text = f.read()
        for rel in re.findall(r"'(\.{1,2}/[^']+\.py)'", text.split('_base_ =', 1)[-1][:400]):
            out.add(os.path.normpath(os.path.join(os.path.dirname(path), rel)))
    return out


@pytest.mark.slow
def test_every_config_imports_what_it_uses():
    """For each config, importing only its custom_imports (in a fresh process) registers every
    pe_dense type the config names (DETA, PE, LinearProbeHead, ExportStudentHook ...)."""
    from mmengine.config import Config
    groups = {}
    paths = sorted(glob.glob(os.path.join(ROOT, 'configs', '**', '*.py'), recursive=True))
    fragments = _inherited(paths)
    for path in paths:
        if '_base_' in path or path in fragments:
            continue
        cfg = Config.fromfile(path, import_custom_modules=False)
        imports = tuple(cfg.get('custom_imports', {}).get('imports', ()))
        groups.setdefault(imports, {})[path] = sorted(_config_types(cfg.to_dict(), set()))
    probe = textwrap.dedent("""
        import importlib, json, sys
        import mmengine.registry as reg
        def registered():
            regs = [r for r in vars(reg).values() if isinstance(r, reg.Registry)]
            for lib in ('mmdet.registry', 'mmseg.registry'):
                if lib in sys.modules:
                    regs += [r for r in vars(sys.modules[lib]).values()
                             if isinstance(r, reg.Registry)]
            return {k for r in regs for k, v in r.module_dict.items()
                    if v.__module__.startswith('pe_dense')}
        for name in json.loads(sys.argv[1]):
            importlib.import_module(name)
        print(json.dumps(sorted(registered())))
        """)
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='1')

    def run(imports):
        out = subprocess.run([sys.executable, '-c', probe, json.dumps(imports)], cwd=ROOT,
                             capture_output=True, text=True, env=env)
        assert out.returncode == 0, (imports, out.stderr[-2000:])
        return set(json.loads(out.stdout.strip().splitlines()[-1]))

    ours = run(['pe_dense.all'])
    assert {'PE', 'DETA', 'LinearProbeHead', 'ExportStudentHook', 'PECLIP'} <= ours
    missing = {}
    for imports, configs in groups.items():
        found = run(list(imports))
        for path, types in configs.items():
            lacking = sorted((set(types) & ours) - found)
            if lacking:
                missing[os.path.relpath(path, ROOT)] = (imports, lacking)
    assert missing == {}


def test_packages_hold_modules_and_hooks_live_in_engine_hooks():
    """No empty package (an __init__ with nothing beside it); every hook pe_dense registers is
    defined under pe_dense/engine/hooks/, where a newcomer looks for it."""
    import pe_dense.all  # noqa: F401  registers every component
    from mmengine.registry import HOOKS
    empty = []
    for folder, dirs, files in os.walk(os.path.join(ROOT, 'pe_dense')):
        dirs[:] = [d for d in dirs if d not in ('__pycache__', '.mim')]
        if '__init__.py' in files and len(files) == 1 and not dirs:
            empty.append(os.path.relpath(folder, ROOT))
    assert empty == []
    ours = {k: v.__module__ for k, v in HOOKS.module_dict.items()
            if v.__module__.startswith('pe_dense')}
    assert {'ExportStudentHook', 'RNGStateHook', 'NaNGuardHook'} <= set(ours)
    assert {k: m for k, m in ours.items() if not m.startswith('pe_dense.engine.hooks.')} == {}
