"""What the page shows when an answer cannot be trusted any more, in headless Chromium against a
real server: a failed request, an answer that arrives after the pad was cleared or another
version chosen, a model chosen while its metadata is on its way, and a server that stops
answering (or a proxy that answers for it)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.browser.test_page import _updates, _wait_updates
from tests.helpers.browser import choose_model, draw_line

pytestmark = pytest.mark.browser


def _answered(pg: Any, path: Path) -> str:
    before = _updates(pg, "#verdict")
    pg.set_input_files("#file", str(path))
    _wait_updates(pg, "#verdict", before)
    label: str = pg.get_attribute("#verdict", "data-label")
    assert label and pg.locator("#predicted-label").count() == 1
    return label


PREDICTIONS = "**/predict*"
METADATA = re.compile(r"/models/[^/?]+/versions/\d+$")  # a version's metadata, not its predict


@contextmanager
def _holding(pg: Any, requests: str | re.Pattern[str] = PREDICTIONS) -> Iterator[list[Any]]:
    """Requests to ``requests`` (predictions unless told) held back (routes to continue or
    fulfil) while the block runs."""
    held: list[Any] = []
    pg.route(requests, lambda route: held.append(route))
    try:
        yield held
    finally:
        pg.unroute(requests)


def _held(pg: Any, held: list[Any], count: int = 1) -> None:
    for _ in range(100):  # waiting lets Playwright hand the request to the route
        if len(held) >= count:
            return
        pg.wait_for_timeout(50)
    raise AssertionError(f"{count - len(held)} of the requests never left the page")


def _versions(pg: Any) -> list[str]:
    """The versions the picker offers by number (available ones); the test is skipped without."""
    versions: list[str] = pg.evaluate(
        """() => [...document.querySelectorAll('#version option')]
            .filter(o => o.value !== '' && !o.disabled).map(o => o.value)"""
    )
    if not versions:
        pytest.skip("no explicit version to choose")
    return versions


def test_a_failed_upload_does_not_leave_the_last_answer_beside_it(
    page: Any, golden_digit: Path, tmp_path: Path
) -> None:
    """The pad shows the new picture; the answer to the one before must not stay beside it."""
    _answered(page, golden_digit)
    gif = tmp_path / "photo.gif"
    Image.new("RGB", (64, 64), "white").save(gif)  # a format the server refuses (415)
    page.set_input_files("#file", str(gif))
    page.wait_for_selector("#error:not([hidden])")
    page.wait_for_function("() => document.body.dataset.busy !== 'yes'")
    assert "supported" in page.locator("#error").inner_text()
    assert page.locator("#predicted-label").count() == 0
    assert page.locator("#bars tbody tr").count() == 0
    assert page.get_attribute("#verdict", "data-label") == ""
    assert page.locator("#no-answer").inner_text() == "No prediction for this picture."
    assert page.locator("#explain-note").inner_text() == ""


def test_an_answer_that_arrives_after_clear_is_not_shown(page: Any, golden_digit: Path) -> None:
    with _holding(page) as held:
        page.set_input_files("#file", str(golden_digit))
        _held(page, held)
        page.click("#clear")
        before = _updates(page, "#verdict")
        with page.expect_response(lambda r: "/predict" in r.url):
            held[0].continue_()
        page.wait_for_timeout(300)
        assert _updates(page, "#verdict") == before
        assert page.locator("#predicted-label").count() == 0
        assert "Draw something" in page.locator("#verdict").inner_text()


def test_an_answer_from_the_version_before_is_not_shown(page: Any, golden_digit: Path) -> None:
    """Another version chosen while the answer of the one before is on its way: that answer,
    arriving first, is not shown under the version now chosen."""
    versions = _versions(page)
    _answered(page, golden_digit)
    with _holding(page) as held:
        page.select_option("#version", versions[0])
        _held(page, held)
        page.select_option("#version", "")  # back to the default: the upload is sent again
        _held(page, held, 2)
        assert f"/versions/{versions[0]}/" in held[0].request.url and len(held) == 2
        before = _updates(page, "#verdict")
        with page.expect_response(lambda r: "/predict" in r.url):
            held[0].continue_()  # the version no longer chosen answers first
        page.wait_for_timeout(300)
        assert _updates(page, "#verdict") == before
        assert page.locator("#predicted-label").count() == 0
        with page.expect_response(lambda r: "/predict" in r.url):
            held[1].continue_()
        _wait_updates(page, "#verdict", before)
        assert page.locator("#predicted-label").count() == 1
        assert f"mnist v{versions[0]} " not in page.locator("#verdict").inner_text() + " "


def test_the_status_says_when_the_server_cannot_be_reached(page: Any, golden_digit: Path) -> None:
    assert page.locator("#status").inner_text() == "Ready"
    page.route("**/predict*", lambda route: route.abort("connectionrefused"))
    try:
        page.set_input_files("#file", str(golden_digit))
        page.wait_for_selector("#error:not([hidden])")
        assert "Cannot reach the server" in page.locator("#error").inner_text()
        assert page.locator("#status").inner_text() == "Server unreachable"
        assert page.get_attribute("#status", "data-ready") == "no"
    finally:
        page.unroute("**/predict*")
    _answered(page, golden_digit)  # the server answers again: so does the status
    page.wait_for_function("() => document.getElementById('status').dataset.ready === 'yes'")
    assert page.locator("#status").inner_text() == "Ready"


# What nginx answers when the service behind it is down
PROXY_502 = (
    "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>"
)


def test_the_status_says_when_a_proxy_cannot_reach_the_server(
    page: Any, golden_digit: Path
) -> None:
    """A reverse proxy answers 502 with a page of its own: the server is unreachable, and the
    error says so in words, not in the proxy's HTML."""
    assert page.locator("#status").inner_text() == "Ready"
    gateway = {"status": 502, "content_type": "text/html", "body": PROXY_502}
    page.route(PREDICTIONS, lambda route: route.fulfill(**gateway))
    try:
        page.set_input_files("#file", str(golden_digit))
        page.wait_for_selector("#error:not([hidden])")
        assert page.locator("#status").inner_text() == "Server unreachable"
        assert page.get_attribute("#status", "data-ready") == "no"
        error = page.locator("#error").inner_text()
        assert "Cannot reach the server" in error and "502" in error, error
        assert "<" not in error and "Bad Gateway</" not in error
    finally:
        page.unroute(PREDICTIONS)
    _answered(page, golden_digit)  # the proxy reaches the server again: so does the status
    page.wait_for_function("() => document.getElementById('status').dataset.ready === 'yes'")
    assert page.locator("#status").inner_text() == "Ready"


def test_the_status_read_at_load_tells_a_proxy_from_the_server(page: Any) -> None:
    """/readyz answered by a proxy (HTML) is the server unreachable; by the server (its JSON
    503), some models not ready."""
    page.route(
        "**/readyz",
        lambda route: route.fulfill(status=502, content_type="text/html", body=PROXY_502),
    )
    page.reload()
    page.wait_for_selector("body[data-loaded=yes]")
    page.wait_for_function("() => document.getElementById('status').dataset.ready === 'no'")
    assert page.locator("#status").inner_text() == "Server unreachable"
    page.unroute("**/readyz")
    not_ready = '{"error": "not ready: mnist", "status": "not ready"}'
    page.route(
        "**/readyz",
        lambda route: route.fulfill(status=503, content_type="application/json", body=not_ready),
    )
    page.reload()
    page.wait_for_selector("body[data-loaded=yes]")
    page.wait_for_function("() => document.getElementById('status').dataset.ready === 'no'")
    assert page.locator("#status").inner_text().startswith("Not ready")
    page.unroute("**/readyz")


def test_a_proxy_s_own_json_or_empty_answer_is_told_from_the_service_s(
    page: Any, golden_digit: Path
) -> None:
    """The service's own 504 (its deadline) is JSON with an "error": the server answered. A 502
    in a proxy's own JSON (no "error"), or JSON that is empty, is the server unreachable, and the
    error says so in words, not in a JSON parser's."""
    deadline = "request did not finish within 5 s"
    answers = [
        (504, f'{{"error": "{deadline}"}}', deadline),
        (502, '{"message": "An invalid response was received from the upstream server"}', None),
        (502, "", None),
    ]
    for status, body, said in answers:
        answer = {"status": status, "content_type": "application/json", "body": body}
        page.route(PREDICTIONS, lambda route, _, answer=answer: route.fulfill(**answer))
        try:
            page.set_input_files("#file", str(golden_digit))
            page.wait_for_selector("#error:not([hidden])")
            error = page.locator("#error").inner_text()
            if said:
                assert said in error and "Cannot reach" not in error, error
                assert page.locator("#status").inner_text() == "Ready"
            else:
                assert "Cannot reach the server" in error and f"{status}" in error, error
                assert "JSON" not in error and "message" not in error, error
                assert page.locator("#status").inner_text() == "Server unreachable"
        finally:
            page.unroute(PREDICTIONS)
        _answered(page, golden_digit)
        page.wait_for_function("() => document.getElementById('status').dataset.ready === 'yes'")


def test_a_file_over_the_body_limit_is_refused_in_megabytes(page: Any, tmp_path: Path) -> None:
    """The server's 413 says the body's size and the limit in MiB; the body is the file."""
    big = tmp_path / "huge.png"
    with big.open("wb") as out:
        out.write(b"\x89PNG\r\n\x1a\n")
        out.truncate(34_694_301)  # the default limit is 32 MiB (33,554,432 bytes)
    page.set_input_files("#file", str(big))
    page.wait_for_selector("#error:not([hidden])")
    assert page.locator("#error").inner_text() == (
        "Prediction failed: the file huge.png is 33.1 MiB (34,694,301 bytes); this server accepts"
        " at most 32 MiB (33,554,432 bytes)"
    )
    assert page.locator("#no-answer").count() == 1


def _ink(pg: Any) -> int:
    return int(
        pg.evaluate(
            """() => {
                const d = document.getElementById('pad').getContext('2d')
                    .getImageData(0, 0, 280, 280).data;
                let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i] > 128) n++; return n;
            }"""
        )
    )


def test_a_version_chosen_while_the_server_is_down_keeps_the_drawing(page: Any) -> None:
    """Its metadata cannot be read: the panel and the drawing stay, the error says so, and the
    next stroke reads the metadata again and is answered by the version chosen."""
    versions = _versions(page)
    before = _updates(page, "#verdict")
    draw_line(page, (140, 50), (140, 230), steps=8)
    _wait_updates(page, "#verdict", before)
    ink = _ink(page)
    assert ink > 1000

    page.route(METADATA, lambda route: route.abort("connectionrefused"))
    try:
        page.select_option("#version", versions[0])
        page.wait_for_selector("#error:not([hidden])")
        assert "Cannot read the model's metadata" in page.locator("#error").inner_text()
        assert page.locator("#image-panel").is_visible()
        assert _ink(page) == ink  # the drawing is still there
        assert page.locator("#predicted-label").count() == 0  # the answer of the version before
    finally:
        page.unroute(METADATA)

    before = _updates(page, "#verdict")
    draw_line(page, (120, 60), (140, 50), steps=3)  # the pad, below the error now
    _wait_updates(page, "#verdict", before)
    assert page.locator("#predicted-label").count() == 1
    assert f"mnist v{versions[0]}" in page.locator("#verdict").inner_text()
    assert page.locator("#error").is_hidden()


def test_pima_values_stay_when_its_metadata_cannot_be_read(page: Any) -> None:
    choose_model(page, "pima")
    versions = _versions(page)
    before = _updates(page, "#pima-result")
    page.click("#pima-example")
    _wait_updates(page, "#pima-result", before)
    glucose = page.input_value("#f-glucose")

    page.route(METADATA, lambda route: route.abort("connectionrefused"))
    try:
        page.select_option("#version", versions[0])
        page.wait_for_selector("#error:not([hidden])")
        assert page.locator("#pima-panel").is_visible()
        assert page.input_value("#f-glucose") == glucose
        assert page.locator("#pima-outcome").count() == 0
    finally:
        page.unroute(METADATA)

    before = _updates(page, "#pima-result")
    page.click("#pima-submit")  # the next prediction reads the metadata again
    _wait_updates(page, "#pima-result", before)
    assert page.locator("#pima-outcome").count() == 1
    assert f"pima v{versions[0]}" in page.locator("#pima-result").inner_text()
    assert page.locator("#error").is_hidden()


def test_a_pima_field_keeps_the_focus_when_its_metadata_is_read_again(page: Any) -> None:
    """Typing after a metadata failure reads the metadata again and builds the form again: the
    field typed in keeps the focus, so the next keys are not lost."""
    choose_model(page, "pima")
    versions = _versions(page)
    page.fill("#f-glucose", "14")
    page.route(METADATA, lambda route: route.abort("connectionrefused"))
    try:
        page.select_option("#version", versions[0])
        page.wait_for_selector("#error:not([hidden])")
    finally:
        page.unroute(METADATA)
    page.focus("#f-glucose")
    page.keyboard.press("End")
    page.keyboard.type("8")  # the prediction it asks for reads the metadata again
    page.wait_for_selector("body[data-meta=pima]")
    assert page.evaluate("document.activeElement.id") == "f-glucose"
    page.keyboard.type("0")
    assert page.input_value("#f-glucose") == "1480"


def test_a_stroke_while_the_metadata_cannot_be_read_does_not_leave_the_page_busy(
    page: Any,
) -> None:
    """The stroke reads the metadata again; when that fails too, nothing is on its way."""
    versions = _versions(page)
    page.route(METADATA, lambda route: route.abort("connectionrefused"))
    try:
        page.select_option("#version", versions[0])
        page.wait_for_selector("#error:not([hidden])")
        draw_line(page, (140, 50), (140, 230), steps=8)
        page.wait_for_function("() => document.body.dataset.busy === 'no'", timeout=5000)
        assert "Cannot read the model's metadata" in page.locator("#error").inner_text()
    finally:
        page.unroute(METADATA)


def test_a_failure_that_arrives_after_clear_is_not_shown(page: Any, golden_digit: Path) -> None:
    """A request on its way when the pad is cleared fails: its error is for a picture no longer
    on the pad, and is dropped as its answer would be."""
    with _holding(page) as held:
        page.set_input_files("#file", str(golden_digit))
        _held(page, held)
        page.click("#clear")
        held[0].fulfill(status=503, content_type="application/json", body='{"error": "busy"}')
        page.wait_for_function("() => document.body.dataset.busy !== 'yes'")
        page.wait_for_timeout(300)
        assert page.locator("#error").is_hidden()
        assert "Draw something" in page.locator("#verdict").inner_text()


def test_a_model_chosen_shows_as_loading_until_its_metadata_is_in(
    page: Any, golden_digit: Path
) -> None:
    """Until pima's metadata is in, mnist's pad, answer and description are not shown as pima's:
    the panel is out of use and says it is loading, and nothing is sent from it."""
    _answered(page, golden_digit)
    described = page.locator("#model-desc").inner_text()
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url) if "/predict" in r.url else None)
    with _holding(page, METADATA) as held:
        page.select_option("#model", "pima")
        _held(page, held)
        assert page.locator("#predicted-label").count() == 0  # mnist's answer is gone
        assert page.locator("#model-desc").inner_text().startswith("Loading pima")
        assert page.get_attribute("#image-panel", "aria-busy") == "true"
        assert page.evaluate("document.getElementById('image-panel').inert")
        page.set_input_files("#file", str(golden_digit))  # bypasses inert, as a script could
        page.wait_for_timeout(300)
        assert requests == []  # the upload waits for the metadata, mnist's or pima's
        held[0].continue_()
        page.wait_for_selector("body[data-meta=pima]")
    assert page.locator("#pima-panel").is_visible() and page.locator("#image-panel").is_hidden()
    assert page.get_attribute("#pima-panel", "aria-busy") is None
    assert not page.evaluate("document.getElementById('pima-panel').inert")
    assert page.locator("#model-desc").inner_text() not in ("", described)
    page.wait_for_function("() => document.body.dataset.busy !== 'yes'")
    assert all("/models/pima/" in url for url in requests), requests


def test_a_pima_answer_arriving_after_another_model_is_chosen_asks_it_nothing(
    page: Any,
) -> None:
    """The answer is for the form no longer shown: it is not shown, and its values are not sent
    to the model now chosen to be explained."""
    choose_model(page, "pima")
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if r.method == "POST" else None)
    with _holding(page) as held:
        page.click("#pima-example")
        _held(page, held)
        choose_model(page, "mnist")
        with page.expect_response(lambda r: "/predict" in r.url):
            held[0].continue_()
        page.wait_for_timeout(500)
    assert [url for url in sent if "/models/mnist/" in url] == []
    assert page.locator("#error").is_hidden()
    assert page.locator("#image-panel").is_visible()


def test_a_tab_out_of_the_api_key_keeps_the_focus_where_it_lands(page: Any) -> None:
    """A key typed and Tab: the focus lands on the pad as the models are read again with it; the
    pad is out of use while they are, and has the focus back once they are in, keys and all."""
    page.click(".key summary")
    page.fill("#api-key", "secret")
    with _holding(page, METADATA) as held:
        page.keyboard.press("Tab")  # change: the models are read again with the key
        _held(page, held)
        assert page.evaluate("document.getElementById('image-panel').inert")
        held[0].continue_()
        page.wait_for_selector("body[data-meta=mnist]")
    page.wait_for_function("() => document.body.dataset.busy !== 'yes'")
    assert page.evaluate("document.activeElement.id") == "pad"


def _stroke(pg: Any) -> None:
    draw_line(pg, (140, 50), (140, 230), steps=8)
    pg.wait_for_function("() => document.body.dataset.busy === 'no'", timeout=5000)


@contextmanager
def _chosen_with_the_server_down(pg: Any) -> Iterator[list[str]]:
    """A version chosen while the metadata cannot be read (the error shown); yields the
    metadata reads made, growing as the page reads again."""
    versions = _versions(pg)
    reads: list[str] = []
    pg.on("request", lambda r: reads.append(r.url) if METADATA.search(r.url) else None)
    pg.route(METADATA, lambda route: route.abort("connectionrefused"))
    try:
        pg.select_option("#version", versions[0])
        pg.wait_for_selector("#error:not([hidden])")
        yield reads
    finally:
        pg.unroute(METADATA)


def test_a_stroke_s_metadata_read_while_the_server_is_down_is_not_announced(page: Any) -> None:
    """The description is a live region: it says Loading for the version chosen, not again
    (and cleared again) for each stroke that reads the metadata again."""
    with _chosen_with_the_server_down(page) as reads:
        page.evaluate(
            """() => {
                window.said = [];
                const desc = document.getElementById('model-desc');
                new MutationObserver(() => window.said.push(desc.textContent)).observe(
                    desc, {childList: true, characterData: true, subtree: true});
            }"""
        )
        chosen = len(reads)
        _stroke(page)
        assert len(reads) > chosen  # the stroke did read the metadata again
        assert page.evaluate("window.said") == []
        assert page.locator("#model-desc").inner_text() == ""


# Each text the error (role=alert) is given from now on: one entry per change of its text
WATCH_ERROR = """() => {
    window.alerts = [];
    const box = document.getElementById('error');
    new MutationObserver((records) => {
        for (const r of records) window.alerts.push(box.textContent);
    }).observe(box, {childList: true, characterData: true, subtree: true});
}"""


def test_the_same_error_is_not_announced_again_at_each_stroke(page: Any) -> None:
    """The error is an alert. With the server down each stroke reads the metadata again and
    fails as the read before did: the error stays on screen as it is, and is not cleared and
    set again (said again) at every stroke; another error is said."""
    with _chosen_with_the_server_down(page) as reads:
        error = page.locator("#error").inner_text()
        page.evaluate(WATCH_ERROR)
        for _ in range(2):
            before = len(reads)
            _stroke(page)
            assert len(reads) > before  # the stroke did read the metadata again
            assert page.locator("#error").is_visible()
        assert page.evaluate("window.alerts") == []
        assert page.locator("#error").inner_text() == error

        page.unroute(METADATA)
        busy = '{"error": "model mnist is busy"}'  # the service's own 503: another error
        page.route(
            METADATA,
            lambda route: route.fulfill(status=503, content_type="application/json", body=busy),
        )
        _stroke(page)
        alerts = page.evaluate("window.alerts")
        assert len(alerts) == 1 and "model mnist is busy" in alerts[0], alerts


def test_the_same_prediction_error_is_not_announced_again_at_each_stroke(page: Any) -> None:
    """The metadata is in, the predictions cannot reach the server: the error is said once, at
    the first failure, not again at each prediction of each stroke that fails as it did."""
    page.evaluate(WATCH_ERROR)
    page.route(PREDICTIONS, lambda route: route.abort("connectionrefused"))
    try:
        for _ in range(2):
            _stroke(page)
            assert page.locator("#error").is_visible()
        alerts = page.evaluate("window.alerts")
        assert len(alerts) == 1 and "Cannot reach the server" in alerts[0], alerts
        assert page.locator("#error").inner_text() == alerts[0]
    finally:
        page.unroute(PREDICTIONS)


def test_a_metadata_read_that_never_answers_gives_the_panel_back(page: Any) -> None:
    """A stalled proxy or a stuck server: the read gives up after the page's wait (the clock is
    moved past it), the panel is back in use with the error, and the next stroke reads again."""
    versions = _versions(page)
    page.clock.install()
    with _holding(page, METADATA) as held:
        page.select_option("#version", versions[0])
        _held(page, held)
        assert page.evaluate("document.getElementById('image-panel').inert")
        page.clock.run_for(31_000)
        page.wait_for_selector("#error:not([hidden])", timeout=5000)
    error = page.locator("#error").inner_text()
    assert "Cannot read the model's metadata" in error and "no answer within 30 s" in error, error
    assert not page.evaluate("document.getElementById('image-panel').inert")
    assert page.get_attribute("#image-panel", "aria-busy") is None
    assert page.get_attribute("body", "data-busy") == "no"
    assert page.locator("#status").inner_text() == "Server unreachable"

    before = _updates(page, "#verdict")
    draw_line(page, (140, 50), (140, 230), steps=8)  # the next stroke reads the metadata again
    _wait_updates(page, "#verdict", before)
    assert f"mnist v{versions[0]}" in page.locator("#verdict").inner_text()
    assert page.locator("#error").is_hidden()


def test_a_prediction_that_never_answers_leaves_the_pad_in_use(
    page: Any, golden_digit: Path
) -> None:
    """The upload's request gives up after the page's wait: the page is no longer busy, and the
    next picture is sent and answered."""
    page.clock.install()
    with _holding(page) as held:
        page.set_input_files("#file", str(golden_digit))
        _held(page, held)
        page.clock.run_for(31_000)
        page.wait_for_selector("#error:not([hidden])", timeout=5000)
        assert "no answer within 30 s" in page.locator("#error").inner_text()
        page.wait_for_function("() => document.body.dataset.busy === 'no'", timeout=5000)
    _answered(page, golden_digit)


def test_the_page_is_busy_until_the_last_of_two_uploads_is_answered(
    page: Any, golden_digit: Path
) -> None:
    with _holding(page) as held:
        page.set_input_files("#file", str(golden_digit))
        _held(page, held)
        page.set_input_files("#file", str(golden_digit))
        _held(page, held, 2)
        with page.expect_response(lambda r: "/predict" in r.url):
            held[0].continue_()
        page.wait_for_timeout(300)
        assert page.get_attribute("body", "data-busy") == "yes"  # the second is still out
        with page.expect_response(lambda r: "/predict" in r.url):
            held[1].continue_()
        page.wait_for_function("() => document.body.dataset.busy === 'no'", timeout=5000)


# Every value body[data-busy] takes from now on (the first one is the value it had)
WATCH_BUSY = """() => {
    window.busyValues = [];
    new MutationObserver((records) => {
        for (const r of records) window.busyValues.push(r.oldValue);
    }).observe(document.body, {attributes: true, attributeFilter: ['data-busy'],
                              attributeOldValue: true});
}"""


def test_an_upload_sent_again_for_another_version_keeps_the_page_busy(
    page: Any, golden_digit: Path
) -> None:
    """Between the version's metadata arriving and the upload on the pad being sent again, the
    page does not read as idle."""
    versions = _versions(page)
    _answered(page, golden_digit)
    page.wait_for_function("() => document.body.dataset.busy === 'no'")
    page.evaluate(WATCH_BUSY)
    with _holding(page) as held:
        page.select_option("#version", versions[0])
        _held(page, held)  # the upload, sent again once the metadata is in
        values = page.evaluate("[...window.busyValues, document.body.dataset.busy]")
        assert values[0] == "no" and "no" not in values[1:], values
        with page.expect_response(lambda r: "/predict" in r.url):
            held[0].continue_()
    page.wait_for_function("() => document.body.dataset.busy === 'no'", timeout=5000)


def test_a_status_check_answered_late_does_not_put_ready_over_newer_news(
    page: Any, golden_digit: Path
) -> None:
    """A request that succeeds after the server was unreachable asks /readyz again; when a later
    request finds the server unreachable before that check is answered, the late "ready" must not
    show the server as Ready."""
    proxy = {"status": 502, "content_type": "application/json", "body": ""}
    page.route(PREDICTIONS, lambda route: route.fulfill(**proxy))
    page.set_input_files("#file", str(golden_digit))
    page.wait_for_function("() => document.getElementById('status').dataset.reach === 'no'")
    page.unroute(PREDICTIONS)
    with _holding(page, "**/readyz") as held:
        _answered(page, golden_digit)  # reachable again: the status is asked for, and held
        _held(page, held)
        page.wait_for_timeout(300)  # the answer's own follow-up requests ask for it too
        asked_before = list(held)
        assert "Cannot reach" not in (page.locator("#error").text_content() or "")
        page.route(PREDICTIONS, lambda route: route.fulfill(**proxy))
        try:
            page.set_input_files("#file", str(golden_digit))
            page.wait_for_function(  # the 502 handled (the status was "no" already: held)
                "() => document.getElementById('error').textContent.includes('Cannot reach')"
            )
        finally:
            page.unroute(PREDICTIONS)
        for route in asked_before:  # answered now, after the news that the server is unreachable
            route.continue_()
        page.wait_for_timeout(500)
        assert page.locator("#status").inner_text() == "Server unreachable"
        for route in held[len(asked_before) :]:  # asked since: newer news, let through
            route.continue_()
