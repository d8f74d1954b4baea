"""Schemathesis against the service's own OpenAPI schema, every operation, in-process (ASGI).

Each operation gets ``FUZZ_EXAMPLES`` generated requests (300 by default), invalid and valid
ones. Two checks: no 5xx, and every response conforms to its documented schema. The app serves
only working models (mnist, pima), so every answer must be a 200 or a 4xx: a 503 from a failed
model would hide a real 5xx. The number of cases run is written to
``tests/.cache/fuzz_cases.json`` for the docs.
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
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import response_schema_conformance

from service.app import create_app
from tests.helpers.settings import make_settings

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "300"))
REPORT = Path(__file__).resolve().parents[1] / ".cache" / "fuzz_cases.json"
ADMIN_KEY = "fuzz-admin-key"
AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}
_COUNTS: dict[str, int] = {}
_STATUSES: dict[str, int] = {}
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
        admin_key=ADMIN_KEY,  # the lifecycle endpoints answer only loopback clients without it
    )
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(app_settings))
    schema.hook(flatmap_path_parameters)
    yield schema
    if _COUNTS:
        REPORT.parent.mkdir(parents=True, exist_ok=True)
        total = sum(_COUNTS.values())
        REPORT.write_text(
            json.dumps(
                {
                    "examples_per_operation": EXAMPLES,
                    "cases": total,
                    "statuses": dict(sorted(_STATUSES.items())),
                    "by_operation": _COUNTS,
                },
                indent=1,
            )
        )
        print(f"\nschemathesis: {total} cases over {len(_COUNTS)} operations, {_STATUSES}")


# Random strings almost never name a served model: half of the cases use real names instead, so
# the generated bodies reach the decoders and the models rather than stopping at a 404.
KNOWN: dict[str, list[str]] = {
    "name": ["mnist", "pima"],
    "version": ["1", "2"],
    "label": ["baseline", "stable"],
    "verb": ["predict", "classify", "regress"],
    "filename": ["report.md", "history.png"],
}


def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any]) -> Any:
    keys = [key for key in path_parameters or {} if key in KNOWN]
    if not keys:
        return st.just(path_parameters)
    real = st.fixed_dictionaries({key: st.sampled_from(KNOWN[key]) for key in keys})
    return st.one_of(st.just(path_parameters), real.map(lambda v: {**path_parameters, **v}))


def _operations() -> list[tuple[str, str]]:
    """(method, path) of every operation, read from a throw-away app's schema at collection."""
    spec = create_app(make_settings(Path("does-not-exist"))).openapi()
    return sorted(
        (method.upper(), path)
        for path, item in spec["paths"].items()
        for method in item
        if method in {"get", "post", "put", "delete", "patch"}
    )


def _run(operation: Any, label: str, mode: GenerationMode, examples: int) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=examples,
        deadline=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def run(case: Any) -> None:
        with _LOCK:
            _COUNTS[label] = _COUNTS.get(label, 0) + 1
        case.headers = {**(case.headers or {}), **AUTH}  # the admin key; predictions are open
        response = case.call_and_validate(checks=[not_a_server_error, response_schema_conformance])
        with _LOCK:
            key = str(response.status_code)
            _STATUSES[key] = _STATUSES.get(key, 0) + 1

    run()


@pytest.mark.timeout(900)
@pytest.mark.parametrize(("method", "path"), _operations())
def test_every_operation(fuzz_schema: Any, method: str, path: str) -> None:
    """Half the budget on invalid requests, half on valid ones; all of it on valid ones when
    nothing can be made invalid (no parameters, or only string path parameters)."""
    operation = fuzz_schema[path][method]
    label = f"{method} {path}"
    positive = EXAMPLES
    try:
        _run(operation, label, GenerationMode.NEGATIVE, EXAMPLES // 2)
        positive = EXAMPLES - EXAMPLES // 2
    except Unsatisfiable:
        pass
    _run(operation, label, GenerationMode.POSITIVE, positive)
