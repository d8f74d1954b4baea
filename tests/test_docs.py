"""The docs point at files that exist: a newcomer who follows a path from the README, docs/, a
deployment file or a module's comments finds the module, test or script it names."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted([ROOT / "README.md", *ROOT.glob("docs/*.md"), *ROOT.glob("*/README.md")])
DOCS += sorted(ROOT.glob("benchmarks/*/README.md"))
DOCS += [ROOT / "Makefile", ROOT / "Dockerfile", ROOT / "docker-compose.yml"]
DOCS += sorted(p for p in ROOT.glob("deploy/**/*") if p.is_file())
DOCS += sorted(
    p for d in ("service", "training", "benchmarks", "tools") for p in ROOT.glob(f"{d}/**/*.py")
)
# a path into one of the project's own folders, ending in a source or config file's extension
PATH = re.compile(
    r"(?<![\w./-])((?:service|training|benchmarks|tests|tools|deploy)/[\w./-]+"
    r"\.(?:py|md|sh|ya?ml|json|conf|toml|js|html|css))\b"
)
# a folder of one of them, named with its trailing slash (`tests/service/codecs/`)
FOLDER = re.compile(
    r"(?<![\w./-])((?:service|training|benchmarks|tests|tools|deploy)/(?:[\w.-]+/)+)(?![\w.*{-])"
)
# written by a run, not kept in the repository
GENERATED = ("tests/.cache/", "benchmarks/photos/.cache/")
FORMER = ("benchmarks/photoset/",)  # named as what an earlier layout held


def mentioned_paths(text: str) -> set[str]:
    found = {*PATH.findall(text), *FOLDER.findall(text)}
    return {p for p in found if not p.startswith(GENERATED + FORMER) and "*" not in p}


def test_mentioned_paths_finds_paths_and_skips_generated_ones() -> None:
    text = "see `service/http/edge.py`, tests/.cache/report.json and x/service/no.py"
    assert mentioned_paths(text) == {"service/http/edge.py"}


def test_mentioned_paths_finds_folders() -> None:
    text = "in `tests/service/codecs/` (tests/service/codecs/test_v2.py), not tests/.cache/models/"
    assert mentioned_paths(text) == {"tests/service/codecs/", "tests/service/codecs/test_v2.py"}


def test_every_path_a_doc_or_comment_names_exists() -> None:
    missing = {
        str(doc.relative_to(ROOT)): names
        for doc in DOCS
        if (names := sorted(p for p in mentioned_paths(doc.read_text()) if not (ROOT / p).exists()))
    }
    assert not missing, f"files named that do not exist: {missing}"
