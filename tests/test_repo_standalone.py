"""The repository stands on its own: code, configs, docs and tests cite the paper or the official
repository, never a document outside the repository, a machine path, or how the work was
organised; a LICENSE and a citation ship with it."""
import glob
import os.path as osp
import re

import yaml

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TOPS = ('pe_dense', 'configs', 'docs', 'tools', 'tests', 'scripts', 'benchmarks')
FILES = ('README.md', 'Makefile', 'setup.py', 'CITATION.cff', 'model-index.yml', 'pytest.ini')
SUFFIXES = ('.py', '.md', '.sh', '.cfg', '.cff', '.txt', '.yaml', '.yml', '.json', '.ini')
# split so that this file does not match itself
FORBIDDEN = [
    ('a fact sheet outside the repository',
     re.compile('REFER' 'ENCE' r'|ARCHIT' r'ECTURE\.md|HELP' r'ERS\.md')),
    ('a path outside the repository', re.compile(r'\.\./sha' r'red|/wo' r'rk/|/w' r't/')),
    ('how the work was organised',
     re.compile(r'\bthe lea' r'd\b|\bsessio' r'ns?\b|\bthe iss' r"ues?('s)?\b|\biss" r'ue #?\d+'
                r'|development mach' r'ine', re.IGNORECASE)),
]


def _files():
    paths = [osp.join(ROOT, f) for f in FILES if osp.isfile(osp.join(ROOT, f))]
    for top in TOPS:
        paths += [p for p in glob.glob(osp.join(ROOT, top, '**', '*'), recursive=True)
                  if p.endswith(SUFFIXES) and osp.isfile(p)]
    return sorted(paths)


def test_no_reference_outside_the_repository():
    files = _files()
    assert len(files) > 100 and any(p.endswith('README.md') for p in files)
    hits = []
    for path in files:
        with open(path, encoding='utf-8', errors='replace') as f:
            for n, line in enumerate(f, 1):
                for what, pattern in FORBIDDEN:
                    if pattern.search(line):
                        hits.append(f'{osp.relpath(path, ROOT)}:{n}: {what}: {line.strip()}')
    assert not hits, '\n'.join(hits)


def test_the_rule_catches_what_it_should():
    bad = ['see REFER' 'ENCE.md section 3', 'CI uses ../sha' 'red/wheels', 'as the iss' 'ue asks',
           'see ARCHIT' 'ECTURE.md', 'per HELP' 'ERS.md', 'in /w' 't/review',
           'measured on the development mach' 'ine', 'the lea' 'd said so']
    for line in bad:
        assert any(p.search(line) for _, p in FORBIDDEN), line
    assert not any(p.search('work_dirs/pe_deta_toy and the tissue class')
                   for _, p in FORBIDDEN)


def test_license_and_citation():
    text = open(osp.join(ROOT, 'LICENSE'), encoding='utf-8').read()
    assert 'Apache License' in text and 'Version 2.0, January 2004' in text
    assert 'END OF TERMS AND CONDITIONS' in text
    cff = yaml.safe_load(open(osp.join(ROOT, 'CITATION.cff'), encoding='utf-8'))
    paper = cff['preferred-citation']
    assert cff['license'] == 'Apache-2.0'
    assert paper['title'].startswith('Perception Encoder: The best visual embeddings')
    assert 'arXiv:2504.13181' in str(paper['identifiers'])
    assert paper['authors'][0]['family-names'] == 'Bolya' and len(paper['authors']) == 18
    readme = open(osp.join(ROOT, 'README.md'), encoding='utf-8').read()
    assert '@article{bolya2025PerceptionEncoder' in readme and 'docs/reproduction.md' in readme
