"""The model registry: which versions are served, their state, the default version and labels.

Keyed by model name and version. A version is registered (state ``loading``) before it loads, so
readiness shows it; loading reads and validates metadata, verifies checksums, loads the runtime,
warms it up and runs the golden self-test, all off the event loop. The default version of a model
is chosen among its ``available`` versions (``default_policy``): under ``fast``, the newest that
meets the model's accuracy target and the latency budget, else the most accurate within the
budget, else the newest; under ``newest``, the newest. So a new version becomes the default only
once it works, and the old one is unloaded after that, draining its in-flight requests first.

Public lifecycle API (used by the lifespan, the poller and admin endpoints):
``start()``, ``stop()``, ``rescan()``, ``load(name, version)``, ``unload(name, version)``;
lookups: ``resolve(name, version_or_label)``, ``models()``, ``labels(name)``, ``readiness()``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Collection
from typing import Any

from service.errors import NotFound, NotReady
from service.repository.disk import (
    NAME_RULE,
    VERSION_DIGITS,
    Repository,
    RepositoryError,
    ScanResult,
    parse_version,
    unknown_model,
    valid_name,
)
from service.serving.batcher import Batcher
from service.serving.latency import batch1_us
from service.serving.loader import load_version
from service.serving.model import ModelVersion, VersionState
from service.serving.watcher import RepositoryWatcher
from service.settings import Settings

log = logging.getLogger("service.registry")

MAX_IGNORED_LOGGED = 5  # ignored entries logged one a line per scan; the rest in one line

BatchListener = Callable[[ModelVersion, int, float], None]
UnloadListener = Callable[[ModelVersion], None]


class ModelRegistry:
    def __init__(self, settings: Settings, repository: Repository | None = None) -> None:
        self.settings = settings
        self.repository = repository or Repository(settings.models_dir)
        self._versions: dict[str, dict[int, ModelVersion]] = {}
        self._defaults: dict[str, int] = {}
        self._default_reasons: dict[str, str] = {}
        self._scan = ScanResult()
        self._missing: dict[str, list[int]] = {}  # specific policy: listed but not on disk
        self._pinned: set[tuple[str, int]] = set()  # loaded by admin request
        self._excluded: set[tuple[str, int]] = set()  # unloaded by admin request
        self._queued: set[tuple[str, int]] = set()  # a sync will load these, one after another
        # (a version asked for meanwhile is 503 "being loaded", not 404)
        self._excluded_models: set[str] = set()  # unloaded whole by admin request
        self._lock: asyncio.Lock | None = None
        self.watcher: RepositoryWatcher | None = None  # polls the repository for changes
        self.batch_listeners: list[BatchListener] = []  # metrics hook: (version, rows, seconds)
        self.unload_listeners: list[UnloadListener] = []  # metrics hook: a version is gone
        self.load_listeners: list[UnloadListener] = []  # metrics hook: a version (re)loaded
        self.started = False

    # --- lifecycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        """Load what the policy selects; start polling when ``poll_interval_s`` > 0."""
        self._lock = asyncio.Lock()
        await self.rescan()
        self._warn_about_settings()
        self.started = True
        self.watcher = RepositoryWatcher(self, self.repository.root, self.settings.poll_interval_s)
        self.watcher.start()  # polls only when poll_interval_s > 0

    async def stop(self) -> None:
        """Stop polling, then drain and unload every version."""
        if self.watcher is not None:
            await self.watcher.stop()
        async with self._locked():
            records = [mv for versions in self._versions.values() for mv in versions.values()]
            await asyncio.gather(*(self._unload(mv) for mv in records))

    def _locked(self) -> asyncio.Lock:
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    async def rescan(self) -> dict[str, list[str]]:
        """Sync with the repository: load new selected versions, unload deleted/deselected ones.

        Returns what changed, as ``{"loaded": [...], "failed": [...], "unloaded": [...]}`` of
        ``"name/version"`` strings. Failed versions are retried only when their metadata changes.
        """
        async with self._locked():
            scan = await self._rescan_disk()
            changes: dict[str, list[str]] = {"loaded": [], "failed": [], "unloaded": []}
            if "." in scan.unreadable:
                return changes  # the repository itself cannot be listed: keep what is served
            names = self._selected(set(scan.models) | set(self._versions))
            await asyncio.gather(*(self._sync_model(name, scan, changes) for name in sorted(names)))
            return changes

    async def _rescan_disk(self) -> ScanResult:
        """Scan the repository; say once which folders could not be read."""
        previous, ignored = self._scan.unreadable, self._scan.ignored
        previous_more = self._scan.ignored_more
        self._scan = scan = await asyncio.to_thread(self.repository.scan)
        for where, why in sorted(scan.unreadable.items()):
            if where == "." and not self.started:
                log.warning("cannot read the model repository (%s): nothing is served", why)
            elif previous.get(where) != why:
                log.warning(
                    "cannot read %s (%s): what was served from it stays served, nothing new is "
                    "loaded from it",
                    "the model repository" if where == "." else f"{where} in the model repository",
                    why,
                )
        if "." in previous and "." not in scan.unreadable:
            log.warning("the model repository can be read again")
        news = [
            (name, entry, why)
            for name, entries in sorted(scan.ignored.items())
            for entry, why in sorted(entries.items())
            if ignored.get(name, {}).get(entry) != why  # once, not at every poll
        ]
        for name, entry, why in news[:MAX_IGNORED_LOGGED]:
            log.warning("model %s: %r in its folder is ignored: %s", name, entry, why)
        # the rest in one line: a folder of thousands is not thousands of lines per worker
        unsaid = Counter(name for name, _, _ in news[MAX_IGNORED_LOGGED:])
        for name, count in scan.ignored_more.items():
            unsaid[name] += max(0, count - previous_more.get(name, 0))
        unsaid = +unsaid  # only the models with some left unsaid
        if unsaid:
            log.warning(
                "and %s more entries that look like versions are ignored, in the folders of "
                "models %s: GET /models lists them under ignored_folders",
                sum(unsaid.values()),
                ", ".join(sorted(unsaid)),
            )
        self._forget_deleted(scan)
        return scan

    def _forget_deleted(self, scan: ScanResult) -> None:
        """Drop the admin unload and load marks of versions whose folder is gone, and the whole
        model unload of a model whose folder is gone: a folder
        published again under that number is a new version, which the policy serves (feedback
        and statistics tell it from the old one too). A folder that cannot be read is not gone."""
        if "." in scan.unreadable:
            return
        for name, version in sorted(self._excluded | self._pinned):
            if name in scan.unreadable or f"{name}/{version}" in scan.unreadable:
                continue
            if any(f.version == version for f in scan.models.get(name, [])):
                continue
            if (name, version) in self._excluded:
                log.info(
                    "model %s version %s, unloaded by an admin request, was deleted: a version "
                    "published again under its number is served by the policy",
                    name,
                    version,
                )
            self._excluded.discard((name, version))
            self._pinned.discard((name, version))
        for name in sorted(self._excluded_models):
            # the model's folder is gone (not merely unreadable): a model published again under
            # its name is served by the policy, as a version published again is
            if name in scan.models or name in scan.ignored or name in scan.unreadable:
                continue
            if any(where.startswith(f"{name}/") for where in scan.unreadable):
                continue
            log.info(
                "model %s, unloaded whole by an admin request, was deleted: a model published "
                "again under its name is served by the policy",
                name,
            )
            self._excluded_models.discard(name)

    def _selected(self, names: set[str]) -> set[str]:
        """The models among ``names`` that the settings select."""
        named = self._named()
        return names if named is None else names & named

    def _named(self) -> set[str] | None:
        """The models the settings name explicitly (listed even when not on disk): those
        ``models`` lists, else under the ``specific`` policy those ``versions`` lists (none when
        it lists none); ``None`` when the settings name none, and every model is served."""
        if self.settings.models:
            return set(self.settings.models)
        if self.settings.version_policy == "specific":
            return set(self.settings.versions)
        return None

    def _warn_about_settings(self) -> None:
        """Say at start what the settings name that the repository does not hold."""
        on_disk = set(self._scan.models) | set(self._scan.ignored) | set(self._scan.unreadable)
        # a repository that cannot be read was said already: nothing is known to be missing
        missing = set() if "." in self._scan.unreadable else (self._named() or set()) - on_disk
        for name in sorted(missing):
            log.warning("model %s is named in the settings but not in the repository", name)
        if self.settings.version_policy == "specific" and not self.settings.models:
            left_out = sorted(set(self._scan.models) - set(self.settings.versions))
            if left_out:
                log.warning(
                    "version_policy specific lists no versions of %s: not served",
                    ", ".join(left_out),
                )
        for name, labels in sorted(self.settings.version_labels.items()):
            served = {mv.version for mv in self.versions(name)}
            for label, version in sorted(labels.items()):
                if version not in served:
                    log.warning(
                        "label %r of model %s names version %s, which is not served",
                        label,
                        name,
                        version,
                    )

    def require_model(self, name: str, on_disk: Collection[str]) -> None:
        """NotFound unless ``name`` is a model the repository (``on_disk``: its models as just
        scanned) or the settings hold, and the settings serve: the one place that says which
        of the two it is not, for every admin request."""
        if not valid_name(name):
            raise NotFound(NAME_RULE)
        if name not in on_disk and name not in self.model_names():
            raise NotFound(f"model {name!r} not found in the repository")
        self._require_selected(name)

    def _require_selected(self, name: str) -> None:
        if not self._selected({name}):
            served = ", ".join(sorted(self._named() or ())) or "none"
            raise NotFound(
                f"model {name!r} is not among the served models (the settings serve {served})"
            )

    async def load(self, name: str, version: int) -> ModelVersion:
        """Load one finished version even if the policy does not select it (admin)."""
        self._require_selected(name)
        async with self._locked():
            await self._rescan_disk()
            if "." in self._scan.unreadable:
                raise NotReady(
                    f"the model repository cannot be read ({self._scan.unreadable['.']}): "
                    "nothing is loaded until it can"
                )
            folder = next((f for f in self._scan.finished(name) if f.version == version), None)
            if folder is None:
                raise NotFound(f"model {name} has no finished version {version}")
            self._excluded.discard((name, version))
            self._pinned.add((name, version))
            mv = self._versions.get(name, {}).get(version)
            if mv is None or mv.state is VersionState.FAILED:
                mv = await self._load(name, version, folder.fingerprint)
            return mv

    async def include(self, name: str) -> dict[str, list[str]]:
        """Serve ``name`` by the policy again: undo admin unloads of its versions, then sync it.

        Returns the changes like ``rescan()``.
        """
        self._require_selected(name)
        async with self._locked():
            self._excluded = {(n, v) for (n, v) in self._excluded if n != name}
            self._excluded_models.discard(name)
            scan = await self._rescan_disk()
            changes: dict[str, list[str]] = {"loaded": [], "failed": [], "unloaded": []}
            await self._sync_model(name, scan, changes)
            return changes

    def on_disk(self) -> set[tuple[str, int]]:
        """Every version folder the last scan found, finished or not."""
        return {(name, f.version) for name, found in self._scan.models.items() for f in found}

    def forget(self, name: str, version: int) -> None:
        """Drop a failed version's record, so that the next rescan tries to load it again."""
        mv = self._versions.get(name, {}).get(version)
        if mv is not None and mv.state is VersionState.FAILED:
            del self._versions[name][version]

    async def unload(self, name: str, version: int | None = None) -> None:
        """Unload one version, or with ``version`` None every version of the model (admin).

        The policy will not load an unloaded version again until ``load`` or ``include``; after
        one version goes, it serves its next choice at once (under ``latest``, the next newest
        version), as it would had the folder been deleted. A model unloaded whole gets no
        version from the policy until ``include``.
        """
        async with self._locked():
            if version is None:
                records = self.versions(name)
                if not records:
                    raise NotFound(f"model {name} has no loaded version")
                self._excluded_models.add(name)
            else:
                mv = self._versions.get(name, {}).get(version)
                if mv is None:
                    raise NotFound(f"model {name} version {version} is not loaded")
                records = [mv]
            for mv in records:
                self._pinned.discard((name, mv.version))
                self._excluded.add((name, mv.version))
            if version is not None:  # the next choice loads first, then this one retires
                changes: dict[str, list[str]] = {"loaded": [], "failed": [], "unloaded": []}
                # chosen from the disk as it is now (with polling off, the last scan may be old:
                # a folder deleted since would be loaded as the next choice, and fail)
                await self._sync_model(name, await self._rescan_disk(), changes)
            for mv in records:
                if self._versions.get(name, {}).get(mv.version) is mv:
                    await self._unload(mv)

    # --- selection --------------------------------------------------------------------------
    async def _sync_model(self, name: str, scan: ScanResult, changes: dict[str, list[str]]) -> None:
        if name in scan.unreadable or "." in scan.unreadable:
            return  # what the folder holds is unknown, not gone: keep serving what was loaded
        finished = {f.version: f for f in scan.finished(name)}
        current = self._versions.get(name, {})
        policy = self.settings.version_policy
        keep: set[int] = {v for (n, v) in self._pinned if n == name and v in finished}
        held = {v for v in current if f"{name}/{v}" in scan.unreadable}  # unknown, not gone
        keep |= held

        async def ensure(version: int) -> ModelVersion:
            mv = current.get(version)
            fp = finished[version].fingerprint
            if mv is not None and (
                mv.state is not VersionState.FAILED or (mv.fingerprint == fp and not mv.refused)
            ):
                if mv.available and fp != mv.fingerprint and fp != mv.changed_on_disk:
                    mv.changed_on_disk = fp  # said once per change
                    # Labels included: the answers, payload log, feedback and quality of one
                    # version number must mean one thing. The file is read at the next load.
                    log.warning(
                        "metadata.json of model %s version %s changed while it is served: "
                        "versions are immutable, it keeps serving what it loaded (its labels "
                        "too) until it is loaded again (a restart, or an admin unload and load), "
                        "which reads the new file; publish a new version number instead",
                        name,
                        version,
                    )
                return mv
            before = mv
            mv = await self._load(name, version, fp)
            if mv.available or before is None or mv.reason != before.reason:  # news only
                changes["loaded" if mv.available else "failed"].append(f"{name}/{version}")
            return mv

        candidates = [v for v in finished if (name, v) not in self._excluded]
        if name in self._excluded_models:
            candidates = []
        if policy == "latest":
            # newest first; fall back to older versions only while newer ones fail or, under
            # the fast default policy, miss the accuracy target or the latency budget
            for version in sorted(set(candidates) | held, reverse=True):
                keep.add(version)
                mv = current[version] if version in held else await ensure(version)
                if mv.available and (
                    self.settings.default_policy == "newest" or not self._misses(mv)
                ):
                    break
        else:
            if policy == "specific":
                wanted = set(self.settings.versions.get(name, []))
                self._missing[name] = sorted(wanted - set(finished))
                candidates = [v for v in candidates if v in wanted]
            queued = {(name, v) for v in candidates if v not in current}
            self._queued |= queued
            try:
                for version in sorted(candidates):
                    keep.add(version)
                    await ensure(version)  # loaded or failed, it has its record now
            finally:
                self._queued -= queued
        for version, mv in list(self._versions.get(name, {}).items()):
            if version not in keep:
                await self._unload(mv)
                changes["unloaded"].append(f"{name}/{version}")

    # --- one version ------------------------------------------------------------------------
    async def _load(
        self, name: str, version: int, fingerprint: tuple[int, int] | None
    ) -> ModelVersion:
        path = self.repository.version_dir(name, version)
        mv = ModelVersion(name, version, path, fingerprint=fingerprint)
        mv.timeout_s = self.settings.request_timeout_s
        mv.max_instances = self.settings.max_instances
        old = self._versions.setdefault(name, {}).get(version)
        self._versions[name][version] = mv  # registered before loading: "loading" is visible
        if old is not None:
            await self._stop_runtime(old)
        started = time.perf_counter()
        try:
            await asyncio.to_thread(self._load_sync, mv)
        except Exception as exc:
            mv.state = VersionState.FAILED
            reason = str(exc) if isinstance(exc, RepositoryError) else f"load failed: {exc}"
            reason = self.repository.relative(reason)
            mv.reason = reason if len(reason) <= 500 else reason[:497] + "..."
            # a permission fixed later changes no file: such a version is tried at each rescan
            mv.refused = isinstance(exc, PermissionError) or isinstance(
                exc.__cause__, PermissionError
            )
            if old is None or old.reason != mv.reason:  # said once, not at every retry
                log.warning("model %s version %s failed: %s", name, version, mv.reason)
            if mv.runtime is not None:
                mv.runtime.unload()
                mv.runtime = None
            return mv
        s = self.settings
        mv.batcher = Batcher(
            f"{name} version {version}",  # as its errors and logs name it
            mv.runtime.predict,  # type: ignore[union-attr]
            max_batch_size=s.max_batch_size,
            max_wait_s=s.max_wait_ms / 1000.0,
            queue_size=s.queue_size,
            observer=self._observer(mv),
        )
        mv.batcher.start()
        mv.load_seconds = round(time.perf_counter() - started, 4)
        mv.state = VersionState.AVAILABLE
        self._update_default(name)
        for listener in self.load_listeners:
            listener(mv)
        log.info("model %s version %s available (%s)", name, version, mv.runtime.kind)  # type: ignore[union-attr]
        return mv

    def _load_sync(self, mv: ModelVersion) -> None:
        load_version(self.repository, mv, self.settings.runtime)

    def _observer(self, mv: ModelVersion) -> Callable[[int, float], None]:
        def observe(rows: int, seconds: float) -> None:
            for listener in self.batch_listeners:
                listener(mv, rows, seconds)

        return observe

    async def _unload(self, mv: ModelVersion) -> None:
        mv.state = VersionState.UNLOADING
        self._update_default(mv.name)
        await self._stop_runtime(mv)
        versions = self._versions.get(mv.name, {})
        if versions.get(mv.version) is mv:
            del versions[mv.version]
            for listener in self.unload_listeners:
                listener(mv)
        if not versions:  # a model whose folder is gone is forgotten (unless the settings name it)
            self._versions.pop(mv.name, None)
        log.info("model %s version %s unloaded", mv.name, mv.version)

    @staticmethod
    async def _stop_runtime(mv: ModelVersion) -> None:
        if mv.batcher is not None:
            await mv.batcher.stop()  # drains accepted requests first
        if mv.runtime is not None:
            mv.runtime.unload()

    def _update_default(self, name: str) -> None:
        available = [mv for _, mv in sorted(self._versions.get(name, {}).items()) if mv.available]
        if not available:
            self._defaults.pop(name, None)
            self._default_reasons.pop(name, None)
            return
        version, reason = self._choose_default(available)
        self._defaults[name] = version
        self._default_reasons[name] = reason

    def _misses(self, mv: ModelVersion) -> list[str]:
        """Why ``mv`` cannot be the fast policy's first choice; empty when it can."""
        misses = []
        target = self.settings.accuracy_targets.get(mv.name)
        if target is not None and (mv.accuracy is None or mv.accuracy < target):
            shown = "unknown" if mv.accuracy is None else f"{mv.accuracy:.4f}"
            misses.append(f"accuracy {shown} < {target:g}")
        if not self._fits(mv):
            misses.append(f"{_us(mv)} > {self.settings.latency_budget_us:g} µs budget")
        return misses

    def _fits(self, mv: ModelVersion) -> bool:
        us = batch1_us(mv.latency)
        return us is not None and us <= self.settings.latency_budget_us

    def _choose_default(self, available: list[ModelVersion]) -> tuple[int, str]:
        """The default among ``available`` (oldest first) and why, by ``default_policy``."""
        newest = available[-1]
        if self.settings.default_policy == "newest":
            return newest.version, f"version {newest.version}: the newest (default policy newest)"
        budget = f"{self.settings.latency_budget_us:g} µs budget"
        target = self.settings.accuracy_targets.get(newest.name)
        skipped: list[str] = []
        for mv in reversed(available):
            misses = self._misses(mv)
            if not misses:
                accuracy = (
                    f"accuracy {mv.accuracy:.4f} >= {target:g}"
                    if target is not None and mv.accuracy is not None
                    else "no accuracy target"
                )
                reason = f"version {mv.version}: {accuracy}, {_us(mv)} <= {budget}"
                if skipped:
                    reason += "; newer " + "; ".join(skipped)
                return mv.version, reason
            skipped.append(f"version {mv.version}: " + ", ".join(misses))
        fitting = [mv for mv in available if self._fits(mv)]
        if fitting:
            best = max(fitting, key=lambda mv: (mv.accuracy or 0.0, mv.version))
            shown = "unknown" if best.accuracy is None else f"{best.accuracy:.4f}"
            return best.version, (
                f"no version meets both ({'; '.join(skipped)}); serving version {best.version}, "
                f"the most accurate within the {budget} (accuracy {shown}, {_us(best)})"
            )
        return newest.version, (
            f"no version fits the {budget} (version {newest.version} (newest): {_us(newest)}); "
            f"serving the newest, version {newest.version}"
        )

    # --- lookups ----------------------------------------------------------------------------
    def model_names(self) -> list[str]:
        scan = self._scan
        names = (
            set(self._versions) | set(scan.models) | set(scan.ignored) | (self._named() or set())
        )
        return sorted(self._selected(names))

    def versions(self, name: str) -> list[ModelVersion]:
        return [mv for _, mv in sorted(self._versions.get(name, {}).items())]

    def default_version(self, name: str) -> int | None:
        return self._defaults.get(name)

    def labels(self, name: str) -> dict[str, int]:
        """Version labels: settings first, plus ``baseline`` = newest served tutorial version."""
        labels = dict(self.settings.version_labels.get(name, {}))
        if "baseline" not in labels:
            tutorial = [mv for mv in self.versions(name) if mv.recipe == "tutorial"]
            working = [mv for mv in tutorial if mv.available] or tutorial
            if working:
                labels["baseline"] = working[-1].version
        return labels

    def resolve(self, name: str, version: int | str | None = None) -> ModelVersion:
        """The available version for a request; NotFound (unknown) or NotReady (not available).

        ``version`` is a number, a numeric string, a label, or None for the default version.
        """
        mv = self.lookup(name, version)
        if not mv.available:
            why = f": {mv.reason}" if mv.reason else ""
            raise mv.not_ready(why, self.settings.poll_interval_s)
        return mv

    def lookup(self, name: str, version: int | str | None = None) -> ModelVersion:
        """The registered version whatever its state (for metadata); NotFound when unknown."""
        known = self._versions.get(name)
        if known is not None and version:  # the hot case: a served model and version number
            number = parse_version(version)
            mv = known.get(number) if number is not None else None
            if mv is not None and (not self.settings.models or name in self.settings.models):
                return mv
        models = self.model_names()
        if not valid_name(name) or name not in models:
            raise NotFound(unknown_model(name, models))
        if version is None or version == "":
            default = self._defaults.get(name)
            if default is None:
                if self._taken_out(name):  # on purpose, until loaded again: not "retry later"
                    raise NotFound(self.why_not_ready(name))
                settling = any(mv.settling for mv in self.versions(name)) or any(
                    queued == name for queued, _ in self._queued
                )
                raise NotReady(self.why_not_ready(name), retry_after=1.0 if settling else None)
            return self._versions[name][default]
        number = parse_version(version)
        label = None
        if number is None and isinstance(version, str) and version.isascii() and version.isdigit():
            raise NotFound(
                f"model {name} has no version {version[:40]}: a version number has at most "
                f"{VERSION_DIGITS} digits"
            )
        if number is None and isinstance(version, str):
            number = self.labels(name).get(version)
            if number is None:
                labels = ", ".join(sorted(self.labels(name))) or "none"
                policy = self.settings.version_policy
                unserved = (
                    " (baseline names the newest served tutorial version, and "
                    f"SERVE_VERSION_POLICY={policy} serves none: SERVE_VERSION_POLICY=all "
                    "serves every version, a tutorial one if the repository holds one)"
                    if version == "baseline" and policy != "all"
                    else ""
                )
                raise NotFound(
                    f"model {name} has no version or label {version[:64]!r}: versions are "
                    f"numbers; its labels: {labels}{unserved}"
                )
            label = version
        if number is None:
            raise NotFound(f"model {name} has no version {version}")
        mv = self._versions.get(name, {}).get(number)
        if mv is None:
            if (name, number) in self._queued:  # a sync loads its model's versions one by one
                raise NotReady(
                    f"version {number} of model {name} is being loaded: retry shortly",
                    retry_after=1.0,
                )
            raise NotFound(self._why_not_served(name, number, label))
        return mv

    def _why_not_served(self, name: str, number: int, label: str | None) -> str:
        said = f"label {label!r} of model {name} names version {number}, which" if label else ""
        folder = next((f for f in self._scan.models.get(name, []) if f.version == number), None)
        if (name, number) in self._excluded:
            why = "was unloaded by an admin request"
        elif f"{name}/{number}" in self._scan.unreadable:
            why = f"cannot be read ({self._scan.unreadable[f'{name}/{number}']})"
        elif folder is not None and not folder.finished:
            why = "is unfinished (its metadata.json is not there yet)"
        elif folder is not None:
            policy = self.settings.version_policy
            why = (
                f"is in the repository but not served (SERVE_VERSION_POLICY={policy}); serve "
                "every version with SERVE_VERSION_POLICY=all, or load this one with POST "
                f'/v2/repository/models/{name}/load {{"parameters": {{"version": {number}}}}}'
            )
        else:
            served = ", ".join(str(mv.version) for mv in self.versions(name) if mv.available)
            served = served or "none"
            missing = (
                f"{said} is not in the repository"
                if label
                else (f"model {name} has no version {number}")
            )
            return f"{missing}: the versions served are {served}"
        return f"{said} {why}" if label else f"version {number} of model {name} {why}"

    def why_not_ready(self, name: str) -> str:
        versions = self.versions(name)
        if not versions:
            scan = self._scan
            if self._taken_out(name):
                if name in self._excluded_models:
                    return f"every version of model {name} was unloaded by an admin request"
                # versions deleted since are not said to be unloaded: only the marks left
                unloaded = self._unloaded(name)
                which = (
                    f"version {unloaded[0]} was"
                    if len(unloaded) == 1
                    else f"versions {', '.join(map(str, unloaded))} were"
                )
                return (
                    f"model {name} serves no version: {which} unloaded by an admin request, "
                    f"and the policy serves no other (POST /v2/repository/models/{name}/load "
                    "serves it by the policy again)"
                )
            unfinished = scan.unfinished(name)
            if unfinished:
                return f"model {name} has only unfinished versions {unfinished}"
            if name in scan.unreadable:
                return f"the folder of model {name} cannot be read ({scan.unreadable[name]})"
            ignored = scan.ignored.get(name)
            if ignored:
                return (
                    f"model {name} has no version folder, only {sorted(ignored)}"
                    + (f" and {more} more" if (more := scan.ignored_more.get(name)) else "")
                    + ": a version's "
                    "folder is its number, from 1, without leading zeros"
                )
            if name not in scan.models:
                return self._unreadable_repository() or f"model {name} is not in the repository"
            missing = self._missing.get(name)
            if missing:
                return f"versions {missing} of model {name} are not in the repository"
            return f"model {name} has no version selected by the policy"
        parts = [
            f"version {mv.version} is {mv.state.value}" + (f" ({mv.reason})" if mv.reason else "")
            for mv in versions
        ]
        return f"model {name} is not ready: " + "; ".join(parts)

    def _unreadable_repository(self) -> str | None:
        """Why the repository itself cannot be listed (a mistyped SERVE_MODELS_DIR); None when
        it can."""
        why = self._scan.unreadable.get(".")
        if why is None:
            return None
        return (
            f"cannot read the model repository {self.settings.models_dir} ({why}): "
            "set SERVE_MODELS_DIR"
        )

    def models(self) -> list[dict[str, Any]]:
        """Status of every model: versions with state and reason, default, labels, unfinished."""
        return [self.model_status(name) for name in self.model_names()]

    def model_status(self, name: str) -> dict[str, Any]:
        return {
            "name": name,
            "default_version": self._defaults.get(name),
            "default_reason": self._default_reasons.get(name),
            "labels": self.labels(name),
            "versions": [mv.status() for mv in self.versions(name)],
            "unfinished_versions": self._scan.unfinished(name),
            "unloaded_versions": self._unloaded(name),
            "ignored_folders": [
                {"name": entry, "reason": why} for entry, why in self._scan.ignored_listed(name)
            ],
        }

    def _taken_out(self, name: str) -> bool:
        """Whether an admin request unloaded every version ``name`` had."""
        return not self.versions(name) and bool(
            self._unloaded(name) or name in self._excluded_models
        )

    def _unloaded(self, name: str) -> list[int]:
        """Versions of ``name`` unloaded by an admin request (the policy leaves them out)."""
        return sorted(v for n, v in self._excluded if n == name)

    def readiness(self) -> tuple[bool, dict[str, str]]:
        """(ready, {model: why not}).

        Not ready before the first load completes, when the repository has no model, or when a
        model has no available version. With ``readiness="strict"`` (the default) also when a
        selected version failed or is missing. A version being hot-loaded next to an available
        one (a swap in progress) or being unloaded does not make the service unready; nor does a
        model unloaded by an admin request, or a new model whose first version is still being
        written (unless the settings name it, or no model has a finished version at all).
        """
        problems: dict[str, str] = {}
        names = self.model_names()
        if not self.started:
            problems["*"] = "models are still loading"
        elif not names and (unreadable := self._unreadable_repository()):
            problems["*"] = unreadable
        elif not names:
            problems["*"] = f"no models found in {self.settings.models_dir}"
        waiting = []  # new models whose first version is still being written
        for name in names:
            if name not in self._defaults:
                if not self.versions(name) and (
                    self._unloaded(name) or name in self._excluded_models
                ):
                    continue  # unloaded on purpose, as Triton's readiness leaves such models out
                if self._only_unfinished(name):
                    waiting.append(name)
                    continue
                problems[name] = self.why_not_ready(name)
                continue
            failed = [mv for mv in self.versions(name) if mv.state is VersionState.FAILED]
            missing = self._missing.get(name)
            if self.settings.readiness == "strict" and (failed or missing):
                parts = [f"version {mv.version} failed ({mv.reason})" for mv in failed]
                if missing:
                    parts.append(f"versions {missing} are not in the repository")
                problems[name] = "; ".join(parts)
        if names and len(waiting) == len(names) and self.started:
            problems["*"] = "no model has a finished version yet: " + ", ".join(
                self.why_not_ready(name) for name in waiting
            )
        return not problems, problems

    def _only_unfinished(self, name: str) -> bool:
        """A model that has never had a finished version, and that the settings do not name:
        its first version is being published (the trainer makes the folder first)."""
        return (
            name not in (self._named() or set())
            and not self.versions(name)
            and bool(self._scan.unfinished(name))
            and not self._scan.finished(name)
        )


def _us(mv: ModelVersion) -> str:
    us = batch1_us(mv.latency)
    return "latency unknown" if us is None else f"{us:.0f} µs"
