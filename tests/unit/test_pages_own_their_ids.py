"""The browser tests share one set of services per pytest worker, and which files share a
worker, in what order, varies from run to run: a center code, a staff id or a resident's ID
number written into two files let one test see the other's rows (open cases, reviews, the
desk's counts) in some orders only (stop 52 fixed three such failures one by one). Each test
takes its center and staff from ``Center.own`` (the ``own`` fixture); a file that still writes
one of its own keeps it to itself, and never one ``Own`` hands out."""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

PAGES = Path(__file__).resolve().parents[1] / "pages"

#: A staff id (工号) as the tests write them: clerk-017, director-01, supervisor-05 (not the
#: ``pad-clerk-no`` of a page's element id).
STAFF = re.compile(r"(?<![\w-])(?:clerk|director|supervisor)-[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*")
#: A center code: region, district, name (SH-PD-HUAMU); a service item's second part is a word.
CENTER = re.compile(r"(?<![\w-])[A-Z]{2}-[A-Z]{2}-[A-Z0-9]+(?![\w-])")
#: A resident's ID number, or the 17 digits ``id_number`` completes.
ID_NUMBER = re.compile(r"(?<!\d)\d{17}[\dX]?(?!\d)")
#: What ``Own`` hands out (tests/pages/center.py): never written by hand.
HANDED_OUT = re.compile(r"^(?:SH-PAGES-\d|clerk-p\d|director-p\d)")


def written_ids(folder: Path) -> dict[str, set[str]]:
    """Each id written in a string of the folder's test modules -> the files writing it."""
    found: dict[str, set[str]] = defaultdict(set)
    for path in sorted(folder.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                for pattern in (STAFF, CENTER, ID_NUMBER):
                    for match in pattern.finditer(node.value):
                        found[match.group()].add(path.name)
    return found


def shared_ids(folder: Path) -> dict[str, list[str]]:
    return {value: sorted(files) for value, files in written_ids(folder).items()
            if len(files) > 1 or HANDED_OUT.match(value)}


def test_no_two_pages_test_files_write_the_same_center_staff_id_or_id_number() -> None:
    assert shared_ids(PAGES) == {}, (
        "give each test its own center and staff with the own fixture (Center.own), and a "
        "resident an ID number no other file registers")


def test_the_guard_sees_an_id_written_in_two_files(tmp_path: Path) -> None:
    (tmp_path / "test_a.py").write_text(
        'CENTER = "SH-PD-HUAMU"\nclerk = "clerk-017"\nitem = "SA-HARDSHIP-SUBSIDY"\n'
        'card = id_number("31011519700101123")\n')
    (tmp_path / "test_b.py").write_text(
        'said = f"设定：clerk-017 at {1}"\nsel = "#pad-clerk-no"\nitem = "SA-HARDSHIP-SUBSIDY"\n'
        'js = """const c = "SH-PD-HUAMU"; const n = "31011519700101123";"""\n'
        'mine = "clerk-p001-1"\n')
    assert shared_ids(tmp_path) == {
        "SH-PD-HUAMU": ["test_a.py", "test_b.py"], "clerk-017": ["test_a.py", "test_b.py"],
        "31011519700101123": ["test_a.py", "test_b.py"], "clerk-p001-1": ["test_b.py"]}
