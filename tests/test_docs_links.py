"""Every relative link of the documentation points at a file that exists, and an anchor at a heading of it.

The pages are README.md, docs/*.md, data_prep/README.md, eval/README.md and bench/**/README.md. Anchors
follow GitHub's rule for heading ids: lower case, punctuation other than ``-`` and ``_`` dropped, spaces
to ``-``, a repeated heading suffixed ``-1``, ``-2``, ...
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: ``[text](target)`` and ``![alt](target)``; the target ends at a space (a title) or ``)``
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^\s*(```|~~~)")


def pages() -> list[Path]:
    found = [ROOT / "README.md", ROOT / "data_prep" / "README.md", ROOT / "eval" / "README.md"]
    found += sorted((ROOT / "docs").glob("*.md")) + sorted((ROOT / "bench").glob("**/README.md"))
    return [p for p in found if p.is_file()]


def prose(text: str) -> list[str]:
    """The lines outside fenced code blocks, inline code spans removed."""
    out, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            out.append(re.sub(r"`[^`]*`", "", line))
    return out


def slug(heading: str) -> str:
    s = heading.strip().lower()
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """The ids GitHub gives the headings of ``page`` (inline code kept: its text is part of the id)."""
    seen: dict[str, int] = {}
    ids = set()
    fenced = False
    for line in page.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        m = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if fenced or not m:
            continue
        base = slug(m[1])
        n = seen.get(base, 0)
        seen[base] = n + 1
        ids.add(base if n == 0 else f"{base}-{n}")
    return ids


def broken_links(page: Path, root: Path = ROOT) -> list[str]:
    """``page:line: target (why)`` for each relative link that does not resolve."""
    bad = []
    for line in prose(page.read_text(encoding="utf-8")):
        for target in LINK.findall(line):
            if re.match(r"[a-z][a-z0-9+.-]*:", target, re.I):  # http:, https:, mailto:
                continue
            path, _, anchor = target.partition("#")
            dest = (page.parent / unquote(path)).resolve() if path else page
            where = f"{page.relative_to(root)}: {target}"
            if not dest.exists():
                bad.append(f"{where} (no such file)")
            elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                bad.append(f"{where} (no heading with id '{anchor}' in {dest.relative_to(root)})")
    return bad


@pytest.mark.parametrize("page", pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page: Path):
    assert not broken_links(page), "broken links:\n" + "\n".join(broken_links(page))


def test_the_front_door_fits_on_a_few_screens():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 200


def test_the_check_finds_a_missing_file_and_a_missing_heading(tmp_path):
    (tmp_path / "other.md").write_text("# Today's GPUs: `make caffe-gpu`\n\n## Notes\n\n## Notes\n")
    page = tmp_path / "page.md"
    page.write_text(
        "[ok](other.md#todays-gpus-make-caffe-gpu) [ok](other.md#notes-1) [ok](#here) [ok](https://x.org/a)\n"
        "## Here\n"
        "[gone](missing.md) and ![gone](img/none.png) and [bad anchor](other.md#notes-2)\n"
        "```\n[in a fence](nowhere.md)\n```\n"
        "`[inline code](nowhere.md)`\n"
    )
    assert broken_links(page, tmp_path) == [
        "page.md: missing.md (no such file)",
        "page.md: img/none.png (no such file)",
        "page.md: other.md#notes-2 (no heading with id 'notes-2' in other.md)",
    ]
