"""Every relative link in the docs resolves; nothing names a bench run git no longer holds."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SKIPPED_DIRS = {".venv", ".run", ".git", "build", "dist", "node_modules"}
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
# Bench output outside reference/ is git-ignored: a dated path there is a removed run.
REMOVED_RUN = re.compile(r"bench/results/(?!reference/)[\w./-]*\d{4}-\d{2}-\d{2}[\w./-]*")
# Its docstring is rewritten by the logging change of issue 12 (item 3), not by this one.
NOT_YET_REWRITTEN = {"http_edge/log.py"}


def tracked(suffix: str) -> list[Path]:
    return sorted(
        path
        for path in ROOT.rglob(f"*{suffix}")
        if not SKIPPED_DIRS & set(path.relative_to(ROOT).parts)
        and not any(part.endswith(".egg-info") for part in path.parts)
    )


def anchors(markdown: Path) -> set[str]:
    """GitHub's heading ids: lower case, punctuation dropped, spaces to hyphens."""
    ids = set()
    for line in markdown.read_text().splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            ids.add(re.sub(r"\s", "-", re.sub(r"[^\w\s-]", "", title)))
    return ids


MARKDOWN = tracked(".md")


@pytest.mark.parametrize("markdown", MARKDOWN, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(markdown: Path) -> None:
    broken = []
    for target in LINK.findall(markdown.read_text()):
        if re.match(r"^[a-z]+:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        resolved = (markdown.parent / path).resolve() if path else markdown
        if not resolved.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            broken.append(f"{target} (no heading with that id)")
    assert not broken, f"{markdown.relative_to(ROOT)}: " + ", ".join(broken)


def test_the_docs_are_found() -> None:
    names = {str(path.relative_to(ROOT)) for path in MARKDOWN}
    assert {"README.md", "docs/performance.md", "bench/results/reference/2026-12-03-1422.md"} <= (
        names
    )


def test_nothing_names_a_bench_run_that_is_not_kept() -> None:
    stale = []
    for path in tracked(".md") + tracked(".py"):
        relative = str(path.relative_to(ROOT))
        if relative in NOT_YET_REWRITTEN or path == Path(__file__).resolve():
            continue
        stale += [f"{relative}: {hit}" for hit in REMOVED_RUN.findall(path.read_text())]
    assert not stale, "point at bench/results/reference/ or at git history: " + "; ".join(stale)


def test_the_removed_run_pattern_tells_kept_from_removed() -> None:
    assert REMOVED_RUN.search("see bench/results/profiles/2026-11-25-1546-gateway-users_v1.txt")
    assert REMOVED_RUN.search("bench/results/2026-11-25-1735.md")
    assert not REMOVED_RUN.search("bench/results/reference/2026-11-25-1815.md")
    assert not REMOVED_RUN.search("writes bench/results/<stamp>.json")
