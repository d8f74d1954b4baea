"""Numbers on paper: how well the service reads several digits in one photo.

``python -m benchmarks.numbers --models-dir DIR`` renders ``--count`` numbers of 2 to 5 real MNIST
*test* digits written side by side (spacing varied, some touching) on photographed paper (a
lighting gradient, grain, tinted paper; PNG or JPEG), sends each to
``POST /models/mnist/versions/{v}/predict?digits=many`` of the service started in-process on DIR
(lifespan run, real models), and writes ``benchmarks/results/numbers.json`` and ``numbers.md``:
per version, the share of numbers read exactly, the share with the right count of digits, and
the per-digit accuracy (over numbers whose count is right; position by position).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageFilter

RESULTS = Path(__file__).resolve().parent / "results"
SEED = 2024
DIGIT_PX = 96  # a 28x28 digit's side on the page: the 20-px digit is about 70 px tall


def render_number(
    digits: list[np.ndarray], rng: np.random.Generator, fmt: str = "PNG", gap: float | None = None
) -> tuple[bytes, list[tuple[int, int, int, int]]]:
    """MNIST digits (28x28, 0-255 or 0-1) written left to right on photographed paper, encoded
    as ``fmt``; with each digit's ink box ``(x, y, width, height)`` in the picture's pixels.

    ``gap`` is the space between the digits' ink in shares of the digit size (default: random
    from slightly overlapping to wide)."""
    masks = []
    for d in digits:
        a = np.asarray(d, np.float32)
        a = a / 255.0 if a.max() > 1.0 else a
        img = Image.fromarray(np.round(np.clip(a, 0, 1) * 255).astype(np.uint8))
        big = np.asarray(img.resize((DIGIT_PX, DIGIT_PX), Image.Resampling.BICUBIC), np.float32)
        big = np.clip(big / 255.0 * 1.15, 0.0, 1.0)
        cols = np.flatnonzero(big.max(axis=0) > 0.2)
        masks.append(big[:, cols[0] : cols[-1] + 1])
    spacing = [
        round((gap if gap is not None else float(rng.uniform(0.05, 0.5))) * DIGIT_PX)
        for _ in masks[1:]
    ]
    margin_x, margin_y = int(rng.integers(40, 120)), int(rng.integers(40, 100))
    width = sum(m.shape[1] for m in masks) + sum(spacing) + 2 * margin_x
    height = DIGIT_PX + 2 * margin_y
    ink = np.zeros((height, width), np.float32)
    boxes: list[tuple[int, int, int, int]] = []
    x = margin_x
    for i, m in enumerate(masks):
        dy = margin_y + int(rng.integers(-8, 9))
        region = ink[dy : dy + DIGIT_PX, x : x + m.shape[1]]
        np.maximum(region, m, out=region)
        rows = np.flatnonzero(m.max(axis=1) > 0.2)
        boxes.append((x, dy + int(rows[0]), m.shape[1], int(rows[-1] - rows[0] + 1)))
        x += m.shape[1] + (spacing[i] if i < len(spacing) else 0)
    paper = float(rng.uniform(200, 250))
    ys = np.linspace(-0.5, 0.5, height, dtype=np.float32)[:, None]
    xs = np.linspace(-0.5, 0.5, width, dtype=np.float32)[None, :]
    angle = rng.uniform(0, 2 * np.pi)
    light = 1.0 - float(rng.uniform(0.1, 0.35)) * (0.5 + np.cos(angle) * ys + np.sin(angle) * xs)
    pen = float(rng.uniform(20, 80))
    page = (paper * (1 - ink) + pen * ink) * light
    tint = rng.uniform(-12, 4, 3).astype(np.float32)
    rgb = page[..., None] + tint + rng.normal(0, float(rng.uniform(1, 4)), (height, width, 1))
    img = Image.fromarray(np.clip(np.round(rgb), 0, 255).astype(np.uint8), "RGB")
    img = img.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.3, 1.2))))
    buffer = io.BytesIO()
    img.save(buffer, fmt, **({"quality": int(rng.integers(70, 95))} if fmt == "JPEG" else {}))
    return buffer.getvalue(), boxes


def _numbers(count: int) -> list[tuple[bytes, str]]:
    from training.datasets import load_images

    mnist = load_images("mnist")
    x, y = np.asarray(mnist.x_test), np.asarray(mnist.y_test).astype(int)
    rng = np.random.default_rng(SEED)
    order = rng.permutation(len(x))
    out, k = [], 0
    for i in range(count):
        n = int(rng.integers(2, 6))
        picks = order[k : k + n]
        k += n
        data, _ = render_number([x[j] for j in picks], rng, "JPEG" if i % 2 else "PNG")
        out.append((data, "".join(str(int(y[j])) for j in picks)))
    return out


async def _measure(models_dir: Path, count: int) -> dict[str, Any]:
    import httpx

    os.environ["SERVE_MODELS_DIR"] = str(models_dir)
    from service.app import create_app
    from service.settings import Settings

    app = create_app(Settings(models_dir=models_dir, version_policy="all"))
    numbers = _numbers(count)
    results: dict[str, Any] = {}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://numbers") as client:
            listing = (await client.get("/models/mnist")).json()
            for entry in listing["versions"]:
                if entry["state"] != "available":
                    continue
                v = entry["version"]
                exact = count_ok = digits_ok = digits_seen = blank = 0
                start = time.perf_counter()
                for data, truth in numbers:
                    ctype = "image/jpeg" if data[:3] == b"\xff\xd8\xff" else "image/png"
                    r = await client.post(
                        f"/models/mnist/versions/{v}/predict?digits=many",
                        content=data,
                        headers={"Content-Type": ctype},
                    )
                    if r.status_code == 422:
                        blank += 1
                        continue
                    r.raise_for_status()
                    read = r.json()["number"]
                    exact += read == truth
                    if len(read) == len(truth):
                        count_ok += 1
                        digits_seen += len(truth)
                        digits_ok += sum(a == b for a, b in zip(read, truth, strict=True))
                elapsed = time.perf_counter() - start
                results[str(v)] = {
                    "numbers": len(numbers),
                    "exact_number_accuracy": round(exact / len(numbers), 4),
                    "right_count": round(count_ok / len(numbers), 4),
                    "per_digit_accuracy": round(digits_ok / max(digits_seen, 1), 4),
                    "no_digit_found": blank,
                    "ms_per_number": round(1000 * elapsed / len(numbers), 2),
                }
    return results


def _markdown(report: dict[str, Any]) -> str:
    lines = [
        "# Numbers: several digits in one photo",
        "",
        f"`python -m benchmarks.numbers --models-dir DIR --count {report['count']}`: "
        f"{report['count']} numbers of 2-5 real MNIST test digits side by side on photographed "
        "paper (gradient, grain, tint; half PNG, half JPEG), read through "
        "`POST /models/mnist/versions/{v}/predict?digits=many`.",
        "",
        "Per-digit accuracy is position by position over the numbers split into the right count.",
        "",
        "| version | exact number | right count | per digit | no digit found | ms / number |",
        "|---|---|---|---|---|---|",
    ]
    for v, r in report["versions"].items():
        lines.append(
            f"| {v} | {r['exact_number_accuracy']:.1%} | {r['right_count']:.1%} | "
            f"{r['per_digit_accuracy']:.1%} | {r['no_digit_found']} | {r['ms_per_number']} |"
        )
    lines += ["", f"Measured {report['created_at']} on {report['machine']}.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models-dir", type=Path, default=Path("models"))
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    versions = asyncio.run(_measure(args.models_dir, args.count))
    if not versions:
        print(f"no available mnist version in {args.models_dir}", file=sys.stderr)
        return 1
    report = {
        "count": args.count,
        "seed": SEED,
        "versions": versions,
        "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}",
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "numbers.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "numbers.md").write_text(_markdown(report))
    print(_markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
