#!/usr/bin/env python3
"""The layer check: every quoted #include names its folder, and the arrows point one way.

    cli/ -> web/ -> orchestrator/ -> executors/ -> base/        kernels/ -> base/

Usage: check.py [ROOT]       check the tree at ROOT (default: the source root)
       check.py --self-test  show that the check fails on wrong includes and passes on right ones

Exits 1 and prints file:line: reason for each include that crosses a layer the wrong way, or that
reaches another folder's internal header (NAME_int.h)."""
import os
import re
import sys
import tempfile

# What each folder may include (by folder, or by exact header path).
ALLOWED = {
    'base': {'base'},
    'executors': {'base', 'executors'},
    'orchestrator': {'base', 'orchestrator', 'executors/executor.h'},
    'web': {'base', 'orchestrator', 'web'},
    'cli': {'base', 'executors', 'orchestrator', 'web', 'cli'},
    'kernels': {'base', 'kernels'},
}
INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"]+)"')


def allowed(folder: str, target: str) -> bool:
    rules = ALLOWED[folder]
    return target in rules or target.split('/', 1)[0] in rules


def check_file(root: str, folder: str, path: str) -> list:
    problems = []
    rel = os.path.relpath(path, root)
    with open(path, encoding='utf-8', errors='replace') as f:
        for lineno, line in enumerate(f, 1):
            m = INCLUDE.match(line)
            if not m:
                continue
            target = m.group(1)
            where = '%s:%d: #include "%s"' % (rel, lineno, target)
            parts = target.split('/')
            if '..' in parts or '.' in parts:
                problems.append(where + ': a relative include; name the folder instead')
            elif len(parts) != 2 or parts[0] not in ALLOWED:
                problems.append(where + ': an include must name its folder (e.g. "base/log.h")')
            elif parts[1].endswith('_int.h') and parts[0] != folder:
                problems.append(where + ': %s is internal to %s/' % (target, parts[0]))
            elif not allowed(folder, target):
                problems.append(where + ': %s/ may not include %s/ (arrows: cli -> web -> '
                                'orchestrator -> executors -> base; kernels -> base)' % (folder, parts[0]))
    return problems


def check_tree(root: str) -> list:
    problems = []
    for folder in sorted(ALLOWED):
        top = os.path.join(root, folder)
        if not os.path.isdir(top):
            continue
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames[:] = [d for d in dirnames if d not in ('node_modules', 'ui')]
            for name in sorted(filenames):
                if name.endswith(('.c', '.h')):
                    problems += check_file(root, folder, os.path.join(dirpath, name))
    return problems


def self_test() -> int:
    cases = {
        'base/a.c': ('#include "orchestrator/dag.h"\n', 'base/ may not include orchestrator/'),
        'executors/b.c': ('#include "orchestrator/store.h"\n', 'executors/ may not include orchestrator/'),
        'orchestrator/c.c': ('#include "web/api.h"\n', 'orchestrator/ may not include web/'),
        'orchestrator/d.c': ('#include "executors/local.h"\n', 'orchestrator/ may not include executors/'),
        'orchestrator/e.c': ('#include "cli/cli.h"\n', 'orchestrator/ may not include cli/'),
        'web/f.c': ('#include "cli/cli.h"\n', 'web/ may not include cli/'),
        'kernels/g.c': ('#include "orchestrator/dag.h"\n', 'kernels/ may not include orchestrator/'),
        'executors/h.h': ('#include "../base/log.h"\n', 'a relative include'),
        'web/i.c': ('#include "store.h"\n', 'must name its folder'),
        'web/j.c': ('#include "orchestrator/engine_int.h"\n', 'internal to orchestrator/'),
    }
    good = {
        'cli/main.c': '#include "web/server.h"\n#include "orchestrator/store.h"\n#include <stdio.h>\n',
        'web/ok.c': '#include "orchestrator/dag.h"\n#include "base/log.h"\n',
        'orchestrator/ok.c': '#include "executors/executor.h"\n#include "base/util.h"\n',
        'executors/ok.c': '#include "base/evloop.h"\n',
        'kernels/ok.c': '#include "base/util.h"\n',
    }
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        def write(rel, text):
            os.makedirs(os.path.dirname(os.path.join(tmp, rel)), exist_ok=True)
            with open(os.path.join(tmp, rel), 'w') as f:
                f.write(text)
        for rel, text in good.items():
            write(rel, text)
        if check_tree(tmp):
            print('FAIL: a tree of allowed includes was refused:', check_tree(tmp))
            failed += 1
        for rel, (text, reason) in cases.items():
            write(rel, text)
            found = [p for p in check_tree(tmp) if p.startswith(rel + ':')]
            if len(found) != 1 or reason not in found[0]:
                print('FAIL: %s with %s: expected one problem saying %r, got %r' % (rel, text.strip(), reason, found))
                failed += 1
            else:
                print('ok: refused', found[0])
            os.remove(os.path.join(tmp, rel))
    passed = len(cases) + 1 - failed
    print('%d passed, %d failed' % (passed, failed))
    return 1 if failed else 0


def main() -> int:
    if sys.argv[1:] == ['--self-test']:
        return self_test()
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), '..', '..')
    problems = check_tree(os.path.abspath(root))
    for p in problems:
        print(p)
    print('layer check: %d problem(s)' % len(problems))
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
