"""Versions are published, broken and retired while a load loop runs: no request may fail.

A real server process on 127.0.0.1 polls a private repository. Two different tiny MNIST models
(A and B) are published alternately as new versions, every kind of broken version is published
in between, and serving versions are retired (rolled back). Each step waits until the service
shows its effect in ``GET /models/mnist``. Throughout, four workers send predictions through the
own API, the TF Serving API and V2; every answer must be a 200 whose probabilities are those of
the model its version was copied from.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.helpers import reliability as h
from tests.helpers.load import LoadLoop, matches_any

STEP_TIMEOUT_S = 40.0
HOLD_S = 0.8  # let each state serve for a while before the next change
RESULTS: dict[str, Any] = {}  # figures for the docs, printed at the end


def status(url: str) -> dict[str, Any]:
    response = httpx.get(f"{url}/models/mnist", timeout=10)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def wait_for(url: str, what: str, condition: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    deadline = time.monotonic() + STEP_TIMEOUT_S
    while True:
        body = status(url)
        if condition(body):
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}: {body}")
        time.sleep(0.05)


def version_state(body: dict[str, Any], version: int) -> dict[str, Any] | None:
    return next((v for v in body["versions"] if v["version"] == version), None)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("policy", ["latest", "all"])
def test_publish_break_and_retire_versions_under_load(
    tiny_repo: Path, tmp_path: Path, policy: str
) -> None:
    sources = {"A": tiny_repo / "mnist" / "1", "B": tiny_repo / "mnist" / "2"}
    metas = {k: h.read_meta(v) for k, v in sources.items()}
    x = np.asarray(metas["A"]["golden"]["inputs"][0], np.float32)
    assert x.tolist() == metas["B"]["golden"]["inputs"][0]
    expected = {k: np.asarray(m["golden"]["outputs"][0], np.float32) for k, m in metas.items()}
    assert not h.close_to(expected["A"], expected["B"]), "the two source models must differ"

    models = tmp_path / "models"
    good: dict[int, str] = {}  # version -> source model
    h.publish(sources["A"], models, "mnist", 1)
    good[1] = "A"
    env = {
        "SERVE_VERSION_POLICY": policy,
        "SERVE_POLL_INTERVAL_S": "0.2",
        "SERVE_READINESS": "serving",
    }
    swaps: list[str] = []
    broken_seen: dict[int, str] = {}
    with h.run_server(models, tmp_path / "server.log", env) as server:
        url = server.url

        def default_is(version: int) -> Callable[[dict[str, Any]], bool]:
            def check(b: dict[str, Any]) -> bool:
                available = [v for v in b["versions"] if v["state"] == "available"]
                return b["default_version"] == version and (policy == "all" or len(available) == 1)

            return check

        def publish_good(version: int, source: str, **kw: Any) -> None:
            h.publish(sources[source], models, "mnist", version, **kw)
            good[version] = source
            if kw.get("finish", True):
                wait_for(url, f"version {version} to become the default", default_is(version))
                swaps.append(f"publish {version}")
                time.sleep(HOLD_S)

        def publish_broken(version: int, kind: str, breaker: Any) -> None:
            before = status(url)["default_version"]
            if breaker is h.write_invalid_metadata:
                target = h.publish(sources["B"], models, "mnist", version, finish=False)
                h.write_invalid_metadata(target)
            else:
                h.publish(sources["B"], models, "mnist", version, mutate=breaker)
            body = wait_for(
                url,
                f"broken version {version} ({kind}) to fail",
                lambda b: (version_state(b, version) or {}).get("state") == "failed",
            )
            reason = version_state(body, version)["reason"]  # type: ignore[index]
            assert reason, f"{kind}: a failed version must say why"
            assert body["default_version"] == before, f"{kind} replaced a working version"
            broken_seen[version] = f"{kind}: {reason}"
            shutil.rmtree(models / "mnist" / str(version))  # retire the broken version
            wait_for(url, f"{version} to go", lambda b: version_state(b, version) is None)
            time.sleep(HOLD_S)

        def retire(version: int, back_to: int) -> None:
            shutil.rmtree(models / "mnist" / str(version))  # in-flight answers may still come
            wait_for(url, f"rollback from {version} to {back_to}", default_is(back_to))
            swaps.append(f"retire {version}")
            time.sleep(HOLD_S)

        load = LoadLoop(url, x, matches_any(expected, good), workers=4, big_batch=64).start()
        started = time.monotonic()
        try:
            time.sleep(0.5)
            publish_good(2, "B")
            publish_broken(3, "checksum mismatch", h.break_checksum)
            publish_good(4, "A")
            publish_broken(5, "self-test mismatch", h.break_selftest)
            publish_good(6, "B")
            retire(6, back_to=4)
            publish_broken(7, "metadata lacks required fields", h.break_metadata_keys)
            publish_broken(8, "metadata is not JSON", h.write_invalid_metadata)
            publish_broken(9, "corrupt model file, checksums match", h.break_tflite_content)
            # half-written: no metadata.json yet, so it is unfinished and never served
            publish_good(10, "B", finish=False)
            body = wait_for(url, "10 unfinished", lambda b: 10 in b["unfinished_versions"])
            assert body["default_version"] == 4
            time.sleep(0.5)
            assert status(url)["default_version"] == 4
            h.finish_version(sources["B"], models / "mnist" / "10", "mnist", 10)
            wait_for(url, "10 to become the default", default_is(10))
            swaps.append("finish half-written 10")
            publish_broken(11, "model file missing", h.break_missing_file)
            # half-copied, as `cp -r` may do it: metadata.json first, then the model files
            target = models / "mnist" / "12"
            target.mkdir()
            meta = h.read_meta(sources["A"])
            meta["version"] = 12
            h.write_json_atomically(target / "metadata.json", meta)
            good[12] = "A"
            body = wait_for(
                url,
                "half-copied 12 to fail",
                lambda b: (version_state(b, 12) or {}).get("state") == "failed",
            )
            assert body["default_version"] == 10
            broken_seen[12] = "half-copied (retried once complete): " + str(
                version_state(body, 12)["reason"]  # type: ignore[index]
            )
            h.copy_files(sources["A"], target)
            wait_for(url, "12 to load once complete", default_is(12))
            swaps.append("complete half-copied 12")
            retire(12, back_to=10)
            publish_good(13, "A")
            publish_good(14, "B")
            retire(14, back_to=13)
            for old in (1, 2, 4):  # retire versions that no longer serve
                shutil.rmtree(models / "mnist" / str(old))
            time.sleep(0.6)
            assert status(url)["default_version"] == 13
            time.sleep(0.5)
        finally:
            tally = load.stop()
        elapsed = time.monotonic() - started
        logs = server.log_text()

    RESULTS[policy] = dict(
        requests=tally.sent,
        failed=tally.failures(),
        seconds=round(elapsed, 1),
        swaps=len(swaps),
        broken=len(broken_seen),
    )
    print(f"\nlifecycle under load ({policy}): {RESULTS[policy]}\n{tally.summary()}")
    for version, why in broken_seen.items():
        print(f"  broken version {version}: {why}")
    assert tally.sent > 200, tally.summary()
    assert not tally.transport_errors, tally.summary()
    assert not tally.wrong, tally.summary()
    assert tally.failures() == 0, tally.summary()
    assert len(tally.versions) >= 5, f"load did not see the swaps: {tally.summary()}"
    assert "Traceback" not in logs, logs[-3000:]
