"""Every link between the README and docs/ reaches a file that exists and, when it names a
section, a heading that exists (the front door never points at a moved room)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", ROOT / "deploy" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def anchors(page: Path) -> set[str]:
    """GitHub's anchors: each heading lowercased, punctuation dropped, spaces made hyphens."""
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    return {re.sub(r"[^\w\- ]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
            for line in text.splitlines() if re.match(r"#{1,6} ", line)}


def test_the_slug_is_githubs() -> None:
    page = ROOT / "docs" / "api.md"
    assert "feedback-step-6-surveys-bad-reviews-the-centers-figures--servicesfeedback-port-8003" \
        in anchors(page)


def test_every_relative_link_reaches_its_file_and_section() -> None:
    broken = []
    for page in PAGES:
        for target in LINK.findall(page.read_text()):
            if re.match(r"[a-z]+:", target):
                continue
            path, _, anchor = target.partition("#")
            goal = (page.parent / path).resolve() if path else page
            if not goal.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such file)")
            elif anchor and goal.suffix == ".md" and anchor not in anchors(goal):
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such section)")
    assert not broken, "\n".join(broken)


def test_the_readme_stays_a_front_door() -> None:
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    assert "make test" in text and "make run" in text
    assert "<!-- SECTIONS -->" not in text
