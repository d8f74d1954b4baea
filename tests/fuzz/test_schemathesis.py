"""Schemathesis against the service's own OpenAPI schema, every operation, in-process (ASGI).

Each operation gets ``FUZZ_EXAMPLES`` generated requests (300 by default; ``make fuzz`` can raise
it), positive and negative. Two checks: no 5xx, and every response conforms to its documented
schema. The app serves a tiny repository holding working models (mnist, pima) and failed ones
, so every answer is a 200 or a 4xx: a 503 from a failed model would hide real 5xx. The number of cases run is written
to ``tests/.cache/fuzz_cases.json`` for the docs.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import response_schema_conformance

from service.app import create_app
from tests.service.conftest import make_settings

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "300"))
REPORT = Path(__file__).resolve().parents[1] / ".cache" / "fuzz_cases.json"
_COUNTS: dict[str, int] = {}
_LOCK = threading.Lock()


@pytest.fixture(scope="module")
def fuzz_schema(tiny_repo: Path) -> Iterator[Any]:
    app_settings = make_settings(
        tiny_repo,
        models=["mnist", "pima"],
        max_instances=16,
        max_body_bytes=100_000,
        max_upload_files=3,
        request_timeout_s=5.0,
    )
    yield schemathesis.openapi.from_asgi("/openapi.json", create_app(app_settings))
    if _COUNTS:
        REPORT.parent.mkdir(parents=True, exist_ok=True)
        total = sum(_COUNTS.values())
        REPORT.write_text(
            json.dumps({"examples_per_operation": EXAMPLES, "cases": total, "by_operation": _COUNTS}, indent=1)
        )
        print(f"\nschemathesis: {total} cases over {len(_COUNTS)} operations")


def _operations() -> list[tuple[str, str]]:
    """(method, path) of every operation, read from a throw-away app's schema at collection."""
    spec = create_app(make_settings(Path("does-not-exist"))).openapi()
    return sorted(
        (method.upper(), path)
        for path, item in spec["paths"].items()
        for method in item
        if method in {"get", "post", "put", "delete", "patch"}
    )


MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)


@pytest.mark.timeout(900)
@pytest.mark.parametrize(("method", "path"), _operations())
def test_every_operation(fuzz_schema: Any, method: str, path: str) -> None:
    operation = fuzz_schema[path][method]
    label = f"{method} {path}"
    for mode in MODES:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES // len(MODES),
            deadline=None,
            phases=[Phase.explicit, Phase.generate, Phase.shrink],
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def run(case: Any) -> None:
            with _LOCK:
                _COUNTS[label] = _COUNTS.get(label, 0) + 1
            case.call_and_validate(checks=[not_a_server_error, response_schema_conformance])

        try:
            run()
        except Unsatisfiable:
            # nothing to make invalid: an operation without parameters or body
            assert mode is GenerationMode.NEGATIVE, label
