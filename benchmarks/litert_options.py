"""LiteRT's options for each image version: interpreter threads and XNNPACK, at batch 1 and 16.

``python -m benchmarks.litert_options [--models-dir models] [--versions mnist/2,mnist/3]`` loads
each finished image version's ``model.tflite`` in the service's own runtime
(``service.runtimes.litert.TFLiteRuntime``) once per option set, and times ``predict`` on real
test images of its data set. The option sets are measured in alternating rounds (every other
round in reverse order), so a drift of the shared machine's speed hits them alike; each figure is
the median round. Per option set it reports µs per image (wall clock) and the CPU time per image
of the whole process (every interpreter thread): two threads can only cut the wall clock when a
second core is free, and what they cost then is the CPU column.

The process is not pinned: two interpreter threads need two cores. The service's benchmark
(``benchmarks.run``) pins each server to one core. Results: ``benchmarks/results/
litert_options.{md,json}``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from benchmarks.payloads import finished_versions, mnist_images
from benchmarks.report import markdown_table

RESULTS_DIR = Path(__file__).resolve().parent / "results"
IMAGE_MODELS = ("mnist", "fashion_mnist")
BATCHES = (1, 16)


@dataclass(frozen=True)
class Options:
    threads: int
    xnnpack: bool

    @property
    def label(self) -> str:
        plural = "s" if self.threads > 1 else ""
        return f"{self.threads} thread{plural}, XNNPACK {'on' if self.xnnpack else 'off'}"


OPTION_SETS = (Options(1, True), Options(2, True), Options(1, False), Options(2, False))


def timed(fn: Callable[[], object], budget_s: float) -> tuple[float, float]:
    """(wall s, process CPU s) per call of ``fn``, over a loop of about ``budget_s``."""
    fn()
    start = time.perf_counter()
    fn()
    once = max(time.perf_counter() - start, 1e-7)
    loops = max(3, int(budget_s / once))
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(loops):
        fn()
    return (time.perf_counter() - wall) / loops, (time.process_time() - cpu) / loops


def measure_version(
    name: str, version: int, path: Path, metadata: dict[str, Any], rounds: int, budget_s: float
) -> list[dict[str, Any]]:
    from service.runtimes.litert import TFLiteRuntime

    images = mnist_images(16, "fashion_mnist" if name == "fashion_mnist" else "mnist")
    images = images.reshape(len(images), *metadata["input"]["shape"]).astype(np.float32)
    runtimes = {}
    for options in OPTION_SETS:
        runtime = TFLiteRuntime(path, metadata, threads=options.threads, xnnpack=options.xnnpack)
        runtime.load()
        runtimes[options] = runtime
    reference = runtimes[OPTION_SETS[0]].predict(images)
    samples: dict[tuple[Options, int], list[tuple[float, float]]] = {}
    for i in range(rounds):
        order = OPTION_SETS if i % 2 == 0 else OPTION_SETS[::-1]
        for options in order:
            runtime = runtimes[options]
            for batch in BATCHES:
                x = np.ascontiguousarray(images[:batch])
                per_call = timed(lambda r=runtime, x=x: r.predict(x), budget_s)  # type: ignore[misc]
                samples.setdefault((options, batch), []).append(per_call)
    rows = []
    for options in OPTION_SETS:
        out = runtimes[options].predict(images)
        row: dict[str, Any] = {
            "model": name,
            "version": version,
            "recipe": str((metadata.get("recipe") or {}).get("name", "?")),
            "threads": options.threads,
            "xnnpack": options.xnnpack,
            "max_abs_diff": float(np.abs(out - reference).max()),
        }
        for batch in BATCHES:
            runs = samples[(options, batch)]
            row[f"us_per_image_b{batch}"] = statistics.median(w for w, _ in runs) * 1e6 / batch
            row[f"cpu_us_per_image_b{batch}"] = statistics.median(c for _, c in runs) * 1e6 / batch
            row[f"rounds_us_b{batch}"] = [round(w * 1e6 / batch, 1) for w, _ in runs]
        rows.append(row)
        print(
            f"  {name} v{version} {options.label:26} "
            f"b1 {row['us_per_image_b1']:8.1f} us  b16 {row['us_per_image_b16']:8.1f} us/img",
            flush=True,
        )
    for runtime in runtimes.values():
        runtime.unload()
    return rows


def render(data: dict[str, Any]) -> str:
    table = [
        [
            f"{r['model']} v{r['version']} ({r['recipe']})",
            str(r["threads"]),
            "on" if r["xnnpack"] else "off",
            f"{r['us_per_image_b1']:,.1f}",
            f"{r['cpu_us_per_image_b1']:,.1f}",
            f"{r['us_per_image_b16']:,.1f}",
            f"{r['cpu_us_per_image_b16']:,.1f}",
            f"{r['max_abs_diff']:.1e}",
        ]
        for r in data["rows"]
    ]
    headers = [
        "version",
        "threads",
        "XNNPACK",
        "batch 1, us/img",
        "batch 1, CPU us/img",
        "batch 16, us/img",
        "batch 16, CPU us/img",
        "max diff vs 1 thread + XNNPACK",
    ]
    return (
        "### LiteRT options per image version (in-process, not pinned)\n\n"
        f"{data['rounds']} alternating rounds, median; load average at the start "
        f"{', '.join(str(x) for x in data['loadavg_at_start'])}, at the end "
        f"{', '.join(str(x) for x in data['loadavg_at_end'])}.\n\n"
        + markdown_table(headers, table)
        + "\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.litert_options", description=__doc__
    )
    parser.add_argument(
        "--models-dir", type=Path, default=Path(os.environ.get("SERVE_MODELS_DIR", "models"))
    )
    parser.add_argument(
        "--versions",
        default="",
        help="comma-separated name/version pairs (default: every finished image version)",
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--budget", type=float, default=0.2, help="seconds per timed loop")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    wanted = {tuple(item.split("/")) for item in args.versions.split(",") if item}
    models_dir = args.models_dir.resolve()
    started = [round(x, 2) for x in os.getloadavg()]
    rows: list[dict[str, Any]] = []
    for name in IMAGE_MODELS:
        for info in finished_versions(models_dir, name):
            if wanted and (name, str(info.version)) not in wanted:
                continue
            path = models_dir / name / str(info.version)
            if not (path / "model.tflite").is_file():
                continue
            rows += measure_version(
                name, info.version, path, info.metadata, args.rounds, args.budget
            )
    data = {
        "models_dir": str(models_dir),
        "rounds": args.rounds,
        "loadavg_at_start": started,
        "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
        "rows": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "litert_options.json").write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2))
    markdown = render(data)
    (args.out / "litert_options.md").write_text(markdown)
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
