"""Registry: version policies, unfinished and broken versions, labels, rescans and swaps."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from service.errors import NotFound, NotReady
from service.serving.model import VersionState
from service.serving.registry import ModelRegistry
from tests.helpers.settings import make_settings

pytestmark = pytest.mark.anyio


async def started(models_dir: Path, **overrides: Any) -> ModelRegistry:
    registry = ModelRegistry(make_settings(models_dir, **overrides))
    await registry.start()
    return registry


def states(registry: ModelRegistry, name: str) -> dict[int, str]:
    return {mv.version: mv.state.value for mv in registry.versions(name)}


def publish_copy(models_dir: Path, name: str, source: int, target: int) -> Path:
    """Publish an existing version again under a new number (metadata rewritten last)."""
    dst = models_dir / name / str(target)
    shutil.copytree(
        models_dir / name / str(source), dst, ignore=shutil.ignore_patterns("metadata.json")
    )
    meta = json.loads((models_dir / name / str(source) / "metadata.json").read_text())
    meta["version"] = target
    (dst / "metadata.json").write_text(json.dumps(meta))
    return dst


async def test_policy_all_loads_every_finished_version(tiny_repo: Path) -> None:
    registry = await started(tiny_repo, models=["mnist", "broken", "selftest"])
    try:
        assert states(registry, "mnist") == {1: "available", 2: "available"}
        assert registry.default_version("mnist") == 2
        assert registry.model_status("mnist")["unfinished_versions"] == [3]
        broken = registry.versions("broken")[0]
        assert broken.state is VersionState.FAILED
        assert broken.reason == "checksum mismatch for model.tflite"
        selftest = registry.versions("selftest")[0]
        assert selftest.state is VersionState.FAILED and "self-test failed" in (
            selftest.reason or ""
        )
        ready, problems = registry.readiness()
        assert not ready and set(problems) == {"broken", "selftest"}
    finally:
        await registry.stop()


async def test_policy_latest_serves_only_the_newest(tiny_repo: Path) -> None:
    registry = await started(tiny_repo, models=["mnist"], version_policy="latest")
    try:
        assert states(registry, "mnist") == {2: "available"}
        assert registry.resolve("mnist").version == 2
        with pytest.raises(NotFound, match="not served") as info:
            registry.resolve("mnist", 1)
        assert (
            "SERVE_VERSION_POLICY=latest); serve every version with SERVE_VERSION_POLICY=all"
            in (info.value.message)
        )
        assert '/v2/repository/models/mnist/load {"parameters": {"version": 1}}' in (
            info.value.message
        )
        with pytest.raises(NotFound, match="SERVE_VERSION_POLICY=latest serves none"):
            registry.resolve("mnist", "baseline")  # version 1, the tutorial's, is not served
        with pytest.raises(NotFound) as info:
            registry.resolve("mnist", "gold")
        assert "SERVE_VERSION_POLICY" not in info.value.message  # a label nobody set: a typo
        assert registry.readiness() == (True, {})
    finally:
        await registry.stop()


async def test_policy_specific_and_missing_versions(tiny_repo: Path) -> None:
    registry = await started(
        tiny_repo, models=["mnist"], version_policy="specific", versions={"mnist": [1, 7]}
    )
    try:
        assert states(registry, "mnist") == {1: "available"}
        assert registry.default_version("mnist") == 1
        ready, problems = registry.readiness()
        assert not ready and "[7]" in problems["mnist"]
    finally:
        await registry.stop()


async def test_labels_from_settings_and_baseline(tiny_repo: Path) -> None:
    registry = await started(
        tiny_repo, models=["mnist"], version_labels={"mnist": {"stable": 1, "canary": 2}}
    )
    try:
        assert registry.labels("mnist") == {"stable": 1, "canary": 2, "baseline": 1}
        assert registry.resolve("mnist", "canary").version == 2
        assert registry.resolve("mnist", "baseline").version == 1
        assert registry.resolve("mnist", "2").version == 2
        with pytest.raises(NotFound):
            registry.resolve("mnist", "nightly")
    finally:
        await registry.stop()


async def test_resolve_errors(tiny_repo: Path) -> None:
    registry = await started(tiny_repo, models=["mnist", "broken"])
    try:
        for name in ("nope", "../mnist", "MNIST", "a" * 65, ""):
            with pytest.raises(NotFound) as info:
                registry.resolve(name)
            said = info.value.message  # an invalid name is never echoed, but the rule is said
            assert ("'nope'" in said) if name == "nope" else ("a-z, 0-9 and _" in said), said
        served = ", ".join(str(mv.version) for mv in registry.versions("mnist"))
        with pytest.raises(NotFound, match=f"no version 9: the versions served are {served}$"):
            registry.resolve("mnist", 9)
        with pytest.raises(NotFound):
            registry.resolve("mnist", "-1")
        # a version that failed to load serves nothing: it is not among those said served
        with pytest.raises(NotFound, match=r"no version 9: the versions served are none$"):
            registry.resolve("broken", 9)
        # failed: no Retry-After, since asking again cannot help until the files change
        with pytest.raises(NotReady, match="checksum") as info:
            registry.resolve("broken")
        assert info.value.headers == {}
        with pytest.raises(NotReady, match="failed") as info:
            registry.resolve("broken", 1)
        assert info.value.headers == {}
        mv = registry.versions("mnist")[0]
        mv.state = VersionState.LOADING  # loading (a reload): it serves again shortly
        with pytest.raises(NotReady, match="version 1 is loading") as info:
            registry.resolve("mnist", 1)
        assert info.value.headers == {"Retry-After": "1"}
        mv.state = VersionState.AVAILABLE
    finally:
        await registry.stop()


async def test_rescan_loads_new_version_then_unloads_deleted(repo_copy: Path) -> None:
    registry = await started(repo_copy, models=["mnist"], version_policy="latest")
    try:
        old = registry.resolve("mnist")
        assert old.version == 2
        publish_copy(repo_copy, "mnist", 2, 4)
        changes = await registry.rescan()
        assert changes == {"loaded": ["mnist/4"], "failed": [], "unloaded": ["mnist/2"]}
        assert registry.resolve("mnist").version == 4
        assert old.state is VersionState.UNLOADING and old.batcher is not None
        assert not old.batcher.running
        shutil.rmtree(repo_copy / "mnist" / "4")
        changes = await registry.rescan()
        assert changes["unloaded"] == ["mnist/4"] and changes["loaded"] == ["mnist/2"]
        assert registry.resolve("mnist").version == 2
    finally:
        await registry.stop()


async def test_broken_new_version_never_replaces_a_working_one(repo_copy: Path) -> None:
    registry = await started(repo_copy, models=["mnist"], version_policy="latest")
    try:
        bad = publish_copy(repo_copy, "mnist", 2, 5)
        (bad / "saved_model.pb").write_bytes(b"corrupt")
        changes = await registry.rescan()
        assert changes["failed"] == ["mnist/5"] and changes["unloaded"] == []
        assert registry.resolve("mnist").version == 2
        assert states(registry, "mnist") == {2: "available", 5: "failed"}
        assert "checksum mismatch for saved_model.pb" in (
            registry.versions("mnist")[1].reason or ""
        )
        # a failed version is not retried while its metadata is unchanged
        assert await registry.rescan() == {"loaded": [], "failed": [], "unloaded": []}
        # invalid metadata is a failure too, not a crash
        (repo_copy / "mnist" / "6").mkdir()
        (repo_copy / "mnist" / "6" / "metadata.json").write_text("{not json")
        changes = await registry.rescan()
        assert changes["failed"] == ["mnist/6"]
        assert registry.resolve("mnist").version == 2
    finally:
        await registry.stop()


async def test_in_flight_requests_finish_during_a_swap(repo_copy: Path) -> None:
    import asyncio

    registry = await started(repo_copy, models=["mnist"], version_policy="latest")
    try:
        old = registry.resolve("mnist")
        assert old.batcher is not None
        x = np.random.default_rng(0).random((1, 28, 28), dtype=np.float32)
        pending = [asyncio.ensure_future(old.batcher.submit(x)) for _ in range(50)]
        publish_copy(repo_copy, "mnist", 2, 4)
        await registry.rescan()
        results = await asyncio.gather(*pending)
        assert all(r.shape == (1, 10) for r in results)
    finally:
        await registry.stop()


async def test_admin_load_and_unload(tiny_repo: Path) -> None:
    registry = await started(tiny_repo, models=["mnist"], version_policy="latest")
    try:
        mv = await registry.load("mnist", 1)
        assert mv.available and registry.resolve("mnist", 1) is mv
        await registry.rescan()  # pinned: the policy keeps it
        assert states(registry, "mnist") == {1: "available", 2: "available"}
        await registry.unload("mnist", 2)
        await registry.rescan()  # excluded: the policy does not bring it back
        assert states(registry, "mnist") == {1: "available"}
        assert registry.default_version("mnist") == 1
        assert registry.model_status("mnist")["unloaded_versions"] == [2]
        with pytest.raises(NotFound, match="unloaded by an admin request"):
            registry.resolve("mnist", 2)
        with pytest.raises(NotFound):
            await registry.load("mnist", 3)  # unfinished
        changes = await registry.include("mnist")  # back to the policy: latest again
        assert changes["loaded"] == ["mnist/2"]
        assert registry.default_version("mnist") == 2
    finally:
        await registry.stop()


async def test_a_model_unloaded_on_purpose_leaves_readiness_alone(tiny_repo: Path) -> None:
    registry = await started(tiny_repo, models=["mnist", "pima"], version_policy="latest")
    try:
        assert registry.readiness() == (True, {})
        for version in [mv.version for mv in registry.versions("pima")]:
            await registry.unload("pima", version)
        assert registry.readiness() == (True, {})  # pima is not broken, it was taken out
        with pytest.raises(NotFound, match="model pima serves no version: version 1 was unloaded"):
            registry.resolve("pima")
        await registry.include("pima")
        assert registry.resolve("pima").available
    finally:
        await registry.stop()


async def test_a_model_with_only_a_zero_padded_folder_is_named_and_not_ready(
    repo_copy: Path,
) -> None:
    shutil.copytree(repo_copy / "pima" / "1", repo_copy / "tabular" / "001")
    registry = await started(repo_copy, models=["pima", "tabular"])
    try:
        ready, problems = registry.readiness()
        assert not ready and "only ['001']" in problems["tabular"], problems
        assert [e["name"] for e in registry.model_status("tabular")["ignored_folders"]] == ["001"]
    finally:
        await registry.stop()


async def test_a_folder_of_notes_at_the_root_is_no_model(repo_copy: Path) -> None:
    (repo_copy / "drafts").mkdir()
    (repo_copy / "drafts" / "notes.md").write_text("hi")
    for readiness in ("strict", "serving"):
        registry = await started(repo_copy, readiness=readiness)
        try:
            assert "drafts" not in registry.readiness()[1], readiness
            assert "drafts" not in registry.model_names()
        finally:
            await registry.stop()


async def test_many_near_misses_are_listed_and_logged_in_a_few_lines(
    repo_copy: Path, caplog: pytest.LogCaptureFixture
) -> None:
    for i in range(1, 31):
        (repo_copy / "mnist" / f"v{i:02}").mkdir()
    registry = await started(repo_copy, models=["mnist"])
    try:
        listed = registry.model_status("mnist")["ignored_folders"]
        assert len(listed) == 21 and listed[-1] == {
            "name": "...",
            "reason": "and 10 more that look like versions, not listed",
        }
        assert caplog.text.count("in its folder is ignored") == 5
        said = "and 25 more entries that look like versions are ignored, in the folders of models"
        assert caplog.text.count(said) == 1, caplog.text
        await registry.rescan()
        assert caplog.text.count("in its folder is ignored") == 5
        assert caplog.text.count("more entries that look like versions") == 1
    finally:
        await registry.stop()


async def test_a_version_under_a_mistyped_name_is_listed_and_said_once(
    repo_copy: Path, caplog: pytest.LogCaptureFixture
) -> None:
    shutil.copytree(repo_copy / "mnist" / "2", repo_copy / "mnist" / "v4")
    registry = await started(repo_copy, models=["mnist"])
    try:
        assert registry.model_status("mnist")["ignored_folders"] == [
            {
                "name": "v4",
                "reason": "not a version folder: a version is a folder named by its number, "
                "from 1, without leading zeros (name it 4)",
            }
        ]
        said = "model mnist: 'v4' in its folder is ignored: not a version folder"
        assert caplog.text.count(said) == 1
        await registry.rescan()
        await registry.rescan()
        assert caplog.text.count(said) == 1  # at load, not at every poll
    finally:
        await registry.stop()


async def test_savedmodel_runtime_when_asked(tiny_repo: Path) -> None:
    registry = await started(
        tiny_repo, models=["mnist"], version_policy="latest", runtime="savedmodel"
    )
    try:
        mv = registry.resolve("mnist")
        assert mv.runtime is not None and mv.runtime.kind == "savedmodel"
    finally:
        await registry.stop()


async def test_empty_repository_is_not_ready(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    registry = await started(tmp_path / "empty")
    try:
        ready, problems = registry.readiness()
        assert not ready and "no models" in problems["*"]
    finally:
        await registry.stop()


async def test_a_repository_that_is_not_there_is_said_so_by_readiness(tmp_path: Path) -> None:
    """A mistyped SERVE_MODELS_DIR: readiness says the folder is missing, not that it is empty."""
    registry = await started(tmp_path / "nothing")
    try:
        ready, problems = registry.readiness()
        assert not ready and problems["*"] == (
            f"cannot read the model repository {tmp_path / 'nothing'} (no such folder): set "
            "SERVE_MODELS_DIR"
        )
    finally:
        await registry.stop()


async def test_models_named_in_a_repository_that_is_not_there_are_said_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """SERVE_MODELS with a mistyped SERVE_MODELS_DIR: every named model says the repository
    cannot be read, not that the model is not in it."""
    registry = await started(tmp_path / "nothing", models=["mnist", "pima"])
    try:
        why = (
            f"cannot read the model repository {tmp_path / 'nothing'} (no such folder): set "
            "SERVE_MODELS_DIR"
        )
        assert registry.readiness() == (False, {"mnist": why, "pima": why})
        with pytest.raises(NotReady) as info:
            registry.resolve("pima")
        assert info.value.message == why
        assert "named in the settings but not in the repository" not in caplog.text
    finally:
        await registry.stop()


# --- the default version: accuracy target and latency budget -----------------------------------
T = {"mnist": 0.995}


def set_quality(models_dir: Path, name: str, version: int, accuracy: float, us: float) -> None:
    """Rewrite a version's test accuracy and stored latency (metadata only: no checksum)."""
    path = models_dir / name / str(version) / "metadata.json"
    meta = json.loads(path.read_text())
    meta["metrics"]["accuracy"] = accuracy
    meta["latency"] = {"us_per_image_b1": us, "us_per_image_b16": us / 4, "threads": 1}
    path.write_text(json.dumps(meta))


async def test_default_is_the_newest_version_meeting_target_and_budget(repo_copy: Path) -> None:
    set_quality(repo_copy, "mnist", 1, 0.996, 40.0)
    set_quality(repo_copy, "mnist", 2, 0.997, 150.0)  # newer, more accurate, over the budget
    publish_copy(repo_copy, "mnist", 1, 4)
    set_quality(repo_copy, "mnist", 4, 0.990, 20.0)  # newest, fast, under the target
    registry = await started(
        repo_copy, models=["mnist"], latency_budget_us=100, accuracy_targets={"mnist": 0.995}
    )
    try:
        assert registry.default_version("mnist") == 1
        reason = registry.model_status("mnist")["default_reason"]
        assert reason.startswith("version 1: accuracy 0.9960 >= 0.995, 40 µs <= 100 µs budget")
        assert "version 4: accuracy 0.9900 < 0.995" in reason
        assert "version 2: 150 µs > 100 µs budget" in reason
        # labels and explicit versions still reach every version
        assert registry.resolve("mnist", 2).version == 2
        assert registry.resolve("mnist", "baseline").version == 4
        assert registry.resolve("mnist").version == 1
    finally:
        await registry.stop()


async def test_default_falls_back_to_the_most_accurate_within_budget(repo_copy: Path) -> None:
    set_quality(repo_copy, "mnist", 1, 0.980, 10.0)
    set_quality(repo_copy, "mnist", 2, 0.990, 90.0)
    publish_copy(repo_copy, "mnist", 1, 4)
    set_quality(repo_copy, "mnist", 4, 0.997, 300.0)
    registry = await started(repo_copy, models=["mnist"], latency_budget_us=100, accuracy_targets=T)
    try:
        assert registry.default_version("mnist") == 2
        reason = registry.model_status("mnist")["default_reason"]
        assert "no version meets both" in reason
        assert "serving version 2, the most accurate within the 100 µs budget" in reason
    finally:
        await registry.stop()


async def test_default_is_the_newest_when_nothing_fits_and_says_so(repo_copy: Path) -> None:
    set_quality(repo_copy, "mnist", 1, 0.996, 150.0)
    set_quality(repo_copy, "mnist", 2, 0.997, 207.0)
    registry = await started(repo_copy, models=["mnist"], latency_budget_us=100, accuracy_targets=T)
    try:
        assert registry.default_version("mnist") == 2
        reason = registry.model_status("mnist")["default_reason"]
        assert "version 2 (newest): 207 µs" in reason and "serving the newest" in reason
    finally:
        await registry.stop()


async def test_newest_policy_and_latest_loading(repo_copy: Path) -> None:
    set_quality(repo_copy, "mnist", 1, 0.996, 40.0)
    set_quality(repo_copy, "mnist", 2, 0.997, 150.0)
    registry = await started(
        repo_copy, models=["mnist"], default_policy="newest", accuracy_targets=T
    )
    try:
        assert registry.default_version("mnist") == 2
        assert "newest" in registry.model_status("mnist")["default_reason"]
    finally:
        await registry.stop()
    # latest keeps loading older versions until one meets both, and serves that one
    registry = await started(
        repo_copy, models=["mnist"], version_policy="latest", accuracy_targets=T
    )
    try:
        assert states(registry, "mnist") == {1: "available", 2: "available"}
        assert registry.default_version("mnist") == 1
    finally:
        await registry.stop()


async def test_latency_is_measured_at_load_without_metadata(tiny_repo: Path) -> None:
    registry = await started(tiny_repo, models=["mnist", "fashion_mnist"])
    try:
        for name in ("mnist", "fashion_mnist"):
            latency = registry.versions(name)[0].latency
            assert latency is not None and latency["source"] == "measured at load"
            assert latency["us_per_image_b1"] > 0 and latency["us_per_image_b16"] > 0
    finally:
        await registry.stop()


async def test_a_compute_bound_version_splits_its_batches_by_its_latency(repo_copy: Path) -> None:
    for version, b16 in ((1, 3.0), (2, 36.0)):  # 1: a call costs the same for 1 or 16 rows;
        set_quality(repo_copy, "mnist", version, 0.996, 40.0)  # 2: a row nearly a call, a CNN
        meta_path = repo_copy / "mnist" / str(version) / "metadata.json"
        meta = json.loads(meta_path.read_text())
        meta["latency"]["us_per_image_b16"] = b16
        meta_path.write_text(json.dumps(meta))
    registry = await started(repo_copy, models=["mnist"])
    try:
        x = np.zeros((9, 28, 28), np.float32)
        call_bound, compute_bound = (registry.resolve("mnist", v) for v in (1, 2))
        for mv in (call_bound, compute_bound):
            assert mv.runtime is not None
            mv.runtime.predict(x)
        assert 16 in call_bound.runtime._slots  # type: ignore[union-attr]
        assert 16 not in compute_bound.runtime._slots  # type: ignore[union-attr]  # 8 + 1
    finally:
        await registry.stop()


# --- the repository changing under the registry, and operators' mistakes ------------------------
async def test_a_model_whose_folder_is_deleted_is_forgotten(repo_copy: Path) -> None:
    registry = await started(repo_copy, models=[], version_policy="latest")
    try:
        assert "pima" in registry.model_names()
        shutil.rmtree(repo_copy / "pima")
        await registry.rescan()
        assert "pima" not in registry.model_names()
        assert "pima" not in registry.readiness()[1]
    finally:
        await registry.stop()
    named = await started(repo_copy, models=["mnist", "pima"], version_policy="latest")
    try:  # unless the settings name it: then it is missing, and says so
        ready, problems = named.readiness()
        assert not ready and problems == {"pima": "model pima is not in the repository"}
    finally:
        await named.stop()


def without_broken(models_dir: Path) -> None:
    """Leave out the tiny repository's deliberately broken models (they keep readiness off)."""
    for name in ("broken", "selftest"):
        shutil.rmtree(models_dir / name)


def deny(
    monkeypatch: pytest.MonkeyPatch, path: Path, method: str = "iterdir"
) -> Callable[[], None]:
    """``Path.<method>`` on ``path`` fails as it does where the server's user may not read;
    returns what allows it again (a fixed permission changes no file)."""
    real = getattr(Path, method)

    def refused(self: Path, *args: Any, **kwargs: Any) -> Any:
        if self == path:
            raise PermissionError(13, "Permission denied", str(self))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, method, refused)
    return lambda: monkeypatch.setattr(Path, method, real)


async def test_an_unreadable_folder_is_skipped_and_what_it_served_stays(
    repo_copy: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    without_broken(repo_copy)
    (repo_copy / "scratch").mkdir()
    deny(monkeypatch, repo_copy / "scratch")  # not a model at all: it must not stop the start
    registry = await started(repo_copy, models=[], version_policy="latest")
    try:
        assert registry.resolve("mnist").available and "scratch" not in registry.model_names()
        assert "cannot read scratch" in caplog.text
        served = registry.resolve("pima")
        deny(monkeypatch, repo_copy / "pima")
        publish_copy(repo_copy, "mnist", 2, 4)
        changes = await registry.rescan()
        assert changes["loaded"] == ["mnist/4"]  # the rest is still scanned
        assert registry.resolve("pima") is served  # unknown, not gone
        assert registry.readiness() == (True, {})
    finally:
        await registry.stop()


async def test_admin_unload_of_the_served_version_falls_back_at_once(tiny_repo: Path) -> None:
    registry = await started(tiny_repo, models=["mnist"], version_policy="latest")
    try:
        assert states(registry, "mnist") == {2: "available"}
        await registry.unload("mnist", 2)  # no rescan: the policy's next choice is served now
        assert states(registry, "mnist") == {1: "available"}
        assert registry.resolve("mnist").version == 1 and registry.readiness() == (True, {})
        await registry.unload("mnist")  # the whole model: nothing comes back on a rescan
        await registry.rescan()
        assert states(registry, "mnist") == {}
        assert registry.model_status("mnist")["unloaded_versions"] == [1, 2]
        assert registry.readiness() == (True, {})
        with pytest.raises(NotFound, match="unloaded by an admin request"):
            registry.resolve("mnist")  # on purpose: not "retry later" (503)
        await registry.include("mnist")
        assert states(registry, "mnist") == {2: "available"}
    finally:
        await registry.stop()


async def test_an_unloaded_version_whose_folder_is_deleted_is_forgotten(repo_copy: Path) -> None:
    registry = await started(repo_copy, models=["mnist"], version_policy="all")
    try:
        await registry.unload("mnist", 2)
        assert registry.model_status("mnist")["unloaded_versions"] == [2]
        shutil.rmtree(repo_copy / "mnist" / "2")
        await registry.rescan()
        assert registry.model_status("mnist")["unloaded_versions"] == []  # it is not there
        publish_copy(repo_copy, "mnist", 1, 2)  # a new version under the old number
        await registry.rescan()
        assert states(registry, "mnist") == {1: "available", 2: "available"}
    finally:
        await registry.stop()


async def test_a_model_unloaded_whole_whose_folder_is_deleted_is_forgotten(
    repo_copy: Path,
) -> None:
    registry = await started(repo_copy, models=["mnist"], version_policy="latest")
    try:
        await registry.unload("mnist")
        (repo_copy / "mnist").rename(repo_copy / "away")
        await registry.rescan()
        (repo_copy / "mnist").mkdir()
        publish_copy(repo_copy, "away", 2, 5).rename(repo_copy / "mnist" / "5")
        await registry.rescan()
        assert states(registry, "mnist") == {5: "available"}
        assert registry.resolve("mnist").version == 5
    finally:
        await registry.stop()


async def test_a_deleted_version_is_not_said_to_be_unloaded(repo_copy: Path) -> None:
    registry = await started(repo_copy, models=["mnist"], version_policy="latest")
    try:
        await registry.load("mnist", 1)
        await registry.unload("mnist", 1)
        shutil.rmtree(repo_copy / "mnist" / "2")  # the version served: deleted, not unloaded
        await registry.rescan()
        with pytest.raises(NotFound) as info:
            registry.resolve("mnist")
        assert info.value.message == (
            "model mnist serves no version: version 1 was unloaded by an admin request, and the "
            "policy serves no other (POST /v2/repository/models/mnist/load serves it by the "
            "policy again)"
        )
    finally:
        await registry.stop()


async def test_admin_unload_chooses_the_next_version_from_the_disk_as_it_is_now(
    repo_copy: Path,
) -> None:
    """Polling off: version 2 was deleted after the last scan. Unloading 7 must not load the
    deleted 2 as its next choice (it failed: a "missing metadata" version, readiness 503)."""
    publish_copy(repo_copy, "mnist", 2, 7)
    registry = await started(repo_copy, models=["mnist"], version_policy="latest")
    try:
        assert set(states(registry, "mnist")) == {7}
        shutil.rmtree(repo_copy / "mnist" / "2")
        await registry.unload("mnist", 7)
        assert "failed" not in states(registry, "mnist").values()
        assert registry.resolve("mnist").version == 1 and registry.readiness() == (True, {})
    finally:
        await registry.stop()


async def test_a_version_waiting_its_turn_to_load_is_503_not_404(tiny_repo: Path) -> None:
    """A model served again (include) loads its versions one by one: one not reached yet is
    seconds from being served, not unknown (a client told 404 would give up)."""
    registry = await started(tiny_repo, models=["mnist"], version_policy="all")
    gate = asyncio.Event()
    try:
        await registry.unload("mnist")
        real = registry._load

        async def slow(name: str, version: int, fingerprint: Any) -> Any:
            await gate.wait()
            return await real(name, version, fingerprint)

        registry._load = slow  # type: ignore[method-assign]
        include = asyncio.create_task(registry.include("mnist"))
        await asyncio.sleep(0.05)  # the include is waiting on version 1's load
        with pytest.raises(NotReady, match="version 2 of model mnist is being loaded") as info:
            registry.resolve("mnist", 2)
        assert info.value.headers == {"Retry-After": "1"}
        with pytest.raises(NotFound):
            registry.resolve("mnist", 9)  # not on disk: still unknown
        gate.set()
        await include
        assert registry.resolve("mnist", 2).version == 2
    finally:
        gate.set()  # a failed check must not leave the include waiting (stop waits for it)
        await registry.stop()


async def test_a_version_no_sync_is_loading_is_not_said_to_be_loading(repo_copy: Path) -> None:
    """Polling off: an admin unload of another model rescans the disk and finds a new pima
    version nobody loads (only a rescan of pima would): it must not answer 503 'being loaded'
    for good."""
    registry = await started(repo_copy, models=["mnist", "pima"], version_policy="all")
    try:
        publish_copy(repo_copy, "pima", 1, 3)
        await registry.unload("mnist", 1)
        with pytest.raises(NotFound):
            registry.resolve("pima", 3)
        await registry.rescan()
        assert registry.resolve("pima", 3).version == 3
    finally:
        await registry.stop()


async def test_baseline_is_the_newest_tutorial_version_that_works(repo_copy: Path) -> None:
    broken = publish_copy(repo_copy, "mnist", 1, 4)  # a tutorial version, newer, corrupt
    with (broken / "model.tflite").open("ab") as fh:
        fh.write(b"x")
    registry = await started(repo_copy, models=["mnist"])
    try:
        assert states(registry, "mnist")[4] == "failed"
        assert registry.labels("mnist")["baseline"] == 1
    finally:
        await registry.stop()


async def test_specific_policy_serves_the_models_it_lists(
    tiny_repo: Path, caplog: pytest.LogCaptureFixture
) -> None:
    registry = await started(
        tiny_repo, models=[], version_policy="specific", versions={"mnist": [1], "pima": [9]}
    )
    try:
        assert registry.model_names() == ["mnist", "pima"]
        assert "lists no versions of broken, fashion_mnist, selftest: not served" in caplog.text
        ready, problems = registry.readiness()
        assert not ready
        assert problems == {"pima": "versions [9] of model pima are not in the repository"}
        with pytest.raises(NotFound, match="not among the served models"):
            await registry.load("fashion_mnist", 1)  # it could not be reached
    finally:
        await registry.stop()


async def test_admin_load_refuses_a_model_the_settings_leave_out(tiny_repo: Path) -> None:
    registry = await started(tiny_repo, models=["mnist"])
    try:
        with pytest.raises(NotFound, match="not among the served models"):
            await registry.load("pima", 1)
        assert registry.versions("pima") == []
    finally:
        await registry.stop()


async def test_a_new_model_being_written_leaves_readiness_alone(repo_copy: Path) -> None:
    without_broken(repo_copy)
    (repo_copy / "digits" / "1").mkdir(parents=True)  # the trainer makes the folder first
    registry = await started(repo_copy, models=[], version_policy="latest")
    try:
        assert registry.model_status("digits")["unfinished_versions"] == [1]
        assert registry.readiness() == (True, {})
    finally:
        await registry.stop()
    for name in ("mnist", "fashion_mnist", "pima"):
        shutil.rmtree(repo_copy / name)
    alone = await started(repo_copy, models=[], version_policy="latest")
    try:  # but not when nothing at all can be served
        ready, problems = alone.readiness()
        assert not ready and "no model has a finished version yet" in problems["*"]
    finally:
        await alone.stop()


async def test_settings_naming_what_is_not_there_are_warned_about(
    tiny_repo: Path, caplog: pytest.LogCaptureFixture
) -> None:
    registry = await started(
        tiny_repo,
        models=["mnist", "cifar"],
        version_labels={"mnist": {"canary": 9, "stable": 1}},
    )
    try:
        assert "model cifar is named in the settings but not in the repository" in caplog.text
        assert "label 'canary' of model mnist names version 9, which is not served" in caplog.text
        assert "'stable'" not in caplog.text
        with pytest.raises(NotFound, match="label 'canary' of model mnist names version 9"):
            registry.resolve("mnist", "canary")
        assert registry.readiness()[1]["cifar"] == "model cifar is not in the repository"
    finally:
        await registry.stop()


async def test_a_failed_load_names_files_relative_to_the_repository(
    tiny_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(self: ModelRegistry, mv: Any) -> None:
        raise RuntimeError(f"could not open {mv.path}/model.tflite")

    monkeypatch.setattr(ModelRegistry, "_load_sync", fail)
    registry = await started(tiny_repo, models=["pima"])
    try:
        (mv,) = registry.versions("pima")
        assert mv.reason == "load failed: could not open pima/1/model.tflite"
    finally:
        await registry.stop()


async def test_a_version_refused_for_permissions_loads_once_they_are_fixed(
    repo_copy: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    allow = deny(monkeypatch, repo_copy / "pima" / "1" / "metadata.json", "read_bytes")
    registry = await started(
        repo_copy, models=["pima"], version_policy="latest", poll_interval_s=5.0
    )
    try:
        assert states(registry, "pima") == {1: "failed"}
        # each rescan tries it again: asking again after one may succeed, and the 503 says when
        with pytest.raises(NotReady) as info:
            registry.resolve("pima", 1)
        assert info.value.headers == {"Retry-After": "5"}
        await registry.rescan()  # still refused: tried again, said once
        assert caplog.text.count("model pima version 1 failed") == 1
        allow()  # chmod fixed: no file changed
        await registry.rescan()
        assert states(registry, "pima") == {1: "available"}
    finally:
        await registry.stop()


async def test_a_served_version_rewritten_in_place_is_warned_about(
    repo_copy: Path, caplog: pytest.LogCaptureFixture
) -> None:
    registry = await started(repo_copy, models=["pima"], version_policy="latest")
    try:
        served = registry.resolve("pima")
        path = repo_copy / "pima" / "1" / "metadata.json"
        path.write_text(path.read_text() + "\n")  # same version number, new content
        await registry.rescan()
        await registry.rescan()
        assert registry.resolve("pima") is served  # immutable: what was loaded keeps serving
        assert caplog.text.count("changed while it is served") == 1
    finally:
        await registry.stop()


async def test_labels_rewritten_in_place_wait_for_the_next_load_and_the_log_says_so(
    repo_copy: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A version's labels are part of the version: a rescan keeps the ones it loaded (answers,
    feedback and quality stay in one set of names), the warning says when the new file is read,
    and an admin unload and load reads it."""
    registry = await started(repo_copy, models=["pima"], version_policy="all")
    try:
        served = registry.resolve("pima", 1)
        assert served.task is not None
        before = served.task.labels
        path = repo_copy / "pima" / "1" / "metadata.json"
        meta = json.loads(path.read_text())
        meta["labels"] = ["negative", "positive"]
        path.write_text(json.dumps(meta))
        await registry.rescan()
        assert registry.resolve("pima", 1) is served and served.task.labels == before
        assert "until it is loaded again (a restart, or an admin unload and load)" in caplog.text
        await registry.unload("pima", 1)
        reloaded = await registry.load("pima", 1)
        assert reloaded.task is not None and reloaded.task.labels == ("negative", "positive")
    finally:
        await registry.stop()


async def test_a_repository_that_cannot_be_listed_keeps_what_is_served(
    repo_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    without_broken(repo_copy)
    registry = await started(repo_copy, models=[], version_policy="latest")
    try:
        deny(monkeypatch, repo_copy)
        changes = await registry.rescan()
        assert changes == {"loaded": [], "failed": [], "unloaded": []}
        assert registry.resolve("mnist").available and registry.readiness() == (True, {})
    finally:
        await registry.stop()


async def test_an_unknown_label_is_named_in_its_404_with_the_labels_there_are(
    tiny_repo: Path,
) -> None:
    registry = await started(tiny_repo, models=["mnist"], version_policy="all")
    try:
        for asked in ("-1", "BASELINE", "x" * 100):
            with pytest.raises(NotFound) as info:
                registry.resolve("mnist", asked)
            assert repr(asked[:64]) in info.value.message
            assert "versions are numbers; its labels: baseline" in info.value.message
    finally:
        await registry.stop()


async def test_a_version_number_too_long_is_told_the_limit_not_that_versions_are_numbers(
    tiny_repo: Path,
) -> None:
    registry = await started(tiny_repo, models=["mnist"], version_policy="all")
    try:
        for asked in ("9" * 23, "0" * 10):
            with pytest.raises(NotFound) as info:
                registry.resolve("mnist", asked)
            assert info.value.message == (
                f"model mnist has no version {asked}: a version number has at most 9 digits"
            )
    finally:
        await registry.stop()


async def test_a_repository_gone_for_a_moment_keeps_what_is_served(
    repo_copy: Path, caplog: pytest.LogCaptureFixture
) -> None:
    without_broken(repo_copy)
    registry = await started(repo_copy, models=[], version_policy="latest")
    try:
        served = registry.resolve("mnist")
        moved = repo_copy.with_name(repo_copy.name + ".moved")
        repo_copy.rename(moved)  # a remount, or the folder swapped with mv
        assert await registry.rescan() == {"loaded": [], "failed": [], "unloaded": []}
        assert registry.resolve("mnist") is served and registry.readiness() == (True, {})
        assert "cannot read the model repository (no such folder)" in caplog.text
        assert await registry.include("mnist") == {"loaded": [], "failed": [], "unloaded": []}
        with pytest.raises(NotReady, match="the model repository cannot be read"):
            await registry.load("mnist", 1)
        assert registry.resolve("mnist") is served  # admin requests change nothing meanwhile
        moved.rename(repo_copy)
        assert await registry.rescan() == {"loaded": [], "failed": [], "unloaded": []}
        assert "the model repository can be read again" in caplog.text
    finally:
        await registry.stop()


async def test_an_unreadable_served_version_is_not_replaced_beside_itself(
    repo_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = await started(repo_copy, models=["mnist"], version_policy="latest")
    try:
        assert states(registry, "mnist") == {2: "available"}
        deny(monkeypatch, repo_copy / "mnist" / "2" / "metadata.json", "stat")
        changes = await registry.rescan()
        assert changes["loaded"] == [] and states(registry, "mnist") == {2: "available"}
    finally:
        await registry.stop()


async def test_a_refused_version_retried_is_news_only_once(
    repo_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deny(monkeypatch, repo_copy / "pima" / "1" / "metadata.json", "read_bytes")
    registry = await started(repo_copy, models=["pima"], version_policy="latest")
    try:
        assert (await registry.rescan())["failed"] == []  # retried, the same failure: no news
    finally:
        await registry.stop()


async def test_admin_unload_serves_the_next_choice_before_it_retires(tiny_repo: Path) -> None:
    registry = await started(tiny_repo, models=["mnist"], version_policy="latest")
    seen: list[int] = []
    real = registry._load

    async def load(name: str, version: int, fingerprint: Any) -> Any:
        seen.append(registry.resolve("mnist").version)  # still answered while 1 loads
        return await real(name, version, fingerprint)

    registry._load = load  # type: ignore[method-assign]
    try:
        await registry.unload("mnist", 2)
        assert seen == [2] and states(registry, "mnist") == {1: "available"}
    finally:
        await registry.stop()
