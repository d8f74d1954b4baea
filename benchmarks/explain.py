"""Explanations on real trained models: are they right, and what do they cost?

``python -m benchmarks.explain --models-dir DIR`` starts the service in-process on DIR's ``mnist``
and ``pima`` (lifespan run, real models, the batcher's inference thread) and writes
``benchmarks/results/explain.json`` and ``explain.md``:

- **Deletion test** (MNIST, the first ``--images`` test images): each image's occlusion map for
  its true class comes from ``POST /models/mnist/explain``; removing (setting to 0) the k pixels
  with the largest attributions must lower the true-class probability more than removing k
  random pixels. Reported per k, against random pixels and, stricter, random ink pixels.
- **Shapley sums** (every Pima test row, the trainer's split): the attributions in probability
  and in log-odds must add up to the instance's value minus the background's mean value.
  Pima is served twice: as the trained version ships (its golden rows as the background), and as
  a copy with a training sample shipped the way the trainer is to write it (``background.npy``,
  ``metadata.explain``), so both backgrounds are checked and timed.
- **Speed**: p50 and p99 of one explanation, sequential requests, through the whole app over an
  in-process ASGI client, and for the explanation path alone.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
BACKGROUND_ROWS = 32
BACKGROUND_SEED = 42
DELETION_KS = (10, 20, 50, 100)
PIMA_TEST_SIZE, PIMA_SPLIT_SEED = 0.2, 42  # the trainer's split (the tutorial's random_state)


def pima_split() -> tuple[np.ndarray, np.ndarray]:
    """Pima's training and test features, split as the trainer splits them."""
    from sklearn.model_selection import train_test_split

    from training.datasets import load_pima

    pima = load_pima()
    x_train, x_test = train_test_split(
        np.asarray(pima.features, np.float32),
        test_size=PIMA_TEST_SIZE,
        stratify=pima.outcome,
        random_state=PIMA_SPLIT_SEED,
    )
    return x_train, x_test


def mnist_test() -> tuple[np.ndarray, np.ndarray]:
    """MNIST's test images in [0, 1] and their labels."""
    from training.datasets import load_mnist

    _, (x_test, y_test) = load_mnist()
    return (x_test / 255.0).astype(np.float32), y_test.astype(np.int64)


def with_background(models_dir: Path, root: Path) -> Path:
    """A repository at ``root``: mnist and pima as in ``models_dir``, plus pima version
    (latest + 1), a copy of the latest with a training sample as the trainer is to ship it."""
    for name in ("mnist", "pima"):
        latest = max(int(p.parent.name) for p in (models_dir / name).glob("*/metadata.json"))
        shutil.copytree(models_dir / name / str(latest), root / name / str(latest))
    pima_latest = max(int(p.name) for p in (root / "pima").iterdir())
    target = root / "pima" / str(pima_latest + 1)
    shutil.copytree(root / "pima" / str(pima_latest), target)
    x_train, _ = pima_split()
    rng = np.random.default_rng(BACKGROUND_SEED)
    rows = x_train[rng.choice(len(x_train), BACKGROUND_ROWS, replace=False)].astype(np.float32)
    np.save(target / "background.npy", rows)
    meta = json.loads((target / "metadata.json").read_text())
    meta["version"] = pima_latest + 1
    meta["files"]["background.npy"] = hashlib.sha256(
        (target / "background.npy").read_bytes()
    ).hexdigest()
    meta["explain"] = {
        "background": {
            "file": "background.npy",
            "rows": BACKGROUND_ROWS,
            "seed": BACKGROUND_SEED,
            "source": "training split",
        }
    }
    (target / "metadata.json").write_text(json.dumps(meta))
    return root


def percentiles(seconds: list[float]) -> dict[str, float]:
    ms = sorted(1e3 * s for s in seconds)
    return {
        "p50_ms": round(statistics.median(ms), 3),
        "p99_ms": round(ms[min(len(ms) - 1, int(0.99 * len(ms)))], 3),
        "mean_ms": round(statistics.fmean(ms), 3),
        "calls": len(ms),
    }


async def timed(call: Callable[[], Awaitable[Any]], n: int) -> list[float]:
    for _ in range(min(20, n)):  # warm-up: interpreter slots, caches
        await call()
    out = []
    for _ in range(n):
        started = time.perf_counter()
        await call()
        out.append(time.perf_counter() - started)
    return out


async def run(models_dir: Path, calls: int, images: int) -> dict[str, Any]:
    import httpx
    from asgi_lifespan import LifespanManager

    from service.app import create_app
    from service.serving import explanations
    from service.settings import Settings

    tmp = Path(tempfile.mkdtemp(prefix="explain-bench-"))
    try:
        repo = with_background(models_dir, tmp / "models")
        versions = sorted(int(p.name) for p in (repo / "pima").iterdir())
        settings = Settings(models_dir=repo, version_policy="all", log_level="warning")
        app = create_app(settings)
        async with LifespanManager(app, startup_timeout=120) as manager:
            transport = httpx.ASGITransport(app=manager.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
                registry = app.state.registry
                x_mnist, y_mnist = mnist_test()
                _, x_pima = pima_split()
                report: dict[str, Any] = {
                    "deletion": await deletion_test(client, x_mnist[:images], y_mnist),
                    "shapley": {},
                    "speed": {},
                }
                for v in versions:
                    report["shapley"][f"pima v{v}"] = await shapley_sums(client, v, x_pima)

                image = x_mnist[0]
                mv = registry.resolve("mnist", None)
                cases: dict[str, tuple[str, dict[str, Any], Any, np.ndarray]] = {
                    "mnist (occlusion)": (
                        "/models/mnist/explain",
                        {"instances": [image.tolist()]},
                        mv,
                        image[None],
                    ),
                }
                for v in versions:
                    mvp = registry.resolve("pima", str(v))
                    label = f"pima v{v} (exact Shapley, {mvp.task.background_source})"
                    row = x_pima[0]
                    body = {"instances": [row.tolist()]}
                    cases[label] = (f"/models/pima/versions/{v}/explain", body, mvp, row[None])
                for label, (path, body, version, x) in cases.items():
                    content = json.dumps(body).encode()

                    async def http_call(path: str = path, content: bytes = content) -> None:
                        r = await client.post(
                            path, content=content, headers={"content-type": "application/json"}
                        )
                        r.raise_for_status()

                    async def path_call(version: Any = version, x: np.ndarray = x) -> None:
                        await explanations.explain(version, x)

                    report["speed"][label] = {
                        "http": percentiles(await timed(http_call, calls)),
                        "explain_path": percentiles(await timed(path_call, calls)),
                    }
        return report
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


async def deletion_test(client: Any, x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    maps = []
    for i, image in enumerate(x):
        r = await client.post(
            "/models/mnist/explain", json={"instances": [image.tolist()], "target": int(y[i])}
        )
        r.raise_for_status()
        maps.append(np.asarray(r.json()["explanations"][0]["attributions"], np.float32))
    attributions = np.stack(maps).reshape(len(x), -1)
    flat = x.reshape(len(x), -1)
    base = await probabilities(client, flat, y)
    results: dict[str, Any] = {"images": len(x), "per_k": {}}
    for k in DELETION_KS:
        top = np.argsort(-attributions, axis=1, kind="stable")[:, :k]
        rand = np.stack([rng.choice(flat.shape[1], k, replace=False) for _ in flat])
        ink_rand = []
        for row in flat:
            ink = np.flatnonzero(row > 0)
            ink_rand.append(rng.choice(ink, min(k, len(ink)), replace=False))
        drops = {}
        for name, chosen in (("top", top), ("random", rand)):
            removed = flat.copy()
            np.put_along_axis(removed, chosen, 0.0, axis=1)
            drops[name] = base - await probabilities(client, removed, y)
        removed = flat.copy()
        for j, idx in enumerate(ink_rand):
            removed[j, idx] = 0.0
        drops["random_ink"] = base - await probabilities(client, removed, y)
        results["per_k"][str(k)] = {
            "beats_random": round(float((drops["top"] > drops["random"]).mean()), 4),
            "beats_random_ink": round(float((drops["top"] > drops["random_ink"]).mean()), 4),
            "mean_drop_top": round(float(drops["top"].mean()), 4),
            "mean_drop_random": round(float(drops["random"].mean()), 4),
            "mean_drop_random_ink": round(float(drops["random_ink"].mean()), 4),
        }
    return results


async def probabilities(client: Any, flat: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The true class's probability for each image, through the app's predict."""
    images = flat.reshape(len(flat), 28, 28)
    r = await client.post("/v1/models/mnist:predict", json={"instances": images.tolist()})
    r.raise_for_status()
    probs = np.asarray(r.json()["predictions"], np.float64)
    return probs[np.arange(len(y[: len(flat)])), y[: len(flat)]]  # type: ignore[no-any-return]


async def shapley_sums(client: Any, version: int, x: np.ndarray) -> dict[str, Any]:
    worst_p = worst_l = worst_pred = 0.0
    background = ""
    for start in range(0, len(x), 16):
        rows = x[start : start + 16]
        r = await client.post(
            f"/models/pima/versions/{version}/explain", json={"instances": rows.tolist()}
        )
        r.raise_for_status()
        body = r.json()
        background = body["background"]
        pred = await client.post(
            f"/models/pima/versions/{version}/predict", json={"instances": rows.tolist()}
        )
        served = [p["probability"] for p in pred.json()["predictions"]]
        for item, p in zip(body["explanations"], served, strict=True):
            phi_p = sum(a["probability"] for a in item["attributions"])
            phi_l = sum(a["log_odds"] for a in item["attributions"])
            worst_p = max(worst_p, abs(phi_p - (item["probability"] - item["base"]["probability"])))
            worst_l = max(worst_l, abs(phi_l - (item["log_odds"] - item["base"]["log_odds"])))
            worst_pred = max(worst_pred, abs(item["probability"] - p))
    return {
        "rows": len(x),
        "background": background,
        "max_sum_error_probability": worst_p,
        "max_sum_error_log_odds": worst_l,
        "max_diff_explained_vs_predicted_probability": worst_pred,
    }


def markdown(report: dict[str, Any]) -> str:
    d = report["deletion"]
    lines = [
        "# Explanations on the trained tutorial models",
        "",
        f"{report['created_at']} · {report['machine']} · `{report['command']}`",
        "",
        f"## Deletion test (MNIST, first {d['images']} test images, true class)",
        "",
        "Share of images where removing the k top-attributed pixels lowers the true-class "
        "probability more than removing k random pixels (random ink pixels: only pixels with "
        "ink, a stricter baseline).",
        "",
        "| k | beats random | beats random ink | mean drop, top | random | random ink |",
        "|---|---|---|---|---|---|",
    ]
    for k, r in d["per_k"].items():
        lines.append(
            f"| {k} | {r['beats_random']:.1%} | {r['beats_random_ink']:.1%} | "
            f"{r['mean_drop_top']:.4f} | {r['mean_drop_random']:.4f} | "
            f"{r['mean_drop_random_ink']:.4f} |"
        )
    lines += [
        "",
        "## Shapley sums (Pima, every test row)",
        "",
        "| version | background | rows | max error, probability | max error, log-odds | "
        "explained vs predicted P |",
        "|---|---|---|---|---|---|",
    ]
    for v, r in report["shapley"].items():
        lines.append(
            f"| {v} | {r['background']} | {r['rows']} | {r['max_sum_error_probability']:.2e} | "
            f"{r['max_sum_error_log_odds']:.2e} | "
            f"{r['max_diff_explained_vs_predicted_probability']:.2e} |"
        )
    lines += [
        "",
        "## Speed (one explanation per request, sequential)",
        "",
        "| explanation | HTTP p50 ms | HTTP p99 ms | explain path p50 ms | explain path p99 ms |",
        "|---|---|---|---|---|",
    ]
    for label, r in report["speed"].items():
        lines.append(
            f"| {label} | {r['http']['p50_ms']:.2f} | {r['http']['p99_ms']:.2f} | "
            f"{r['explain_path']['p50_ms']:.2f} | {r['explain_path']['p99_ms']:.2f} |"
        )
    lines += [
        "",
        "HTTP: the whole app (edge, route table, decoding, JSON answer) through an in-process "
        "ASGI client, whose own cost is included. Explain path: `serving.explanations.explain` "
        "alone (validation, perturbed batch, batcher and inference thread, reading the outputs).",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models-dir", type=Path, default=Path("models"))
    parser.add_argument("--calls", type=int, default=300, help="timed calls per explanation")
    parser.add_argument("--images", type=int, default=500, help="images in the deletion test")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    report = asyncio.run(run(args.models_dir, args.calls, args.images))
    report["created_at"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    report["machine"] = (
        f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    report["command"] = " ".join(["python -m benchmarks.explain", *(argv or sys.argv[1:])])
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "explain.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "explain.md").write_text(markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
