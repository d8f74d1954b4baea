"""Numbers on paper: how well the service reads several digits in one photo.

``python -m benchmarks.numbers --models-dir DIR`` renders ``--count`` numbers of 2 to 5 real MNIST
*test* digits written side by side (spacing varied, some touching) on photographed paper (a
lighting gradient, grain, tinted paper; PNG or JPEG), and ``--per-scene`` more in each of the
:data:`SCENES` users photograph that the plain ones do not hold (a time with its colon, digits
that touch, a number small in a phone photo), sends each to
``POST /models/mnist/versions/{v}/predict?digits=many`` of the service started in-process on DIR
(lifespan run, real models), and writes ``benchmarks/results/numbers.json`` and ``numbers.md``:
per version and scene, the share of numbers read exactly, the share with the right count of
digits, and the per-digit accuracy (over numbers whose count is right; position by position).
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
DOT_PX = 10  # a colon's dot
PHONE = (3000, 4000)  # a phone photo of a page, portrait
# The scenes beside the plain numbers: what each asks of render_number
SCENES: dict[str, dict[str, Any]] = {
    "time": {"colon_after": 2},  # "19:50": four digits, a colon after the second
    "touching": {"gap": (-0.08, 0.0)},
    "phone": {"canvas": PHONE},  # the number across a fifth of the page's width
}


def render_number(
    digits: list[np.ndarray],
    rng: np.random.Generator,
    fmt: str = "PNG",
    gap: float | None = None,
    *,
    colon_after: int | None = None,
    canvas: tuple[int, int] | None = None,
) -> tuple[bytes, list[tuple[int, int, int, int]]]:
    """MNIST digits (28x28, 0-255 or 0-1) written left to right on photographed paper, encoded
    as ``fmt``; with each digit's ink box ``(x, y, width, height)`` in the picture's pixels.

    ``gap`` is the space between the digits' ink in shares of the digit size (default: random
    from slightly overlapping to wide). ``colon_after``: a colon (two dots, one above the other)
    between that many digits and the rest, as a time is written. ``canvas``: the picture's
    ``(width, height)``, the number written across a fifth of its width or so, somewhere in its
    middle (a phone photo of a page)."""
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
    colon = None
    if colon_after is not None:  # room for the colon: its dot and an eighth of a box each side
        colon = colon_after - 1, spacing[colon_after - 1]
        spacing[colon_after - 1] += DOT_PX + DIGIT_PX // 4
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
        if colon is not None and i == colon[0]:
            left = x + m.shape[1] + colon[1] // 2 + DIGIT_PX // 8
            dot = int(rng.integers(DOT_PX * 3 // 4, DOT_PX * 3 // 2))
            # one in the upper part of the digits' box, one in the lower, as written
            upper = margin_y + round(float(rng.uniform(0.2, 0.4)) * DIGIT_PX)
            lower = margin_y + round(float(rng.uniform(0.6, 0.8)) * DIGIT_PX)
            for top in (upper, lower):
                ink[top : top + dot, left : left + dot] = 1.0
        x += m.shape[1] + (spacing[i] if i < len(spacing) else 0)
    if canvas is not None:
        ink, boxes = _on_canvas(ink, boxes, canvas, rng)
        height, width = ink.shape
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


def _on_canvas(
    ink: np.ndarray,
    boxes: list[tuple[int, int, int, int]],
    canvas: tuple[int, int],
    rng: np.random.Generator,
) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """The number's ink scaled to span 18-25% of the canvas's width, placed around its middle."""
    width, height = canvas
    span = boxes[-1][0] + boxes[-1][2] - boxes[0][0]
    scale = min(float(rng.uniform(0.18, 0.25)) * width / span, 0.5 * width / ink.shape[1])
    w, h = max(1, round(ink.shape[1] * scale)), max(1, round(ink.shape[0] * scale))
    scaled = np.asarray(Image.fromarray(ink, "F").resize((w, h), Image.Resampling.BILINEAR))
    x0 = int(rng.integers(width // 4, max(width // 4 + 1, width - w - width // 4)))
    y0 = int(rng.integers(height // 4, max(height // 4 + 1, height - h - height // 4)))
    out = np.zeros((height, width), np.float32)
    out[y0 : y0 + h, x0 : x0 + w] = np.clip(scaled, 0.0, 1.0)
    moved = [
        (x0 + round(x * scale), y0 + round(y * scale), round(bw * scale), round(bh * scale))
        for x, y, bw, bh in boxes
    ]
    return out, moved


def _numbers(count: int) -> list[tuple[bytes, str]]:
    """``count`` plain numbers, from the whole test set."""
    x, y = _test_digits()
    rng = np.random.default_rng(SEED)
    return _written(x, y, rng, rng.permutation(len(x)), count, {})


def _scene_numbers(scene: str, count: int) -> list[tuple[bytes, str]]:
    """``count`` numbers of ``scene`` (see :data:`SCENES`), from the test set's second half (the
    plain numbers draw from all of it; these do not repeat one another)."""
    x, y = _test_digits()
    rng = np.random.default_rng([SEED, list(SCENES).index(scene)])
    return _written(x, y, rng, 5000 + rng.permutation(len(x) - 5000), count, SCENES[scene])


def _test_digits() -> tuple[np.ndarray, np.ndarray]:
    from training.datasets import load_images

    mnist = load_images("mnist")
    return np.asarray(mnist.x_test), np.asarray(mnist.y_test).astype(int)


def _written(
    x: np.ndarray,
    y: np.ndarray,
    rng: np.random.Generator,
    order: np.ndarray,
    count: int,
    scene: dict[str, Any],
) -> list[tuple[bytes, str]]:
    """``count`` pictures of numbers of the digits ``x[order]`` in turn, each with its truth:
    2-5 digits (4 for a time), half PNG and half JPEG (a phone photo JPEG), written as
    :func:`render_number` does with ``scene``'s options (a gap range drawn per number)."""
    out, k = [], 0
    for i in range(count):
        options = dict(scene)
        n = 4 if "colon_after" in options else int(rng.integers(2, 6))
        picks = order[k : k + n]
        k += n
        if isinstance(options.get("gap"), tuple):
            options["gap"] = float(rng.uniform(*options["gap"]))
        fmt = "JPEG" if i % 2 or "canvas" in options else "PNG"
        data, _ = render_number([x[j] for j in picks], rng, fmt, **options)
        out.append((data, "".join(str(int(y[j])) for j in picks)))
    return out


async def _measure(models_dir: Path, count: int, per_scene: int) -> dict[str, Any]:
    import httpx

    os.environ["SERVE_MODELS_DIR"] = str(models_dir)
    from service.app import create_app
    from service.settings import Settings

    app = create_app(Settings(models_dir=models_dir, version_policy="all"))
    sets = {"plain": _numbers(count)} if count else {}
    sets.update({scene: _scene_numbers(scene, per_scene) for scene in SCENES if per_scene})
    results: dict[str, Any] = {}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://numbers") as client:
            listing = (await client.get("/models/mnist")).json()
            for entry in listing["versions"]:
                if entry["state"] == "available":
                    v = entry["version"]
                    results[str(v)] = {
                        scene: await _read(client, v, numbers) for scene, numbers in sets.items()
                    }
    return results


async def _read(client: Any, version: int, numbers: list[tuple[bytes, str]]) -> dict[str, Any]:
    """One version's reading of ``numbers``: exact, right count, per digit, blank, time."""
    exact = count_ok = digits_ok = digits_seen = blank = 0
    start = time.perf_counter()
    for data, truth in numbers:
        ctype = "image/jpeg" if data[:3] == b"\xff\xd8\xff" else "image/png"
        r = await client.post(
            f"/models/mnist/versions/{version}/predict?digits=many",
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
    return {
        "numbers": len(numbers),
        "exact_number_accuracy": round(exact / len(numbers), 4),
        "right_count": round(count_ok / len(numbers), 4),
        "per_digit_accuracy": round(digits_ok / max(digits_seen, 1), 4),
        "no_digit_found": blank,
        "ms_per_number": round(1000 * elapsed / len(numbers), 2),
    }


def _markdown(report: dict[str, Any]) -> str:
    lines = [
        "# Numbers: several digits in one photo",
        "",
        f"`python -m benchmarks.numbers --models-dir DIR --count {report['count']} "
        f"--per-scene {report['per_scene']}`: {report['count']} numbers of 2-5 real MNIST test "
        "digits side by side on photographed paper (gradient, grain, tint; half PNG, half JPEG), "
        f"and {report['per_scene']} in each other scene: `time`, four digits with a colon after "
        'the second ("19:50"; the number is its digits); `touching`, no gap or a slight '
        "overlap between digits; `phone`, a 3000x4000 JPEG with the number across 18-25% of its "
        "width. Read through `POST /models/mnist/versions/{v}/predict?digits=many`.",
        "",
        "Per-digit accuracy is position by position over the numbers split into the right count.",
        "",
        "| version | scene | exact number | right count | per digit | no digit found "
        "| ms / number |",
        "|---|---|---|---|---|---|---|",
    ]
    for v, scenes in report["versions"].items():
        for scene, r in scenes.items():
            lines.append(
                f"| {v} | {scene} | {r['exact_number_accuracy']:.1%} | {r['right_count']:.1%} | "
                f"{r['per_digit_accuracy']:.1%} | {r['no_digit_found']} | {r['ms_per_number']} |"
            )
    lines += ["", f"Measured {report['created_at']} on {report['machine']}.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models-dir", type=Path, default=Path("models"))
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--per-scene", type=int, default=40)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    versions = asyncio.run(_measure(args.models_dir, args.count, args.per_scene))
    if not versions:
        print(f"no available mnist version in {args.models_dir}", file=sys.stderr)
        return 1
    report = {
        "count": args.count,
        "per_scene": args.per_scene,
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
