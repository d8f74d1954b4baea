"""The model repository on disk: ``<root>/<name>/<version>/`` and its ``metadata.json``.

This module only reads: it scans for versions, reads and validates metadata, and verifies file
checksums. Paths are only ever built from names that match strict patterns, never from raw input.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import re
import stat
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from service.settings import NAME_RE

NAME_RULE = "model not found: names are 1-64 of a-z, 0-9 and _"  # NAME_RE, said
VERSION_DIGITS = 9  # a version folder's name, and a version number in a URL, is 1-9 digits
VERSION_RE = re.compile(rf"^[0-9]{{1,{VERSION_DIGITS}}}$")
METADATA = "metadata.json"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_REQUIRED = ("task", "labels", "input", "output", "files", "golden")


class RepositoryError(Exception):
    """A version on disk that cannot be served: the message says why."""


def valid_name(name: str) -> bool:
    return bool(NAME_RE.fullmatch(name))


def unknown_model(name: str, models: Iterable[str] = ()) -> str:
    """The message for a model name that names no model (an invalid one is not echoed), with the
    models there are: a near miss (``fashion-mnist``, ``MNIST``, ``mnsit``) is then plain to see."""
    message = f"model {name!r} not found" if valid_name(name) else NAME_RULE
    served = ", ".join(models)
    return f"{message}; the models are {served}" if served else message


def parse_version(text: str | int) -> int | None:
    """The version number of a folder name or request segment, or None when it is not one."""
    if isinstance(text, int):
        return text if 0 <= text < 10**VERSION_DIGITS else None
    # what VERSION_RE says, without the regex
    if text.isascii() and text.isdigit() and len(text) <= VERSION_DIGITS:
        return int(text)
    return None


def _is_version(entry: str) -> bool:
    """Whether ``entry`` is a version's folder name: its number as written, from 1."""
    version = parse_version(entry)
    return bool(version) and str(version) == entry


MAX_IGNORED_LISTED = 20  # ignored entries listed per model folder; the rest are counted

VERSION_FOLDER_RULE = "a version is a folder named by its number, from 1, without leading zeros"


# a version prefix a name may be mistyped with: v4, ver4, version_4, "Version 4"
_PREFIXED_NUMBER = re.compile(r"(?:version|ver|v)[ _.-]?[0-9]+", re.IGNORECASE)


def near_miss(entry: str, is_dir: bool | None = None) -> bool:
    """Whether ``entry`` of a model folder looks like a version meant, and is not one: a number
    written otherwise (018, 0, ten digits or more, surrounded by spaces), a number with a version
    prefix (v4, version_4), or a file named by a number. Anything else a model folder holds
    (README.md, __pycache__, a ``latest`` link) is no version attempt. ``is_dir`` None checks
    the name alone, before any stat: False only when the name cannot be a near miss."""
    stem = entry.strip()
    digits = stem.isascii() and stem.isdigit()
    if not digits:
        if not _PREFIXED_NUMBER.fullmatch(stem):
            return False
        return is_dir is not False  # a file named v4 is no version copied under a wrong name
    # a file 6 is meant as a version, or in its way; a folder 6 is a version
    return is_dir is False or not _is_version(entry)


def not_a_version(entry: str, is_dir: bool) -> str:
    """Why ``entry`` of a model folder is not a version folder, with the name it would need."""
    if entry.isascii() and entry.isdigit():
        number = int(entry)
        if not is_dir:
            return f"a file, not a folder: {VERSION_FOLDER_RULE}"
        if number == 0:
            return f"versions count from 1: {VERSION_FOLDER_RULE}"
        if len(str(number)) > VERSION_DIGITS:
            return f"a version number has at most {VERSION_DIGITS} digits"
        return f"a leading zero: {VERSION_FOLDER_RULE} (name it {number})"
    # a near miss (v4, "4 ", version_4) names the number it was meant to have
    numbered = _PREFIXED_NUMBER.fullmatch(entry.strip())
    stem = entry.strip() if numbered is None else re.sub(r"^[^0-9]+", "", numbered.group())
    meant = parse_version(stem) if stem.isascii() and stem.isdigit() else None
    hint = f" (name it {meant})" if meant and str(meant) == stem else ""
    if not is_dir:
        return f"a file, not a version folder: {VERSION_FOLDER_RULE}{hint}"
    return f"not a version folder: {VERSION_FOLDER_RULE}{hint}"


@dataclass(frozen=True)
class VersionFolder:
    """One numeric folder found by a scan."""

    name: str
    version: int
    path: Path
    finished: bool  # has metadata.json
    fingerprint: tuple[int, int] | None  # (mtime_ns, size) of metadata.json


@dataclass
class ScanResult:
    """Every version folder, by model name; unfinished ones included (``finished`` False)."""

    models: dict[str, list[VersionFolder]] = field(default_factory=dict)
    # what a model folder holds that looks like a version and is not one, by model, with why:
    # "018" (TF Serving would read 18; here a version's folder name is its number as written, so
    # 18 and 018 cannot both claim it), "0", "v4", "4 ", a file "6". Said, so that a version
    # copied under a mistyped name is not lost without a word; anything else (README.md,
    # __pycache__, hidden entries) is no version attempt and left out
    ignored: dict[str, dict[str, str]] = field(default_factory=dict)
    # how many more such entries each model folder holds than ``ignored`` lists (it keeps the
    # first MAX_IGNORED_LISTED by name): a folder of thousands is said in a line, not a payload
    ignored_more: dict[str, int] = field(default_factory=dict)
    # folders the scan could not read ("pima", "pima/3"), with the reason: what they hold is
    # unknown, not gone
    unreadable: dict[str, str] = field(default_factory=dict)

    def ignored_listed(self, name: str) -> list[tuple[str, str]]:
        """(entry, why) of each listed ignored entry of ``name``, by name, then one ("...", "and
        N more ...") for those left out: the shape of the others, so a client reads it as one."""
        listed = sorted(self.ignored.get(name, {}).items())
        more = self.ignored_more.get(name, 0)
        if more:
            listed.append(("...", f"and {more} more that look like versions, not listed"))
        return listed

    def finished(self, name: str) -> list[VersionFolder]:
        return sorted((v for v in self.models.get(name, []) if v.finished), key=lambda v: v.version)

    def unfinished(self, name: str) -> list[int]:
        return sorted(v.version for v in self.models.get(name, []) if not v.finished)


class Repository:
    """Read-only view of a model repository root."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def version_dir(self, name: str, version: int) -> Path:
        if not valid_name(name) or parse_version(version) is None:
            raise RepositoryError(f"invalid model name or version: {name!r}/{version!r}")
        return self.root / name / str(version)

    def relative(self, text: str) -> str:
        """``text`` with the paths it gives inside the repository made relative to its root, as
        the runtime's own errors give them: a host's folders are not shown to clients."""
        for root in (str(self.root.resolve()), str(self.root)):
            text = text.replace(f"{root}/", "")
        return text

    def scan(self) -> ScanResult:
        """List model folders and their numeric version folders. Anything else is ignored; a
        folder that cannot be read is named in ``unreadable`` and the rest is scanned."""
        result = ScanResult()
        if not self.root.is_dir():  # gone for a moment (a remount, a folder swapped by mv)
            what = "not a folder" if self.root.exists() else "no such folder"
            result.unreadable["."] = what
            return result
        try:
            model_dirs = sorted(self.root.iterdir())
        except OSError as exc:
            result.unreadable["."] = _why(exc)
            return result
        for model_dir in model_dirs:
            if not valid_name(model_dir.name):
                continue
            try:
                if not model_dir.is_dir():
                    continue
                found = self._versions(model_dir, result)
            except OSError as exc:
                result.unreadable[model_dir.name] = _why(exc)
                continue
            if found:
                result.models[model_dir.name] = sorted(found, key=lambda v: v.version)
        return result

    @staticmethod
    def _versions(model_dir: Path, result: ScanResult) -> list[VersionFolder]:
        found: list[VersionFolder] = []
        ignored: dict[str, str] = {}
        for vdir in model_dir.iterdir():
            # the name first (a hidden one matches neither), so that a folder of many other
            # files costs no stat for each
            if not (_is_version(vdir.name) or near_miss(vdir.name)):
                continue
            where = f"{model_dir.name}/{vdir.name}"
            try:
                is_dir = vdir.is_dir()
            except OSError as exc:
                result.unreadable[where] = _why(exc)
                continue
            if not is_dir or not _is_version(vdir.name):
                if near_miss(vdir.name, is_dir):
                    ignored[vdir.name] = not_a_version(vdir.name, is_dir)
                continue
            version = int(vdir.name)  # its number as written (_is_version)
            try:
                st = (vdir / METADATA).stat()
                fingerprint: tuple[int, int] | None = (st.st_mtime_ns, st.st_size)
            except FileNotFoundError:
                fingerprint = None
            except OSError as exc:
                result.unreadable[where] = _why(exc)
                continue
            found.append(
                VersionFolder(model_dir.name, version, vdir, fingerprint is not None, fingerprint)
            )
        if ignored:
            names = sorted(ignored)
            listed = names[:MAX_IGNORED_LISTED]
            result.ignored[model_dir.name] = {entry: ignored[entry] for entry in listed}
            if len(names) > len(listed):
                result.ignored_more[model_dir.name] = len(names) - len(listed)
        return found

    def read_metadata(self, name: str, version: int) -> dict[str, Any]:
        """Read and validate ``metadata.json``; RepositoryError says what is wrong."""
        path = self.version_dir(name, version) / METADATA
        try:
            meta = json.loads(path.read_bytes())
        except FileNotFoundError as exc:
            raise RepositoryError("unfinished version: metadata.json is missing") from exc
        except OSError as exc:
            raise RepositoryError(f"metadata.json is unreadable: {_why(exc)}") from exc
        except ValueError as exc:
            raise RepositoryError(f"metadata.json is unreadable: {exc}") from exc
        validate_metadata(meta, name, version)
        return meta

    def verify_files(self, name: str, version: int, metadata: dict[str, Any]) -> None:
        """Check the SHA-256 of every file listed in metadata ``files``."""
        vdir = self.version_dir(name, version)
        for rel, expected in metadata["files"].items():
            if not checksum_matches(vdir, rel, expected):
                raise RepositoryError(f"checksum mismatch for {rel}")

    def report_file(self, name: str, version: int, metadata: dict[str, Any], filename: str) -> Path:
        """Path of ``report/<filename>``, only when metadata lists it. KeyError otherwise."""
        rel = f"report/{filename}"
        if "/" in filename or "\\" in filename or rel not in metadata["files"]:
            raise KeyError(filename)
        return listed_path(self.version_dir(name, version), rel)


def checksum_matches(vdir: Path, rel: str, expected: str) -> bool:
    """Whether the listed file ``rel`` holds what its SHA-256 in metadata says: the check of a
    load. RepositoryError when it is missing or outside the folder, OSError when unreadable."""
    return sha256_file(listed_path(vdir, rel)) == expected


FileStat = tuple[int, int, int]  # (size, mtime_ns, inode) of a listed file


def listed_file_stats(vdir: Path, files: Iterable[str]) -> dict[str, FileStat | None]:
    """(size, mtime_ns, inode) of each listed file, None for one that is missing or unreadable:
    a stat each, so that a served version's files can be watched at every poll without hashing
    (a file whose size is unchanged is hashed only when its stat changes)."""
    stats: dict[str, FileStat | None] = {}
    for rel in files:
        try:
            st = _inside(vdir, rel).stat()
        except (RepositoryError, OSError):
            stats[rel] = None
            continue
        stats[rel] = (st.st_size, st.st_mtime_ns, st.st_ino) if stat.S_ISREG(st.st_mode) else None
    return stats


def changed_files(before: dict[str, FileStat | None], now: dict[str, FileStat | None]) -> str:
    """What became of the listed files since ``before`` ("model.tflite is missing"); empty
    when nothing did. A file whose size is unchanged but whose stat is not is taken to be one
    whose checksum was found not to match: the caller takes the new stat of one that matches
    as ``before``."""
    missing = [rel for rel, st in now.items() if st is None and before.get(rel) is not None]
    resized: list[str] = []
    rewritten: list[str] = []
    for rel, st in now.items():
        old = before.get(rel)
        if st is not None and old != st:
            (rewritten if old is not None and old[0] == st[0] else resized).append(rel)
    parts = (
        [f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing"] if missing else []
    )
    if resized:
        parts.append(f"{', '.join(resized)} changed")
    if rewritten:
        its = (
            "its checksum no longer matches"
            if len(rewritten) == 1
            else "their checksums no longer match"
        )
        parts.append(f"{', '.join(rewritten)} changed ({its})")
    return "; ".join(parts)


# from the first word that starts a local path (the trainer labels a source "<kind> <where>")
_HOST_PATH = re.compile(r"(?<!\S)(?:file://)?(?:~?/|[A-Za-z]:[\\/]|\\\\).*$", re.DOTALL)


def without_host_path(text: str) -> str:
    """``text`` with a local file system path at its end cut to the path's last part ("cache
    /root/.cache/digitserve/mnist" -> "cache mnist"): where the trainer found its data is
    metadata, the trainer's host's folders are not shown to clients."""
    return _HOST_PATH.sub(lambda m: re.split(r"[\\/]+", m.group().rstrip("\\/ "))[-1], text)


def _why(exc: OSError) -> str:
    """An OS error's reason without the path (the caller names the folder, relative to the
    repository: a host's paths are not shown to clients)."""
    return exc.strerror or type(exc).__name__


def listed_path(vdir: Path, rel: str) -> Path:
    """Resolve a path listed in metadata, refusing anything that would leave the version folder."""
    path = _inside(vdir, rel)
    if not path.is_file():
        raise RepositoryError(f"listed file {rel} is missing")
    return path


def _inside(vdir: Path, rel: str) -> Path:
    """``vdir``/``rel``; RepositoryError when ``rel`` would leave the version folder."""
    pure = PurePosixPath(rel)
    if pure.is_absolute() or ".." in pure.parts or not pure.parts:
        raise RepositoryError(f"listed file {rel!r} is outside the version folder")
    return vdir.joinpath(*pure.parts)


_NUMPY_MAGIC = (b"\x93NUMPY", b"PK\x03\x04", b"PK\x05\x06")  # .npy, .npz (an empty one too)


def read_numpy(folder: Path, name: str) -> Any:
    """``np.load`` of the version's file ``name`` (an array, or an npz archive), never
    unpickling. ValueError naming the file when it is not one of NumPy's: numpy's own message
    for that says the file holds pickled data and how to load it unsafely, and names no file."""
    data = (folder / name).read_bytes()
    if not data.startswith(_NUMPY_MAGIC):
        raise ValueError(f"{name} is not a NumPy .npy or .npz file")
    try:
        return np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{name} is not a readable NumPy file: {exc}") from exc


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def validate_metadata(meta: Any, name: str, version: int) -> None:
    """Structural checks of metadata.json: enough for the service to rely on the fields it uses."""
    if not isinstance(meta, dict):
        raise RepositoryError("metadata.json is not an object")
    missing = [key for key in _REQUIRED if key not in meta]
    if missing:
        raise RepositoryError(f"metadata.json lacks {', '.join(missing)}")
    if meta.get("name", name) != name or meta.get("version", version) != version:
        raise RepositoryError("metadata name/version do not match the folder")
    labels, inp, out = meta["labels"], meta["input"], meta["output"]
    if not isinstance(labels, list) or not labels or not all(isinstance(x, str) for x in labels):
        raise RepositoryError("metadata labels must be a non-empty list of strings")
    if not isinstance(inp, dict) or not _int_list(inp.get("shape")):
        raise RepositoryError("metadata input.shape must be a list of positive integers")
    if not isinstance(out, dict) or out.get("kind") not in ("softmax", "sigmoid"):
        raise RepositoryError("metadata output.kind must be softmax or sigmoid")
    if not _int_list(out.get("shape")):
        raise RepositoryError("metadata output.shape must be a list of positive integers")
    _check_labels(labels, out)
    threshold = meta.get("threshold")
    if threshold is not None and (
        not isinstance(threshold, int | float)
        or isinstance(threshold, bool)
        or not 0.0 <= threshold <= 1.0
    ):
        raise RepositoryError("metadata threshold must be a number from 0 to 1")
    files = meta["files"]
    if not isinstance(files, dict) or not files:
        raise RepositoryError("metadata files must list the version's files")
    for rel, digest in files.items():
        if not isinstance(rel, str) or not isinstance(digest, str) or not _HEX64.match(digest):
            raise RepositoryError(f"metadata files entry {rel!r} is not a SHA-256")
    golden = meta["golden"]
    if not isinstance(golden, dict) or not {"inputs", "outputs"} <= golden.keys():
        raise RepositoryError("metadata golden needs inputs and outputs")
    if not isinstance(golden["inputs"], list) or not golden["inputs"]:
        raise RepositoryError("metadata golden.inputs is empty")


def _check_labels(labels: list[str], output: dict[str, Any]) -> None:
    """One distinct label per class: each softmax output, or the two outcomes of a sigmoid."""
    size = math.prod(output["shape"])
    if output["kind"] == "sigmoid" and size != 1:
        raise RepositoryError(f"metadata output.shape {output['shape']}: a sigmoid gives one value")
    classes = 2 if output["kind"] == "sigmoid" else size
    if len(labels) != classes:
        raise RepositoryError(
            f"metadata has {len(labels)} labels for the {classes} classes of its "
            f"{output['kind']} output"
        )
    if len(set(labels)) != len(labels):
        raise RepositoryError("metadata labels must be distinct")


def _int_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(x, int) and x > 0 for x in value)
