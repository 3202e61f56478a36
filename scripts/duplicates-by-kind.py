#!/usr/bin/env python3
"""Splits the output of the `duplicates` tool into pairs inside Go import
blocks and the rest.

`duplicates` passes over import lines, but only in their one-line form
(`import "fmt"`): inside Go's grouped `import ( ... )` block each line is a
bare string, and two files importing the same six packages in a row are
listed as a pair. A pair one of whose sides lies wholly inside an import
block shares nothing but import lines; this script counts those apart.

    duplicates --most 200 | python3 scripts/duplicates-by-kind.py [-v]
"""
import re
import sys


def import_block(path):
    """The first and last line of path's grouped import block, or None."""
    try:
        with open(path) as f:
            lines = f.read().split("\n")
    except OSError:
        return None
    start = None
    for i, line in enumerate(lines, 1):
        if line.startswith("import ("):
            start = i
        elif start and line.strip() == ")":
            return (start, i)
    return None


def main():
    verbose = "-v" in sys.argv[1:]
    imports, other = [], []
    for line in sys.stdin:
        m = re.match(r"D\d+ (\S+):(\d+)-(\d+) ~ (\S+):(\d+)-(\d+)", line)
        if not m:
            continue
        f1, a1, b1, f2, a2, b2 = m.groups()
        inside = False
        for f, a, b in ((f1, a1, b1), (f2, a2, b2)):
            r = import_block(f) if f.endswith(".go") else None
            if r and r[0] <= int(a) and int(b) <= r[1]:
                inside = True
        (imports if inside else other).append(line.rstrip())
    print(f"{len(imports) + len(other)} pairs: {len(imports)} inside Go import blocks, {len(other)} other")
    if verbose:
        for line in other:
            print(line)


if __name__ == "__main__":
    main()
