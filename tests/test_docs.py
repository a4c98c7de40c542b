"""The docs name files that exist: every repository path in README.md, docs/*.md, bench/README.md
and the OpenAPI description points at something in the tree, so a move or a rename that forgets
the docs fails here."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "bench" / "README.md"]

# A path starts at a top-level folder of the repository and is not part of a longer word or URL.
PATH = re.compile(
    r"(?<![\w/.:-])((?:accounts|rooms|chatsite|docs|bench|deploy|tests|static|templates|\.ci)/[\w./-]*\w)"
)
# Written by the scripts, ignored by git (bench/.gitignore), or the history the benchmarks page cites.
NOT_IN_TREE = ("bench/out", "bench/results")


def referenced_paths(text: str) -> set[str]:
    return {match.group(1) for match in PATH.finditer(text) if "{" not in text[match.end() : match.end() + 1]}


@pytest.mark.parametrize("doc", DOCS, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_path_a_doc_names_exists(doc):
    """Each repository path named in this document exists (generated output folders aside)."""
    missing = sorted(
        path
        for path in referenced_paths(doc.read_text())
        if not path.startswith(NOT_IN_TREE) and not (ROOT / path).exists()
    )
    assert missing == [], f"{doc.name} names paths that do not exist: {missing}"


def test_openapi_description_names_existing_docs():
    """The OpenAPI description's pointers to docs lead to files that exist."""
    named = referenced_paths(settings.SPECTACULAR_SETTINGS["DESCRIPTION"])
    assert named, "the description should point readers at the docs"
    assert [path for path in named if not (ROOT / path).exists()] == []


def test_generated_bench_output_is_ignored_by_git():
    """bench/out, which docs name as where results land, is ignored, so results never enter git."""
    ignored = subprocess.run(["git", "check-ignore", "-q", "bench/out/run/summary.md"], cwd=ROOT, check=False)
    assert ignored.returncode == 0
