"""The repository watcher: polling, retry after a half-copied publish, resilience, and versions
that the registry must refuse (corrupt SavedModel, half-copied folder)."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from service.serving import watcher as watcher_module
from service.serving.model import VersionState
from service.serving.registry import ModelRegistry
from service.serving.watcher import RepositoryWatcher, folder_signature
from tests.helpers import reliability as h
from tests.helpers.settings import make_settings

pytestmark = pytest.mark.anyio


def state(registry: ModelRegistry, version: int) -> VersionState | None:
    mv = next((m for m in registry.versions("mnist") if m.version == version), None)
    return None if mv is None else mv.state


async def only_mnist_1(tiny_repo: Path, tmp_path: Path) -> tuple[Path, ModelRegistry]:
    models = tmp_path / "models"
    h.publish(tiny_repo / "mnist" / "1", models, "mnist", 1)
    registry = ModelRegistry(make_settings(models, version_policy="latest"))
    await registry.start()
    return models, registry


def test_folder_signature_sees_every_change(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "a").write_bytes(b"1")
    first = folder_signature(tmp_path)
    assert [entry[0] for entry in first] == ["a"]
    (tmp_path / "sub" / "b").write_bytes(b"22")
    second = folder_signature(tmp_path)
    assert second != first and len(second) == 2
    os.utime(tmp_path / "a", ns=(1, 1))
    assert folder_signature(tmp_path) != second
    assert folder_signature(tmp_path / "missing") == ()


def test_folder_signature_follows_links(tmp_path: Path) -> None:
    store, folder = tmp_path / "store", tmp_path / "version"
    store.mkdir()
    folder.mkdir()
    (folder / "metadata.json").write_bytes(b"{}")
    first = folder_signature(folder)
    (folder / "model.tflite").symlink_to(store / "blob")  # leads nowhere yet
    second = folder_signature(folder)
    assert second != first and ("model.tflite", -1, -1) in second
    (store / "blob").write_bytes(b"12345")
    third = folder_signature(folder)
    assert third != second and ("model.tflite", 5) in [entry[:2] for entry in third]
    (store / "variables").mkdir()
    (store / "variables" / "v.index").write_bytes(b"1")
    (folder / "variables").symlink_to(store / "variables", target_is_directory=True)
    (store / "variables" / "loop").symlink_to(folder, target_is_directory=True)
    fourth = folder_signature(folder)  # a loop back to the version folder ends
    assert ("variables/v.index", 1) in [entry[:2] for entry in fourth]
    assert len(fourth) == 3


def test_folder_signature_stops_in_a_deep_tree_of_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A link to a large tree (a data set, ``/``) is walked only so far: folders count."""
    deep = tmp_path / "tree"
    deep.joinpath(*["d"] * 50).mkdir(parents=True)
    folder = tmp_path / "version"
    folder.mkdir()
    (folder / "data").symlink_to(deep, target_is_directory=True)
    calls = 0
    real = os.scandir

    def counting(path: object) -> object:
        nonlocal calls
        calls += 1
        return real(path)  # type: ignore[arg-type]

    monkeypatch.setattr(watcher_module, "_MAX_ENTRIES", 10)
    monkeypatch.setattr(watcher_module.os, "scandir", counting)
    assert folder_signature(folder) == ()
    assert calls <= 10


async def test_watcher_polls_and_swaps(tiny_repo: Path, tmp_path: Path) -> None:
    models, registry = await only_mnist_1(tiny_repo, tmp_path)
    watcher = RepositoryWatcher(registry, models, interval_s=0.05)
    watcher.start()
    try:
        h.publish(tiny_repo / "mnist" / "2", models, "mnist", 2)
        for _ in range(100):
            await asyncio.sleep(0.05)
            if registry.default_version("mnist") == 2 and state(registry, 1) is None:
                break
        assert registry.default_version("mnist") == 2
        assert state(registry, 1) is None, "the replaced version is unloaded"
        shutil.rmtree(models / "mnist" / "2")
        for _ in range(100):
            await asyncio.sleep(0.05)
            if registry.default_version("mnist") == 1 and state(registry, 2) is None:
                break
        assert registry.default_version("mnist") == 1, "deleting a version rolls back"
        assert watcher.ticks > 0 and watcher.running
    finally:
        await watcher.stop()
        await registry.stop()
    assert not watcher.running


async def test_a_served_version_whose_files_go_is_said_once_and_serves_on(
    tiny_repo: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    models, registry = await only_mnist_1(tiny_repo, tmp_path)
    watcher = RepositoryWatcher(registry, models, interval_s=0)
    try:
        await watcher.tick()
        assert registry.model_status("mnist")["versions"][0]["warning"] is None
        (models / "mnist" / "1" / "model.tflite").unlink()
        with (models / "mnist" / "1" / "saved_model.pb").open("ab") as fh:
            fh.write(b"x")
        for _ in range(3):
            await watcher.tick()
        said = "model mnist version 1: model.tflite is missing; saved_model.pb changed on disk"
        assert caplog.text.count(said) == 1, caplog.text
        status = registry.model_status("mnist")["versions"][0]
        assert status["state"] == "available"  # it serves on from memory
        assert status["warning"] == "model.tflite is missing; saved_model.pb changed"
        assert registry.resolve("mnist").version == 1
    finally:
        await registry.stop()


async def test_files_touched_or_published_again_unchanged_are_not_said(
    tiny_repo: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A new mtime or inode with the same bytes loads fine: no warning; the same size with other
    bytes is said as a checksum that no longer matches."""
    models, registry = await only_mnist_1(tiny_repo, tmp_path)
    watcher = RepositoryWatcher(registry, models, interval_s=0)
    mnist = models / "mnist"
    try:
        await watcher.tick()
        tflite = mnist / "1" / "model.tflite"
        os.utime(tflite, ns=(1, 1))  # touch: the same bytes
        shutil.copytree(mnist / "1", mnist / ".new1")  # published again as it was
        (mnist / "1").rename(mnist / ".old1")
        (mnist / ".new1").rename(mnist / "1")
        for _ in range(2):
            await watcher.tick()
        assert registry.model_status("mnist")["versions"][0]["warning"] is None
        assert "on disk while it is served" not in caplog.text
        data = bytearray(tflite.read_bytes())
        data[-1] ^= 0xFF
        tflite.write_bytes(bytes(data))  # the same size, other bytes
        for _ in range(3):
            await watcher.tick()
        said = "model mnist version 1: model.tflite changed (its checksum no longer matches)"
        assert caplog.text.count(said) == 1, caplog.text
        assert registry.model_status("mnist")["versions"][0]["warning"] == (
            "model.tflite changed (its checksum no longer matches)"
        )
    finally:
        await registry.stop()


async def test_half_copied_version_is_retried_when_complete(
    tiny_repo: Path, tmp_path: Path
) -> None:
    """``cp -r`` may write metadata.json before the model files: the version fails, then loads
    once its files are there."""
    models, registry = await only_mnist_1(tiny_repo, tmp_path)
    watcher = RepositoryWatcher(registry, models, interval_s=0)
    try:
        target = models / "mnist" / "2"
        target.mkdir()
        meta = h.read_meta(tiny_repo / "mnist" / "2")
        h.write_json_atomically(target / "metadata.json", meta)  # metadata first
        await watcher.tick()
        assert state(registry, 2) is VersionState.FAILED
        assert registry.default_version("mnist") == 1
        await watcher.tick()  # unchanged: not retried
        assert state(registry, 2) is VersionState.FAILED
        for item in (tiny_repo / "mnist" / "2").iterdir():  # the rest of the copy arrives
            if item.name != "metadata.json":
                copy = shutil.copytree if item.is_dir() else shutil.copy2
                copy(item, target / item.name)
        await watcher.tick()
        assert state(registry, 2) is VersionState.AVAILABLE
        assert registry.default_version("mnist") == 2
    finally:
        await registry.stop()


async def test_a_version_published_as_links_is_retried_when_they_arrive(
    tiny_repo: Path, tmp_path: Path
) -> None:
    """Files checked out as links into a store (DVC's symlink cache) after metadata.json: the
    version fails, then loads once the links are there (links did not count as a change)."""
    models, registry = await only_mnist_1(tiny_repo, tmp_path)
    watcher = RepositoryWatcher(registry, models, interval_s=0)
    store = tmp_path / "store"
    shutil.copytree(tiny_repo / "mnist" / "2", store)
    try:
        target = models / "mnist" / "2"
        target.mkdir()
        h.write_json_atomically(target / "metadata.json", h.read_meta(store))
        await watcher.tick()
        assert state(registry, 2) is VersionState.FAILED
        for item in store.iterdir():
            if item.name != "metadata.json":
                (target / item.name).symlink_to(item, target_is_directory=item.is_dir())
        await watcher.tick()
        assert state(registry, 2) is VersionState.AVAILABLE
        assert registry.default_version("mnist") == 2
    finally:
        await registry.stop()


@pytest.mark.parametrize("folder_before", ["missing", "empty"])
async def test_a_copy_finished_during_the_rescan_that_failed_it_is_retried(
    tiny_repo: Path, tmp_path: Path, folder_before: str
) -> None:
    """The folder was not there (or empty) when the tick looked, was published half-copied
    while the rescan ran, failed, and was finished before the rescan ended: its files changed
    since the look, so the next tick retries it (it used to keep it failed for good)."""
    models, registry = await only_mnist_1(tiny_repo, tmp_path)
    watcher = RepositoryWatcher(registry, models, interval_s=0)
    target = models / "mnist" / "2"
    if folder_before == "empty":
        target.mkdir()
    real = registry.rescan

    async def copy_during_rescan() -> dict[str, list[str]]:
        target.mkdir(exist_ok=True)
        h.write_json_atomically(target / "metadata.json", h.read_meta(tiny_repo / "mnist" / "2"))
        changes = await real()  # fails: the model files are not there yet
        for item in (tiny_repo / "mnist" / "2").iterdir():
            if item.name != "metadata.json":
                copy = shutil.copytree if item.is_dir() else shutil.copy2
                copy(item, target / item.name)
        return changes

    registry.rescan = copy_during_rescan  # type: ignore[method-assign]
    try:
        await watcher.tick()
        assert state(registry, 2) is VersionState.FAILED
        registry.rescan = real  # type: ignore[method-assign]
        await watcher.tick()
        assert state(registry, 2) is VersionState.AVAILABLE
        assert registry.default_version("mnist") == 2
    finally:
        await registry.stop()


async def test_watcher_survives_rescan_errors(tiny_repo: Path, tmp_path: Path) -> None:
    models, registry = await only_mnist_1(tiny_repo, tmp_path)
    calls = {"n": 0}
    real = registry.rescan

    async def flaky() -> dict[str, list[str]]:
        calls["n"] += 1
        if calls["n"] <= 2:
            raise OSError("repository temporarily unreadable")
        return await real()

    registry.rescan = flaky  # type: ignore[method-assign]
    watcher = RepositoryWatcher(registry, models, interval_s=0.02)
    watcher.start()
    try:
        for _ in range(200):
            await asyncio.sleep(0.02)
            if watcher.ticks:
                break
        assert watcher.failures == 2 and watcher.ticks >= 1 and watcher.running
        assert registry.default_version("mnist") == 1
    finally:
        await watcher.stop()
        await registry.stop()


async def test_corrupt_savedmodel_fails_and_old_version_serves(
    tiny_repo: Path, tmp_path: Path
) -> None:
    models, registry = await only_mnist_1(tiny_repo, tmp_path)
    try:
        h.publish(tiny_repo / "mnist" / "2", models, "mnist", 2, mutate=h.break_savedmodel)
        changes = await registry.rescan()
        assert changes["failed"] == ["mnist/2"]
        mv = registry.versions("mnist")[-1]
        assert mv.version == 2 and mv.state is VersionState.FAILED and mv.reason
        served = registry.resolve("mnist")
        assert served.version == 1 and served.batcher is not None
        out = await served.batcher.submit(np.zeros((1, 28, 28), np.float32))
        assert out.shape == (1, 10)
    finally:
        await registry.stop()
