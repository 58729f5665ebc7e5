"""tools/dev/mutation_check.py: outcomes, the file always restored, snippets still present."""
import importlib.util
import os.path as osp

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def _tool():
    spec = importlib.util.spec_from_file_location(
        'mutation_check', osp.join(ROOT, 'tools', 'dev', 'mutation_check.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_outcomes_and_source_restored(tmp_path, monkeypatch):
    tool = _tool()
    monkeypatch.setattr(tool, 'ROOT', str(tmp_path))
    src = 'def f():\n    return 1  # one\n'
    (tmp_path / 'm.py').write_text(src)
    (tmp_path / 'test_m.py').write_text('from m import f\n\n\ndef test_f():\n    assert f() == 1\n')
    cases = {'caught': tool.Mutant('a', 'g', 'm.py', 'return 1', 'return 2', ['test_m.py']),
             'survived': tool.Mutant('b', 'g', 'm.py', '# one', '# two', ['test_m.py']),
             'stale': tool.Mutant('c', 'g', 'm.py', 'return 3', 'return 4', ['test_m.py'])}
    for outcome, mutant in cases.items():
        assert tool.run_one(mutant, timeout=120) == outcome
        assert (tmp_path / 'm.py').read_text() == src
        assert not (tmp_path / ('m.py' + tool.BACKUP_SUFFIX)).exists()
    # a run killed mid-mutant leaves the backup: the next start puts it back
    (tmp_path / ('m.py' + tool.BACKUP_SUFFIX)).write_text(src)
    (tmp_path / 'm.py').write_text(src.replace('return 1', 'return 2'))
    tool.restore_leftovers([cases['caught']])
    assert (tmp_path / 'm.py').read_text() == src


def test_every_listed_module_has_three_mutants_and_no_snippet_is_ambiguous():
    tool = _tool()
    modules = {}
    for m in tool.MUTANTS:
        modules.setdefault(m.module, []).append(m)
        text = open(osp.join(ROOT, m.path)).read() if osp.exists(osp.join(ROOT, m.path)) else ''
        assert text.count(m.old) <= 1, m.name  # 0 is 'stale' (code moved), 2+ is ambiguous
        assert m.old != m.new and all(osp.isfile(osp.join(ROOT, t)) for t in m.tests), m.name
    assert set(modules) == {'assigners', 'deta_head', 'losses', 'rope', 'pos_embed',
                            'davis_metric', 'label_propagation', 'safe_loading', 'soft_nms',
                            'query_selection', 'converters'}
    assert all(len(ms) >= 3 for ms in modules.values())
