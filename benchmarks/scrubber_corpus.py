"""What a change to the free-text scrubber does to the repository's own Chinese, this tree and
another paired.

    .venv/bin/python benchmarks/scrubber_corpus.py /work/main

Every distinct line with a Chinese character in the other tree's tracked files (tests, demo
stories, docs, pages: what clerks and the docs write) is scrubbed by each tree's ``redact``, in
a process of each tree's code; the lines whose result differs are printed, the input and both
results, then how many. A rule should change only the lines that hold its own shape (a miss
now caught); any other is over-scrubbing (an ordinary word taken for a name).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_HAN = re.compile(r"[\u4e00-\u9fff]")

CHILD = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from shared.kernel.privacy.redaction import redact
print(json.dumps([redact(line) for line in json.load(sys.stdin)], ensure_ascii=False))
"""


def corpus(tree: Path) -> list[str]:
    """The distinct lines with Chinese in ``tree``'s tracked files, stripped, sorted."""
    files = subprocess.run(["git", "-C", str(tree), "ls-files"], capture_output=True,
                           text=True, check=True).stdout.splitlines()
    lines: set[str] = set()
    for name in files:
        try:
            text = (tree / name).read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        lines.update(s for line in text.splitlines() if _HAN.search(s := line.strip()))
    return sorted(lines)


def scrubbed(tree: Path, lines: list[str]) -> list[str]:
    out = subprocess.run([sys.executable, "-c", CHILD, str(tree)], input=json.dumps(lines),
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("other", type=Path)
    args = parser.parse_args()
    lines = corpus(args.other)
    before, after = scrubbed(args.other, lines), scrubbed(ROOT, lines)
    changed = 0
    for line, old, new in zip(lines, before, after, strict=True):
        if old != new:
            changed += 1
            print(f"in:    {line}\nother: {old}\nthis:  {new}\n")
    print(f"{changed} of {len(lines)} distinct lines of Chinese scrubbed otherwise")


if __name__ == "__main__":
    main()
