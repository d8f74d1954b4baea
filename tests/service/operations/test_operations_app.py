"""Payload log, feedback and quality, drift and shadow through the in-process app (tiny models)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import math
import shutil
from pathlib import Path
from types import SimpleNamespace
from unittest.mock import patch

import httpx
import numpy as np
import pytest

from service.client.replay import read_log
from service.serving.drift import REFERENCE_FILE
from service.serving.shadow import Shadow
from tests.helpers.apps import serve
from tests.helpers.models import PIMA_FEATURES, PIMA_ROW
from tests.helpers.operations import image_reference, record_reference, write_reference
from training.metrics import classification_metrics

pytestmark = pytest.mark.anyio
RNG = np.random.default_rng(7)
NAMES = [f[0] for f in PIMA_FEATURES]


def images(n: int) -> list[list[list[float]]]:
    return RNG.random((n, 28, 28)).round(3).tolist()


def pima_rows(n: int) -> list[list[float]]:
    base = np.array(PIMA_ROW, dtype=np.float64)
    return [(base * RNG.uniform(0.8, 1.2, 8)).round(2).tolist() for _ in range(n)]


def log_lines(path: Path) -> list[dict]:
    return list(read_log(path.read_text().splitlines())) if path.exists() else []


# --- payload log ------------------------------------------------------------------------------
async def test_sampled_lines_within_a_binomial_bound(tiny_repo: Path, tmp_path: Path) -> None:
    path, n, rate = tmp_path / "p.jsonl", 400, 0.25
    async with serve(tiny_repo, models=["pima"], payload_log_rate=rate, payload_log_path=path) as (
        app,
        client,
    ):
        for _ in range(n):
            assert (
                await client.post("/models/pima/predict", json={"instances": [PIMA_ROW]})
            ).status_code == 200
        app.state.operations.process()
        lines = log_lines(path)
    sd = math.sqrt(n * rate * (1 - rate))
    assert abs(len(lines) - n * rate) <= 4 * sd, len(lines)
    # the safe default: no input at all, only the answer, linked to the request id
    assert all("inputs" not in line and line["redacted"] == ["*"] for line in lines)
    assert all(len(line["request_id"]) == 32 and line["outputs"] for line in lines)


async def test_redacted_fields_are_absent_and_ids_link(tiny_repo: Path, tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    redact = {"pima": ["glucose", "insulin"], "*": []}
    async with serve(
        tiny_repo,
        models=["pima", "mnist"],
        payload_log_rate=1.0,
        payload_log_path=path,
        payload_log_redact=redact,
    ) as (app, client):
        r = await client.post("/models/pima/predict", json={"instances": pima_rows(3)})
        m = await client.post("/v1/models/mnist/versions/1:predict", json={"instances": images(1)})
        app.state.operations.process()
        lines = {line["request_id"]: line for line in log_lines(path)}
    pima = lines[r.headers["x-request-id"]]
    assert pima["redacted"] == ["glucose", "insulin"]
    assert all(set(rec) == set(NAMES) - {"glucose", "insulin"} for rec in pima["inputs"])
    assert len(pima["outputs"]) == 3
    image = lines[m.headers["x-request-id"]]
    assert image["version"] == 1 and np.asarray(image["inputs"]).shape == (1, 28, 28)
    assert image["outputs"] == m.json()["predictions"]  # the same float32 values


async def test_a_full_disk_costs_no_request(tiny_repo: Path) -> None:
    async with serve(
        tiny_repo,
        models=["pima"],
        payload_log_rate=1.0,
        payload_log_path=Path("/dev/full"),
        payload_log_redact={},
    ) as (app, client):
        for _ in range(20):
            r = await client.post("/models/pima/predict", json={"instances": [PIMA_ROW]})
            assert r.status_code == 200
        app.state.operations.process()
        metrics = (await client.get("/metrics")).text
    assert "serve_payload_log_errors_total 20.0" in metrics
    assert "serve_payload_log_lines_total 0.0" in metrics


async def test_rotation_by_size_keeps_the_backups(tiny_repo: Path, tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    async with serve(
        tiny_repo,
        models=["pima"],
        payload_log_rate=1.0,
        payload_log_path=path,
        payload_log_redact={},
        payload_log_max_bytes=2048,
        payload_log_backups=2,
    ) as (app, client):
        for _ in range(60):
            await client.post("/models/pima/predict", json={"instances": [PIMA_ROW]})
            app.state.operations.process()
    logs = [p for p in tmp_path.iterdir() if not p.name.startswith(".")]  # not the lock file
    assert sorted(p.name for p in logs) == ["p.jsonl", "p.jsonl.1", "p.jsonl.2"]
    assert all(p.stat().st_size <= 2048 for p in logs)


async def test_a_full_buffer_drops_lines_not_requests(tiny_repo: Path, tmp_path: Path) -> None:
    async with serve(
        tiny_repo,
        models=["mnist"],
        payload_log_rate=1.0,
        payload_log_path=tmp_path / "p.jsonl",
        payload_log_redact={},
        payload_log_buffer_bytes=4096,
    ) as (app, client):
        for _ in range(5):  # 3136 bytes of pixels each: the second one no longer fits
            r = await client.post("/models/mnist/versions/1/predict", json={"instances": images(1)})
            assert r.status_code == 200
        assert app.state.operations.payload.dropped == 4


# --- feedback and quality ---------------------------------------------------------------------
async def test_quality_equals_the_offline_metrics(tiny_repo: Path) -> None:
    async with serve(tiny_repo, models=["pima", "mnist"], feedback_window=10_000) as (_, client):
        probs_m, labels_m, probs_p, labels_p = [], [], [], []
        for _ in range(30):
            r = await client.post(
                "/v1/models/mnist/versions/2:predict", json={"instances": images(3)}
            )
            labels = RNG.integers(0, 10, 3).tolist()
            probs_m += r.json()["predictions"]
            labels_m += labels
            feedback = {"request_id": r.headers["x-request-id"], "labels": labels}
            assert (await client.post("/models/mnist/feedback", json=feedback)).status_code == 200
        batch = []
        for _ in range(40):
            r = await client.post("/v1/models/pima:predict", json={"instances": pima_rows(1)})
            probs_p += r.json()["predictions"]
            label = int(RNG.integers(0, 2))
            labels_p.append(label)
            batch.append(
                {
                    "request_id": r.headers["x-request-id"],
                    "label": ["no diabetes", "diabetes"][label],
                }
            )
        assert (await client.post("/models/pima/feedback", json=batch)).json() == {"recorded": 40}
        quality_m = (await client.get("/models/mnist/versions/2/quality")).json()["quality"]
        quality_p = (await client.get("/models/pima/versions/1/quality")).json()["quality"]
        metrics = (await client.get("/metrics")).text
    for quality, probs, labels, names in (
        (quality_m, probs_m, labels_m, [str(d) for d in range(10)]),
        (quality_p, probs_p, labels_p, ["no diabetes", "diabetes"]),
    ):
        offline = classification_metrics(np.array(labels), np.array(probs, np.float32), names)
        assert quality["rows"] == len(labels)
        assert quality["accuracy"] == pytest.approx(offline["accuracy"], abs=1e-9)
        assert quality["confusion_matrix"] == offline["confusion_matrix"]
        assert quality["ece"] == pytest.approx(offline["ece"], abs=1e-9)
        p = np.array(probs, np.float64).reshape(len(labels), -1)
        p = np.concatenate([1 - p, p], axis=1) if p.shape[1] == 1 else p
        brier = np.mean(np.sum((p - np.eye(p.shape[1])[labels]) ** 2, axis=1))
        assert quality["brier"] == pytest.approx(brier, abs=1e-9)
    assert quality_p["roc_auc"] == pytest.approx(
        classification_metrics(np.array(labels_p), np.array(probs_p, np.float32), ["a", "b"])[
            "roc_auc"
        ],
        abs=1e-9,
    )
    assert 'serve_quality_accuracy{model="pima",version="1"}' in metrics


async def test_feedback_errors(tiny_repo: Path) -> None:
    async with serve(tiny_repo, models=["pima", "mnist"], feedback_window=100) as (_, client):
        r = await client.post("/models/pima/predict", json={"instances": pima_rows(2)})
        rid = r.headers["x-request-id"]
        unknown = await client.post("/models/pima/feedback", json={"request_id": "x1", "label": 1})
        assert unknown.status_code == 404 and "unknown request id" in unknown.json()["error"]
        wrong = await client.post(
            "/models/mnist/feedback", json={"request_id": rid, "labels": [0, 1]}
        )
        assert wrong.status_code == 404
        count = await client.post("/models/pima/feedback", json={"request_id": rid, "label": 1})
        assert count.status_code == 422 and "2 instances" in count.json()["error"]
        bad = await client.post("/models/pima/feedback", json={"request_id": rid, "labels": [0, 7]})
        assert bad.status_code == 422
        both = {"request_id": rid, "label": 0, "labels": [0, 1]}
        two = await client.post("/models/pima/feedback", json=both)
        assert two.status_code == 422 and "not both" in two.json()["error"]
        ok = await client.post("/models/pima/feedback", json={"request_id": rid, "labels": [0, 1]})
        assert ok.status_code == 200
        again = await client.post(
            "/models/pima/feedback", json={"request_id": rid, "labels": [0, 1]}
        )
        assert again.status_code == 410 and "already labelled" in again.json()["error"]
        one = await client.post("/models/pima/predict", json={"instances": pima_rows(1)})
        many = {"request_id": one.headers["x-request-id"], "labels": [0, 1]}
        lone = await client.post("/models/pima/feedback", json=many)
        assert lone.status_code == 422
        assert "had 1 instance: send label" in lone.json()["error"]
        assert (await client.post("/models/nope/feedback", json={})).status_code == 404


async def test_a_label_for_another_models_prediction_is_404_even_once_it_is_gone(
    tiny_repo: Path,
) -> None:
    """docs/operations.md: a prediction of another model is 404. Its id being already labelled
    or expired (410 on its own model's route) must not change that: the route says nothing
    about another model's predictions, and the client's mistake is the model it named."""
    async with serve(tiny_repo, models=["pima", "mnist"], feedback_window=100) as (app, client):
        r = await client.post("/models/pima/predict", json={"instances": pima_rows(1)})
        rid = r.headers["x-request-id"]
        ok = await client.post("/models/pima/feedback", json={"request_id": rid, "label": 1})
        assert ok.status_code == 200
        wrong = await client.post("/models/mnist/feedback", json={"request_id": rid, "label": 1})
        assert wrong.status_code == 404, wrong.text
        assert "was not a mnist prediction" in wrong.json()["error"]
        pending = app.state.operations.pending
        pending.remember("big", "pima", 1, 0, np.zeros((pending.max_rows + 1, 1), np.float32))
        wrong = await client.post(
            "/models/mnist/feedback", json=[{"request_id": "big", "label": 1}]
        )
        assert wrong.status_code == 404 and "was not a mnist" in wrong.json()["error"], wrong.text
        again = await client.post("/models/pima/feedback", json={"request_id": rid, "label": 1})
        assert again.status_code == 410 and "already labelled" in again.json()["error"]


async def test_a_feedback_list_is_all_or_nothing(tiny_repo: Path) -> None:
    async with serve(tiny_repo, models=["pima"], feedback_window=100) as (app, client):
        ids = []
        for _ in range(3):
            r = await client.post("/models/pima/predict", json={"instances": pima_rows(1)})
            ids.append(r.headers["x-request-id"])
        items = [{"request_id": rid, "label": 1} for rid in ids]
        for bad, status, needle in (
            ({"request_id": "never", "label": 1}, 404, "item 1: unknown request id"),
            ({"request_id": ids[0], "label": 0}, 422, "item 1: request id"),  # twice in the list
            ({"request_id": ids[2]}, 422, "item 1: send the true class as label"),
        ):
            r = await client.post("/models/pima/feedback", json=[items[0], bad, items[2]])
            assert r.status_code == status and needle in r.json()["error"], r.text
        quality = (await client.get("/models/pima/versions/1/quality")).json()["quality"]
        assert quality is None  # nothing recorded by the refused lists
        r = await client.post("/models/pima/feedback", json=items)  # the same labels, fixed
        assert r.status_code == 200 and r.json() == {"recorded": 3}
        # a prediction of a version no longer served: gone, and said so
        app.state.operations.pending.remember("old", "pima", 99, 0, np.zeros((1, 1), np.float32))
        r = await client.post("/models/pima/feedback", json={"request_id": "old", "label": 1})
        assert r.status_code == 410 and "version 99 of pima" in r.json()["error"]
        # and one whose number now names a version that failed to load (republished broken):
        # its record has no task to read the label with
        app.state.operations.pending.remember("swapped", "pima", 1, 0, np.zeros((1, 1), np.float32))
        registry = app.state.registry
        failed = SimpleNamespace(name="pima", version=1, task=None)
        with patch.object(registry, "lookup", lambda name, version=None: failed):
            r = await client.post(
                "/models/pima/feedback", json={"request_id": "swapped", "label": 1}
            )
        assert r.status_code == 410 and "version 1 of pima" in r.json()["error"], r.text


async def test_a_label_for_a_version_loaded_again_since_is_gone(tiny_repo: Path) -> None:
    """A number unloaded and loaded again (or deleted and republished) is another load: the
    label of what the first one answered must not land in the second one's quality."""
    async with serve(tiny_repo, models=["mnist"], version_policy="all", feedback_window=100) as (
        app,
        client,
    ):
        r = await client.post("/models/mnist/versions/1/predict", json={"instances": images(1)})
        rid = r.headers["x-request-id"]
        registry = app.state.registry
        await registry.unload("mnist", 1)
        await registry.load("mnist", 1)
        r = await client.post("/models/mnist/feedback", json={"request_id": rid, "label": 3})
        assert r.status_code == 410 and "was published again" in r.json()["error"], r.text
        quality = (await client.get("/models/mnist/versions/1/quality")).json()["quality"]
        assert quality is None


async def label_one_prediction(client: httpx.AsyncClient) -> None:
    """A prediction of mnist version 1, and its label."""
    r = await client.post("/models/mnist/versions/1/predict", json={"instances": images(1)})
    body = {"request_id": r.headers["x-request-id"], "label": 3}
    assert (await client.post("/models/mnist/feedback", json=body)).status_code == 200


async def test_a_replaced_load_never_takes_back_the_windows_of_the_new_one(
    tiny_repo: Path,
) -> None:
    """Rows of a replaced load still queued (drift) or a report asked of it must not drop what
    the load now served has recorded."""
    async with serve(tiny_repo, models=["mnist"], version_policy="all", feedback_window=100) as (
        app,
        client,
    ):
        await label_one_prediction(client)
        ops, new = app.state.operations, app.state.registry.lookup("mnist", 1)
        old = dataclasses.replace(new, serial=new.serial - 1)
        assert ops.quality_report(old)["quality"] is None
        assert ops._drift_window_for(old) is None
        assert ops.quality_report(new)["quality"]["rows"] == 1


async def test_with_feedback_alone_a_version_gone_leaves_no_quality_behind(
    tiny_repo: Path,
) -> None:
    async with serve(tiny_repo, models=["mnist"], version_policy="all", feedback_window=100) as (
        app,
        client,
    ):
        await label_one_prediction(client)
        assert (
            'serve_quality_window_rows{model="mnist",version="1"}'
            in (await client.get("/metrics")).text
        )
        await app.state.registry.unload("mnist", 1)
        for _ in range(50):  # the operations thread forgets it within a round or two
            if (
                'serve_quality_window_rows{model="mnist",version="1"}'
                not in (await client.get("/metrics")).text
            ):
                break
            await asyncio.sleep(0.1)
        metrics = (await client.get("/metrics")).text
        assert 'serve_quality_window_rows{model="mnist",version="1"}' not in metrics


async def test_feedback_needs_the_api_key(tiny_repo: Path) -> None:
    async with serve(tiny_repo, models=["pima"], feedback_window=100, api_key="k") as (_, client):
        body = {"request_id": "x", "label": 1}
        assert (await client.post("/models/pima/feedback", json=body)).status_code == 401
        auth = {"Authorization": "Bearer k"}
        r = await client.post("/models/pima/feedback", json=body, headers=auth)
        assert r.status_code == 404
        assert (await client.get("/models/pima/versions/1/quality")).status_code == 200


async def test_feedback_off_is_a_clear_404(tiny_repo: Path) -> None:
    async with serve(tiny_repo, models=["pima"]) as (_, client):
        r = await client.post("/models/pima/feedback", json={"request_id": "x", "label": 1})
        assert r.status_code == 404 and "off" in r.json()["error"]
        q = (await client.get("/models/pima/versions/1/quality")).json()
        assert q["enabled"] is False and q["quality"] is None


# --- drift ------------------------------------------------------------------------------------
async def test_drift_per_feature_and_without_reference(repo_copy: Path) -> None:
    rows = np.array(pima_rows(400))
    write_reference(repo_copy / "pima" / "1", record_reference(rows, NAMES))
    async with serve(repo_copy, models=["pima", "mnist"], drift_window=100, drift_min_rows=50) as (
        app,
        client,
    ):
        for _ in range(4):
            await client.post("/models/pima/predict", json={"instances": pima_rows(25)})
        await client.post("/models/mnist/predict", json={"instances": images(2)})
        app.state.operations.process()
        report = (await client.get("/models/pima/versions/1/drift")).json()
        none = (await client.get("/models/mnist/versions/2/drift")).json()
        metrics = (await client.get("/metrics")).text
    drift = report["drift"]
    alarms = {k: v["p_value"] for k, v in drift["features"].items() if v["alarm"]}
    assert drift["rows"] == 100 and drift["alarm"] is False, alarms
    assert set(drift["features"]) == set(NAMES)
    assert drift["threshold"]["p_value_per_feature"] == pytest.approx(0.01 / 8)
    assert none["drift"] is None and "no drift reference" in none["reason"]
    assert 'serve_drift_ks{feature="glucose",model="pima",version="1"}' in metrics
    assert 'serve_drift_alarm{model="pima",version="1"} 0.0' in metrics


async def test_an_unreadable_drift_reference_is_reported_without_the_hosts_folders(
    repo_copy: Path,
) -> None:
    version = repo_copy / "pima" / "1"
    write_reference(version, record_reference(np.array(pima_rows(400)), NAMES))
    async with serve(repo_copy, models=["pima"], drift_window=100, drift_min_rows=50) as (
        app,
        client,
    ):
        (version / REFERENCE_FILE).unlink()  # gone after the load, before drift reads it
        await client.post("/models/pima/predict", json={"instances": pima_rows(5)})
        app.state.operations.process()
        report = (await client.get("/models/pima/versions/1/drift")).json()
    assert "drift reference unreadable" in report["reason"], report
    assert str(repo_copy) not in report["reason"] and REFERENCE_FILE in report["reason"]


async def test_the_drift_of_a_failed_version_says_it_failed(repo_copy: Path) -> None:
    """Not "ships no drift reference": a version refused at load serves nothing to drift."""
    version = repo_copy / "pima" / "2"
    shutil.copytree(repo_copy / "pima" / "1", version)
    write_reference(version, record_reference(np.array(pima_rows(400)), NAMES))
    meta = json.loads((version / "metadata.json").read_text())
    meta["version"] = 1  # a folder copied to a new number
    (version / "metadata.json").write_text(json.dumps(meta))
    async with serve(
        repo_copy, models=["pima"], version_policy="all", drift_window=100, drift_min_rows=50
    ) as (_, client):
        report = (await client.get("/models/pima/versions/2/drift")).json()
    assert report["drift"] is None, report
    assert report["reason"] == (
        "this version failed to load (metadata name/version do not match the folder): it "
        "serves no input"
    )


async def test_shifted_inputs_raise_the_alarm(repo_copy: Path) -> None:
    ref = RNG.random((2000, 28, 28)).astype(np.float32)
    write_reference(repo_copy / "mnist" / "2", image_reference(ref, RNG.integers(0, 10, 2000), 10))
    async with serve(repo_copy, models=["mnist"], drift_window=200, drift_min_rows=100) as (
        app,
        client,
    ):
        for _ in range(10):  # darker images: less ink mass
            x = (RNG.random((20, 28, 28)) * 0.7).round(3).tolist()
            await client.post("/models/mnist/versions/2/predict", json={"instances": x})
        app.state.operations.process()
        drift = (await client.get("/models/mnist/versions/2/drift")).json()["drift"]
    assert drift["alarm"] is True and drift["features"]["ink_mass"]["alarm"] is True


# --- shadow -----------------------------------------------------------------------------------
async def shadow_idle(shadow: Shadow | None, timeout_s: float = 10.0) -> None:
    if shadow is None:
        return
    deadline = asyncio.get_running_loop().time() + timeout_s
    while shadow.in_flight and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.005)
    assert shadow.in_flight == 0


async def test_shadow_answers_identical_and_agreement_offline(tiny_repo: Path) -> None:
    bodies = [{"instances": images(2)} for _ in range(20)]
    answers = {}
    for shadow in ({}, {"mnist": "1:1.0"}):
        async with serve(tiny_repo, models=["mnist"], shadow=shadow) as (app, client):
            ops = app.state.operations
            answers[bool(shadow)] = []
            for b in bodies:
                r = await client.post("/models/mnist/versions/2/predict", json=b)
                answers[bool(shadow)].append(r.content)
                # one request at a time, each shadow run finished before the next: under load
                # the shadow drops work by design, which is tested on its own below
                await shadow_idle(ops.shadow)
            registry = app.state.registry
            if shadow:
                stats = ops.shadow.stats[("mnist", 2, 1)]
                x = np.array([i for b in bodies for i in b["instances"]], np.float32)
                a = registry.resolve("mnist", 2).runtime.predict(x).argmax(1)
                b = registry.resolve("mnist", 1).runtime.predict(x).argmax(1)
                assert stats.rows == 40 and stats.dropped == 0
                assert stats.agreed / stats.rows == pytest.approx(float(np.mean(a == b)), abs=1e-12)
                metrics = (await client.get("/metrics")).text
                assert (
                    'serve_shadow_agreement{model="mnist",shadow_version="1",version="2"}'
                    in metrics
                )
                ops.shadow.no_target[("mnist", 2)] = 3
                await registry.unload("mnist", 1)  # the shadow target goes
                ops.process()
                assert ("mnist", 2, 1) not in ops.shadow.stats  # its counts with it
                assert ops.shadow.no_target == {("mnist", 2): 3}  # 2 still served
                metrics = (await client.get("/metrics")).text
                assert 'shadow_version="1"' not in metrics
    assert answers[True] == answers[False]


async def test_a_request_larger_than_a_batch_is_shadowed_on_an_idle_server(
    tiny_repo: Path,
) -> None:
    async with serve(tiny_repo, models=["mnist"], shadow={"mnist": "1:1.0"}, max_batch_size=4) as (
        app,
        client,
    ):
        r = await client.post("/models/mnist/versions/2/predict", json={"instances": images(10)})
        assert r.status_code == 200
        await shadow_idle(app.state.operations.shadow)
        stats = app.state.operations.shadow.stats[("mnist", 2, 1)]
        assert (stats.runs, stats.rows, stats.dropped) == (1, 10, 0)


async def test_shadow_agreement_takes_each_versions_own_threshold(repo_copy: Path) -> None:
    """A Pima canary with another decision threshold answers another outcome for the same
    probability: that is a disagreement."""
    shutil.copytree(repo_copy / "pima" / "1", repo_copy / "pima" / "2")
    meta_path = repo_copy / "pima" / "2" / "metadata.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "version": 2, "threshold": 0.999}))
    rows = pima_rows(20)
    async with serve(
        repo_copy, models=["pima"], version_policy="all", shadow={"pima": "2:1.0"}
    ) as (app, client):
        for row in rows:
            r = await client.post("/models/pima/versions/1/predict", json={"instances": [row]})
            assert r.status_code == 200
            await shadow_idle(app.state.operations.shadow)
        stats = app.state.operations.shadow.stats[("pima", 1, 2)]
        p = app.state.registry.resolve("pima", 1).runtime.predict(np.array(rows, np.float32))
        t1 = meta["threshold"]
        expected = int(np.sum((p[:, 0] >= t1) == (p[:, 0] >= 0.999)))
    assert stats.rows == 20 and stats.agreed == expected < 20


async def test_overload_drops_shadow_work_first_and_keeps_the_503_rate(tiny_repo: Path) -> None:
    """Waves of concurrent requests against a queue of 4 and 20 ms per inference, with every
    request shadowed and without: the same share is refused, and the shadow drops its runs."""
    from tests.helpers.reliability import BODY, slow_down

    waves, per_wave = 6, 40
    refused: dict[bool, int] = {}
    for shadow in ({}, {"mnist": "1:1.0"}):
        async with serve(
            tiny_repo,
            models=["mnist"],
            shadow=shadow,
            queue_size=4,
            max_instances=4,
            max_batch_size=1,
        ) as (app, client):
            slow_down(app, 0.02)
            statuses: list[int] = []
            for _ in range(waves):
                responses = await asyncio.gather(
                    *(client.post("/models/mnist/predict", json=BODY) for _ in range(per_wave))
                )
                statuses += [r.status_code for r in responses]
            assert set(statuses) <= {200, 503}, statuses
            refused[bool(shadow)] = statuses.count(503)
            ops = app.state.operations
            await shadow_idle(ops.shadow)
            if shadow:
                stats = ops.shadow.stats[("mnist", 2, 1)]
                assert stats.dropped > 0 and stats.errors == 0
                served = statuses.count(200)
                assert stats.runs + stats.dropped == served  # every answer shadowed or dropped
                print(f"shadowed: {stats.runs} run, {stats.dropped} dropped of {served} answers")
    total = waves * per_wave
    print(f"503s of {total}: shadow off {refused[False]}, on {refused[True]}")
    assert refused[False] > 0, "the load must overload the queue"
    # the same requests refused, up to the scheduling noise of a few requests
    assert abs(refused[True] - refused[False]) <= 0.02 * total, refused


async def test_a_shadow_target_not_served_is_warned_about_and_counted(
    tiny_repo: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, "service.shadow"):
        async with serve(tiny_repo, models=["mnist"], shadow={"mnist": "canary:1.0"}) as (
            app,
            client,
        ):
            for _ in range(3):
                r = await client.post("/models/mnist/predict", json={"instances": images(1)})
                assert r.status_code == 200
            metrics = (await client.get("/metrics")).text
    warnings = [r.getMessage() for r in caplog.records if "shadow target" in r.getMessage()]
    assert len(warnings) == 1 and "'canary'" in warnings[0]  # at start-up, not per request
    assert app.state.operations.shadow.no_target == {("mnist", 2): 3}
    expected = 'model="mnist",outcome="no_target",shadow_version="",version="2"} 3.0'
    assert "serve_shadow_runs_total{" + expected in metrics
