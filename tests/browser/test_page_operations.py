"""The model card's live section in headless Chromium, against a real server with feedback and
drift on: after predictions and their labels, the card shows the server's live quality and the
drift verdict with its per-feature table; a version with neither shows no live section."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.helpers.browser import choose_model, open_page
from tests.helpers.live_server import Server, run_server
from tests.helpers.models import cached_tiny_repository
from tests.helpers.operations import image_reference, write_reference

pytestmark = pytest.mark.browser
ROWS = 40


@pytest.fixture(scope="module")
def ops_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tiny = cached_tiny_repository(tmp_path_factory.mktemp("tiny") / "models")
    repo = tmp_path_factory.mktemp("ops-page") / "models"
    for name in ("mnist", "pima"):
        shutil.copytree(tiny / name, repo / name)
    rng = np.random.default_rng(5)
    for meta in (repo / "mnist").glob("*/metadata.json"):  # finished versions
        version_dir = meta.parent
        # the reference: dim noise, so the page's predictions below differ from it in ink mass
        ref = (rng.random((500, 28, 28)) * 0.5).astype(np.float32)
        write_reference(version_dir, image_reference(ref, rng.integers(0, 10, 500), 10))
    env = {
        "SERVE_MODELS": "mnist,pima",
        "SERVE_FEEDBACK_WINDOW": "1000",
        "SERVE_DRIFT_WINDOW": "100",
        "SERVE_DRIFT_MIN_ROWS": "20",
    }
    log = tmp_path_factory.mktemp("ops-page-server") / "server.log"
    with run_server(repo, log, env) as running:
        yield running


def _fmt(x: float) -> str:
    """The page's number format for a metric (app.js ``fmt``)."""
    return str(int(x)) if float(x).is_integer() else f"{x:.1f}" if abs(x) >= 10 else f"{x:.4f}"


@pytest.fixture(scope="module")
def served(ops_server: Server) -> dict[str, Any]:
    """Predictions with their labels posted, and the server's own quality and drift reports."""
    rng = np.random.default_rng(6)
    with httpx.Client(base_url=ops_server.url, timeout=30) as client:
        version = client.get("/models/mnist").json()["default_version"]
        x = rng.random((ROWS, 28, 28)).round(3).tolist()
        r = client.post("/v1/models/mnist:predict", json={"instances": x})
        r.raise_for_status()
        labels = rng.integers(0, 10, ROWS).tolist()
        fb = client.post(
            "/models/mnist/feedback",
            json={"request_id": r.headers["x-request-id"], "labels": labels},
        )
        assert fb.status_code == 200, fb.text
        base = f"/models/mnist/versions/{version}"
        deadline = time.monotonic() + 10
        while (drift := client.get(f"{base}/drift").json()["drift"])["rows"] < ROWS:
            assert time.monotonic() < deadline, drift
            time.sleep(0.05)
        quality = client.get(f"{base}/quality").json()["quality"]
    return {"version": version, "quality": quality, "drift": drift}


@pytest.fixture
def page(browser: Any, ops_server: Server) -> Iterator[Any]:
    with open_page(browser, ops_server.url) as pg:
        yield pg


def _open_card(pg: Any, model: str) -> str:
    choose_model(pg, model)
    pg.click("#card-toggle")
    pg.wait_for_selector("#card-live[data-loaded=yes]", state="attached")
    return str(pg.locator("#card-live").inner_text())


def test_card_shows_live_quality_and_drift(
    page: Any, served: dict[str, Any], screenshots: Path
) -> None:
    live = _open_card(page, "mnist")
    q, drift = served["quality"], served["drift"]
    assert f"Live quality (last {ROWS} labelled predictions, window 1000)" in live
    assert f"accuracy\t{_fmt(q['accuracy'])}" in live
    assert f"Brier score\t{_fmt(q['brier'])}" in live
    verdict = page.locator("#drift-verdict").inner_text()
    assert verdict.startswith("Drift alarm" if drift["alarm"] else "No drift")
    assert f"Input drift (last {drift['rows']} of {drift['inputs_total']} inputs" in live
    table = page.locator("#card-live table.drift tbody tr")
    assert table.count() == len(drift["features"])
    for name, feature in drift["features"].items():
        row = page.locator(f"#card-live table.drift tr:has(th:text-is('{name}'))")
        assert row.locator("td").last.inner_text() == ("alarm" if feature["alarm"] else "ok")
    page.locator("#card").screenshot(path=str(screenshots / "card-live.png"))


def test_card_without_feedback_or_drift_has_no_live_section(page: Any) -> None:
    live = _open_card(page, "pima")  # no labels posted, no drift reference
    assert live.strip() == ""
    assert not page.locator("#card-live").is_visible()
