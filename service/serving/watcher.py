"""Watch the model repository: rescan every ``settings.poll_interval_s`` seconds.

Each tick calls ``registry.rescan()``, which loads, warms and self-tests new finished versions
before making them the default, retires replaced versions after their in-flight requests, and
unloads versions whose folder was deleted. The watcher adds two things on top:

- **Retry after a half-copied publish.** A version copied naively (``cp -r``) may show its
  ``metadata.json`` before its model files, and then fails its checksums. The registry retries a
  failed version only when its metadata changes; the watcher also retries it once the folder's
  content (file names, sizes, modification times) changes, so the finished copy is picked up.
- **Resilience.** A failing rescan (a vanished folder, a permission error) is logged and retried
  with backoff; it never stops the loop or the service.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from pathlib import Path
from typing import Protocol

from service.repository.disk import (
    FileStat,
    RepositoryError,
    changed_files,
    checksum_matches,
    listed_file_stats,
    parse_version,
    valid_name,
)
from service.serving.model import ModelVersion, VersionState

log = logging.getLogger("service.watcher")

Signature = tuple[tuple[str, int, int], ...]
MAX_BACKOFF_S = 60.0
_MAX_ENTRIES = 10_000  # a version folder holding more files and folders is not worth hashing


class Rescannable(Protocol):
    async def rescan(self) -> dict[str, list[str]]: ...

    def model_names(self) -> list[str]: ...

    def versions(self, name: str) -> list[ModelVersion]: ...

    def forget(self, name: str, version: int) -> None: ...


def folder_signature(path: Path) -> Signature:
    """(relative path, size, mtime_ns) of every file under ``path``, sorted; empty if missing.

    Symbolic links are followed: a version published as links into a store (DVC's symlink
    cache, a content-addressed model cache) changes when a link arrives or its target does.
    A link that leads nowhere yet counts as ``(path, -1, -1)``, and a folder reached twice
    (a link loop) is read once."""
    entries: list[tuple[str, int, int]] = []
    seen: set[tuple[int, int]] = set()
    stack = [path]
    while stack and len(entries) + len(seen) < _MAX_ENTRIES:  # folders count: a link to / ends
        current = stack.pop()
        try:
            st = os.stat(current)
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            with os.scandir(current) as it:
                for entry in it:
                    rel = os.path.relpath(entry.path, path)
                    if entry.is_dir():
                        stack.append(Path(entry.path))
                    elif entry.is_file():
                        st = entry.stat()
                        entries.append((rel, st.st_size, st.st_mtime_ns))
                    elif entry.is_symlink():
                        entries.append((rel, -1, -1))
        except OSError:
            continue
    return tuple(sorted(entries))


def _restat(
    vdir: Path,
    loaded: dict[str, FileStat | None],
    checksums: dict[str, str],
    known_bad: dict[str, FileStat],
) -> tuple[dict[str, FileStat | None], dict[str, FileStat], dict[str, FileStat]]:
    """The listed files' stats now, and of those whose size is as loaded but whose stat is
    not (a ``touch``, the same folder copied again), the ones whose checksum still matches
    and the ones whose does not. Each such stat is hashed once: a matching one becomes the
    baseline, a mismatching one is remembered. Runs in a thread: hashing takes time."""
    now = listed_file_stats(vdir, loaded)
    matched: dict[str, FileStat] = {}
    mismatched: dict[str, FileStat] = {}
    for rel, st in now.items():
        old = loaded.get(rel)
        if st is None or old is None or st == old or st[0] != old[0] or known_bad.get(rel) == st:
            continue
        try:
            same = checksum_matches(vdir, rel, checksums[rel])
        except (RepositoryError, OSError, KeyError):
            continue  # gone or unreadable since the stat: the next poll sees it
        if same:
            matched[rel] = st
        else:
            mismatched[rel] = st
    return now, matched, mismatched


class RepositoryWatcher:
    """Polls the repository through the registry; ``start()``/``stop()`` inside the event loop."""

    def __init__(self, registry: Rescannable, root: Path, interval_s: float) -> None:
        self.registry = registry
        self.root = Path(root)
        self.interval_s = interval_s
        self.ticks = 0
        self.failures = 0
        self._failed: dict[tuple[str, int], Signature] = {}  # signature before the failed load
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if self.interval_s > 0 and self._task is None:
            self._task = asyncio.create_task(self._run(), name="repository-watcher")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        delay = self.interval_s
        while True:
            await asyncio.sleep(delay)
            try:
                await self.tick()
                delay = self.interval_s
            except asyncio.CancelledError:
                raise
            except Exception:
                self.failures += 1
                delay = min(max(delay * 2, self.interval_s), MAX_BACKOFF_S)
                log.exception("repository rescan failed; retrying in %.1f s", delay)

    async def tick(self) -> dict[str, list[str]]:
        """One rescan, retrying failed versions whose files changed since they failed."""
        serving = {
            (mv.name, mv.version)
            for name in self.registry.model_names()
            for mv in self.registry.versions(name)
            if mv.available
        }
        before = await asyncio.to_thread(self._snapshot, serving)
        for key, signature in list(self._failed.items()):
            if before.get(key) != signature:
                del self._failed[key]
                if key in before:
                    log.info("model %s version %s changed on disk since it failed: retrying", *key)
                    self.registry.forget(*key)
        changes = await self.registry.rescan()
        self.ticks += 1
        if any(changes.values()):
            log.info("repository changed", extra={"changes": changes})
        await self._check_served_files()
        for name in self.registry.model_names():
            for mv in self.registry.versions(name):
                key = (mv.name, mv.version)
                if mv.state is VersionState.FAILED and key not in self._failed:
                    # what the folder held when this tick looked, before the load that failed:
                    # a folder absent then counts as empty, so files that arrived during the
                    # rescan (the rest of a copy) make the next tick retry it
                    self._failed[key] = before.get(key, ())
        return changes

    async def _check_served_files(self) -> None:
        """Say once when a served version's listed files are deleted or changed on disk: it
        serves on from memory, and its next load (a restart) would fail it. A stat per file; a
        file whose size is unchanged but whose stat changed is hashed once, off the event loop,
        and is said only when its checksum no longer matches."""
        served = [
            mv
            for name in self.registry.model_names()
            for mv in self.registry.versions(name)
            if mv.available and mv.files_loaded
        ]
        jobs = [
            (mv.path, dict(mv.files_loaded), dict((mv.metadata or {}).get("files", {})))
            for mv in served
        ]
        known_bad = [dict(mv.files_mismatched) for mv in served]
        now = await asyncio.to_thread(
            lambda: [
                _restat(path, loaded, sums, bad)
                for (path, loaded, sums), bad in zip(jobs, known_bad, strict=True)
            ]
        )
        for mv, (stats, matched, mismatched) in zip(served, now, strict=True):
            mv.files_loaded.update(matched)  # the same bytes: the new stat is the baseline
            mv.files_mismatched.update(mismatched)
            warning = changed_files(mv.files_loaded, stats) or None
            if warning == mv.files_warning:
                continue
            mv.files_warning = warning
            if warning is None:
                log.info(
                    "the files of model %s version %s are as loaded again", mv.name, mv.version
                )
                continue
            log.warning(
                "model %s version %s: %s on disk while it is served: it keeps serving what it "
                "loaded, and its next load (a restart, or an admin unload and load) fails unless "
                "the files are put back; publish a new version number to change a version",
                mv.name,
                mv.version,
                warning,
            )

    def _snapshot(self, skip: set[tuple[str, int]]) -> dict[tuple[str, int], Signature]:
        """Signatures of every version folder that is not serving (new, failed or unselected)."""
        out: dict[tuple[str, int], Signature] = {}
        try:
            model_dirs = [d for d in self.root.iterdir() if valid_name(d.name) and d.is_dir()]
        except OSError:
            return out
        for model_dir in model_dirs:
            try:
                version_dirs = list(model_dir.iterdir())
            except OSError:
                continue
            for vdir in version_dirs:
                version = parse_version(vdir.name)
                key = (model_dir.name, version)
                if version is None or str(version) != vdir.name or key in skip:
                    continue
                out[(model_dir.name, version)] = folder_signature(vdir)
        return out
