"""``python -m benchmarks.bad_bodies``: what a large JSON body with one bad value costs the event
loop before its 422.

A body is parsed and checked on the event loop, so while one client's body is read, every other
request waits. A valid large body of numbers takes the fast parse (simdjson into numpy); one with
a value that is no number (a string, a null, a stray list) falls back to orjson and numpy, and
its error names the value's position. This measures, in-process and single-threaded, the time
from the body's bytes to the 422 for each dialect's decoding, with the bad value at the very end
(the worst place), beside the same body without it. Results: ``benchmarks/results/
bad_bodies.{json,md}``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from benchmarks.report import markdown_table
from service.codecs import tfserving, v2
from service.errors import ServeError
from service.inputs.arrays import images_from_json

RESULTS_DIR = Path(__file__).resolve().parent / "results"
BAD_VALUES: dict[str, Any] = {
    "none (valid)": 0.5,
    "a string": "x",
    "a number as a string": "0.5",
    "null": None,
    "a list": [0.5],
}


def _tfserving(body: bytes) -> None:
    tfserving.input_array(tfserving.decode_predict_request(body), "x", (28, 28))


def _own(body: bytes) -> None:
    images_from_json(orjson.loads(body)["instances"], side=28, max_instances=1 << 20)


def _v2(body: bytes) -> None:
    v2.decode_infer_request(body, None)  # its tensors come out as arrays, checked


def bodies(images: int, bad: Any) -> dict[str, bytes]:
    """The same pixels in each dialect, ``bad`` as the last value."""
    pixels = np.random.default_rng(0).random((images, 28, 28)).round(4)
    nested = pixels.tolist()
    nested[-1][-1][-1] = bad
    flat = pixels.ravel().tolist()
    flat[-1] = bad
    v2_input = {"name": "x", "shape": [images, 28, 28], "datatype": "FP32", "data": flat}
    return {
        "TF Serving": orjson.dumps({"instances": nested}),
        "own API": orjson.dumps({"instances": nested}),
        "V2": orjson.dumps({"inputs": [v2_input]}),
    }


DECODERS: dict[str, Callable[[bytes], None]] = {
    "TF Serving": _tfserving,
    "own API": _own,
    "V2": _v2,
}


def measure(images: int, rounds: int) -> list[dict[str, Any]]:
    rows = []
    for kind, bad in BAD_VALUES.items():
        for dialect, body in bodies(images, bad).items():
            times, outcome = [], "ok"
            for _ in range(rounds):
                started = time.perf_counter()
                try:
                    DECODERS[dialect](body)
                except ServeError as exc:
                    outcome = f"{exc.status_code}"
                times.append(time.perf_counter() - started)
            rows.append(
                {
                    "dialect": dialect,
                    "bad value": kind,
                    "MB": round(len(body) / 1e6, 1),
                    "outcome": outcome,
                    "ms": round(1000 * statistics.median(times), 1),
                }
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bad_bodies", description=__doc__)
    parser.add_argument("--images", type=int, default=2700, help="28x28 images per body")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    rows = measure(args.images, args.rounds)
    headers = ["dialect", "bad value", "MB", "outcome", "ms"]
    table = markdown_table(headers, [[str(row[h]) for h in headers] for row in rows])
    text = (
        "# A large body with one bad value: event-loop time before its answer\n\n"
        f"`python -m benchmarks.bad_bodies --images {args.images}`: {args.images} images of "
        "28x28 per body, the bad value last; median of "
        f"{args.rounds} in-process runs (decoding and checks only, no HTTP).\n\n{table}"
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bad_bodies.json").write_bytes(orjson.dumps(rows, option=orjson.OPT_INDENT_2))
    (args.out / "bad_bodies.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
