"""The hot-path harness's ablations: each switches one part off and puts it back."""

from __future__ import annotations

from benchmarks.hotpath import ABLATIONS, ablated, render_ablations
from benchmarks.payloads import Request
from service.http.edge import Edge
from service.observability.access_log import AccessLog
from service.observability.metrics import Metrics


def test_each_ablation_is_undone_afterwards() -> None:
    body = b'{"instances": [[1.0]]}'
    request = Request("json-1", "/v1/models/m:predict", body, "application/json")
    before = (Edge.__call__, AccessLog.__call__, Metrics.observe_request)
    for part in ("access log", "metrics", "request edge"):
        with ablated(part, request):
            assert (Edge.__call__, AccessLog.__call__, Metrics.observe_request) != before
        assert (Edge.__call__, AccessLog.__call__, Metrics.observe_request) == before


def test_the_table_shows_what_each_part_costs() -> None:
    rows = [{"off": part, "cpu_us": 70.0 - 5 * i} for i, part in enumerate(ABLATIONS)]
    text = render_ablations(rows)
    assert "| nothing (the service as it runs) | 70 | - |" in text
    assert "| access log | 65 | 5 |" in text
    assert "| request edge | 45 | 25 |" in text
