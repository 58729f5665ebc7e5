"""The shell commands of README.md and docs/*.md, as tests/test_docs_commands.py runs them.

Fenced blocks are tagged by their info string:

* ```` ```bash runnable ```` -- run here, in order, in one fresh work folder per document (so
  the toy data one block writes is shared by the next), each command must exit 0. A comment
  line ``# writes: PATH ...`` (globs allowed) after a command lists files that must exist
  afterwards.
* ```` ```bash check ```` -- needs real weights, data or a GPU: not run; every ``--flag`` of
  a ``python tools/...`` command must be accepted by that tool's ``--help``, ``make`` targets
  must exist in the Makefile and other scripts must exist.

Untagged ```` ```bash ```` blocks are an error (every command is one or the other).
"""
import os.path as osp
import re
import shlex
from dataclasses import dataclass, field
from typing import List

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
DOCS = ['README.md', 'docs/align.md', 'docs/core.md', 'docs/tracking.md',
        'docs/segmentation.md', 'docs/depth.md', 'docs/analysis.md',
        'docs/paper_miniature.md']
TAGS = ('runnable', 'check')
FENCE = re.compile(r'^```(\S*)[ \t]*(.*)$')
FLAG = re.compile(r'(?<![\w-])(--[A-Za-z][\w-]*)')


@dataclass
class Command:
    doc: str
    line: int  # 1-based line of the command's first line in the doc
    text: str  # continuation lines joined, comments removed
    writes: List[str] = field(default_factory=list)

    @property
    def argv(self) -> List[str]:
        return shlex.split(self.text)

    def __str__(self):
        return f'{self.doc}:{self.line}: {self.text}'


@dataclass
class Block:
    doc: str
    line: int
    tag: str
    commands: List[Command]


def blocks(doc: str) -> List[Block]:
    """Every ```bash block of ``doc`` (a path relative to the repository)."""
    with open(osp.join(ROOT, doc)) as fh:
        lines = fh.read().splitlines()
    out, i = [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m or not m.group(1):
            i += 1
            continue
        lang, tag, start = m.group(1), m.group(2).strip(), i + 1
        body = []
        i += 1
        while i < len(lines) and not lines[i].startswith('```'):
            body.append(lines[i])
            i += 1
        i += 1
        if lang in ('bash', 'sh', 'shell'):
            if tag not in TAGS:
                raise ValueError(f'{doc}:{start}: ```{lang} block without a tag '
                                 f'({" / ".join(TAGS)}): {tag!r}')
            out.append(Block(doc, start, tag, parse_commands(doc, start + 1, body)))
    return out


def parse_commands(doc: str, first_line: int, body: List[str]) -> List[Command]:
    commands, pending, pending_line = [], '', 0
    for k, raw in enumerate(body):
        stripped = raw.strip()
        if not pending and stripped.startswith('#'):
            m = re.match(r'#\s*writes:\s*(.+)$', stripped)
            if m:
                if not commands:
                    raise ValueError(f'{doc}:{first_line + k}: "# writes:" before any command')
                commands[-1].writes += m.group(1).split()
            continue
        if not stripped and not pending:
            continue
        if not pending:
            pending_line = first_line + k
        text = _strip_comment(raw)
        if text.rstrip().endswith('\\'):
            pending += text.rstrip()[:-1] + ' '
            continue
        pending += text
        commands.append(Command(doc, pending_line, ' '.join(pending.split())))
        pending = ''
    if pending:
        raise ValueError(f'{doc}:{pending_line}: command ends with a line continuation')
    return commands


def _strip_comment(line: str) -> str:
    """Drop a trailing `  # comment` (outside quotes)."""
    quote = None
    for j, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in '\'"':
            quote = ch
        elif ch == '#' and (j == 0 or line[j - 1].isspace()):
            return line[:j]
    return line


def flags(command: Command) -> List[str]:
    """Every --flag the command names, optional ``[--x]`` ones included."""
    return FLAG.findall(command.text)


def tool_script(command: Command):
    """``tools/...py`` of a ``python tools/...py`` command, else None."""
    argv = command.argv
    if len(argv) >= 2 and argv[0] in ('python', 'python3') and argv[1].endswith('.py'):
        return argv[1]
    return None
