"""Docs as tests: every shell command of README.md and the task docs runs as written (``bash
runnable`` blocks, on toy data in a fresh folder) or at least parses (``bash check`` blocks:
each ``--flag`` accepted by the tool's ``--help``). See tests/docs_commands.py for the tags."""
import contextlib
import glob
import importlib.util
import inspect
import io
import os
import os.path as osp
import re
import subprocess
import sys
from functools import lru_cache

import pytest

from tests.docs_commands import DOCS, ROOT, Command, blocks, flags, parse_commands, tool_script


@lru_cache(maxsize=None)
def tool_help(script: str) -> str:
    """``--help`` text of a tool, from its parser in this process (no torch re-import)."""
    path = osp.join(ROOT, script)
    assert osp.isfile(path), f'{script} does not exist'
    spec = importlib.util.spec_from_file_location(f'doc_tool_{abs(hash(script))}', path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    if not hasattr(mod, 'parse_args'):  # a tool without a parse_args(argv): ask a process
        return subprocess.run([sys.executable, path, '--help'], capture_output=True, text=True,
                              cwd=ROOT, env=_env(), timeout=300).stdout
    takes_argv = bool(inspect.signature(mod.parse_args).parameters)
    buf, argv = io.StringIO(), sys.argv
    try:
        sys.argv = [path, '--help']  # for a parse_args() that reads sys.argv
        with contextlib.redirect_stdout(buf), pytest.raises(SystemExit):
            mod.parse_args(['--help']) if takes_argv else mod.parse_args()
    finally:
        sys.argv = argv
    return buf.getvalue()


def make_targets() -> set:
    with open(osp.join(ROOT, 'Makefile')) as fh:
        return set(re.findall(r'^([\w.-]+):', fh.read(), flags=re.M))


def check_command(cmd: Command) -> None:
    """A command that cannot run here: its tool, flags, configs and make targets exist."""
    argv = cmd.argv
    script = tool_script(cmd)
    if script:
        accepted = set(re.findall(r'(?<![\w-])(--[A-Za-z][\w-]*)', tool_help(script)))
        unknown = [f for f in flags(cmd) if f not in accepted]
        assert not unknown, f'{cmd}\n  {script} --help does not accept {unknown}'
    elif argv[:3] == ['python', '-m', 'pytest']:
        missing = [a for a in argv[3:] if not a.startswith('-') and not osp.exists(osp.join(ROOT, a))]
        assert not missing, f'{cmd}\n  no test file {missing}'
    elif argv[0] == 'make':
        missing = [t for t in argv[1:] if not t.startswith('-') and t not in make_targets()]
        assert not missing, f'{cmd}\n  no Makefile target {missing}'
    elif argv[0].startswith('tools/'):
        assert os.access(osp.join(ROOT, argv[0]), os.X_OK), f'{cmd}\n  {argv[0]} not executable'
    else:
        raise AssertionError(f'{cmd}\n  unknown kind of command (python tools/..., make, tools/*.sh)')
    for arg in argv:
        if arg.startswith('configs/') and arg.endswith('.py'):
            assert osp.isfile(osp.join(ROOT, arg)), f'{cmd}\n  {arg} does not exist'


def _env() -> dict:
    env = dict(os.environ, PYTHONPATH=ROOT, PYTHONHASHSEED='0', MPLBACKEND='Agg',
               OMP_NUM_THREADS='1')  # tiny models: extra threads only contend on a busy CPU
    return env


def run_command(cmd: Command, work: str) -> None:
    argv = cmd.argv
    script = tool_script(cmd)
    assert script, f'{cmd}\n  runnable blocks hold `python tools/...` commands only'
    proc = subprocess.run([sys.executable] + argv[1:], cwd=work, env=_env(),
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, (f'{cmd}\n  exit {proc.returncode}\n'
                                  f'{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}')
    for pattern in cmd.writes:
        assert glob.glob(osp.join(work, pattern)), f'{cmd}\n  wrote no {pattern}'


def fresh_work_folder(tmp_path) -> str:
    """An empty folder where `tools/` and `configs/` resolve to this checkout, as in a clone."""
    for name in ('tools', 'configs'):
        os.symlink(osp.join(ROOT, name), tmp_path / name)
    return str(tmp_path)


@pytest.mark.parametrize('doc', DOCS)
def test_every_bash_block_is_tagged_and_check_commands_parse(doc):
    found = blocks(doc)
    assert found, f'{doc} has no bash block'
    for block in found:
        assert block.commands, f'{doc}:{block.line}: empty block'
        for cmd in block.commands:
            check_command(cmd)  # runnable commands too: a bad flag fails before anything runs


@pytest.mark.slow
@pytest.mark.parametrize('doc', [d for d in DOCS
                                 if any(b.tag == 'runnable' for b in blocks(d))])
def test_runnable_commands(doc, tmp_path):
    work = fresh_work_folder(tmp_path)
    for block in blocks(doc):
        if block.tag == 'runnable':
            for cmd in block.commands:
                run_command(cmd, work)


def test_a_broken_flag_fails_the_check_and_the_parser_keeps_continuations():
    cmds = parse_commands('x.md', 1, [
        '# writes: nothing-yet-is-an-error-only-after-a-command'[:0] or '',
        'python tools/make_toy_data.py davis --out data/d \\',
        '    --num-train 1   # a comment',
        '# writes: data/d/ImageSets',
        'python tools/make_toy_data.py davis --out data/d --num-trian 1',
    ])
    assert [c.text for c in cmds] == [
        'python tools/make_toy_data.py davis --out data/d --num-train 1',
        'python tools/make_toy_data.py davis --out data/d --num-trian 1']
    assert cmds[0].writes == ['data/d/ImageSets'] and cmds[0].line == 2
    check_command(cmds[0])
    with pytest.raises(AssertionError, match=r"does not accept \['--num-trian'\]"):
        check_command(cmds[1])
    with pytest.raises(AssertionError, match='no-such.py does not exist'):
        check_command(Command('x.md', 1, 'python tools/train.py configs/no-such.py'))
