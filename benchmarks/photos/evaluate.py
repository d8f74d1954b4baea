"""Accuracy of the image models on the photo-and-drawing set, per preprocessing and condition.

``python -m benchmarks.photos.evaluate --models-dir DIR [--preprocess current,baseline,prototype]
[--split dev|holdout|all]``

Every picture goes, in this process, through decoding + a preprocessing + the version's
``model.tflite`` (LiteRT, as the service runs it):

- ``current``: the service's own upload path (``decode_image`` with the version's framing),
  imported from wherever it lives now; a picture it refuses as blank counts as judged blank;
- ``baseline``: a plain MNIST-style pipeline: grey, invert when the page is light, normalise to
  [0, 1], crop to pixels above 0.5, fit the longer side to 20 px (28 for items), paste by the
  centre of mass (the box centre for items);
- ``prototype``: :mod:`benchmarks.photos.prototype`.

Digit models (framing ``digit``) see the ``digit`` subset, each digit of the ``multi`` subset
cropped at its labelled box (plus a 15% margin), and the ``ood`` pages; item models see
``fashion`` and ``ood``. A readable picture judged blank counts as wrong. For ``ood`` pages the
report gives the share each preprocessing flags as "no ink" (higher is better).

Writes ``benchmarks/results/photos.{md,json}``.
"""

from __future__ import annotations

import argparse
import importlib
import io
import json
import os
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
from PIL import Image

from benchmarks.photos import prototype
from benchmarks.photos.generate import DEFAULT_OUT

RESULTS = Path(__file__).resolve().parents[1] / "results"
METHODS = ("current", "baseline", "prototype")
MAX_PIXELS = 50_000_000
Prep = Callable[[bytes, str], "np.ndarray | None"]


# ------------------------------------------------------------------ preprocessings


def _service_decoder() -> tuple[Callable[..., np.ndarray], type[Exception], str]:
    """The service's upload decoding and its "no ink" exception, wherever they live."""
    for package in ("service.inputs", "service.decoding"):
        try:
            images = importlib.import_module(f"{package}.images")
            pre = importlib.import_module(f"{package}.preprocess")
        except ImportError:
            continue
        blank = getattr(pre, "NoInkFound", None) or getattr(images, "NoInkFound", None)
        return images.decode_image, blank or _Never, package
    raise ImportError("no service.inputs.images or service.decoding.images to import")


class _Never(Exception):
    pass


def current_method() -> tuple[Prep, str]:
    decode_image, blank, where = _service_decoder()

    def run(data: bytes, framing: str) -> np.ndarray | None:
        try:
            out = decode_image(data, max_pixels=MAX_PIXELS, fit=framing)
        except blank:
            return None
        return np.asarray(out, np.float32)

    return run, where


def baseline(data: bytes, framing: str) -> np.ndarray | None:
    """The plain MNIST-style pipeline the issue compares with (no lighting model at all)."""
    img = Image.open(io.BytesIO(data))
    if "A" in img.mode:  # transparent strokes: composite on white, as a viewer shows them
        ground = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(ground, img.convert("RGBA"))
    grey = np.asarray(img.convert("L"), np.float32)
    if float(np.median(grey)) > 127:
        grey = 255.0 - grey
    lo, hi = float(grey.min()), float(grey.max())
    if hi - lo < 8:
        return None
    x = (grey - lo) / (hi - lo)
    ys, xs = np.nonzero(x > 0.5)
    if ys.size == 0:
        return None
    x = x[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    side = 20 if framing == "digit" else 28
    s = side / max(x.shape)
    size = (max(1, round(x.shape[1] * s)), max(1, round(x.shape[0] * s)))
    small = np.asarray(Image.fromarray(x).resize(size, Image.Resampling.LANCZOS), np.float32)
    small = np.clip(small, 0, 1)
    out = np.zeros((28, 28), np.float32)
    h, w = small.shape
    if framing == "digit":
        m = float(small.sum()) or 1.0
        cy = float(small.sum(axis=1) @ np.arange(h)) / m
        cx = float(small.sum(axis=0) @ np.arange(w)) / m
        top, left = round(14 - cy), round(14 - cx)
    else:
        top, left = (28 - h) // 2, (28 - w) // 2
    y0, y1, x0, x1 = max(top, 0), min(top + h, 28), max(left, 0), min(left + w, 28)
    out[y0:y1, x0:x1] = small[y0 - top : y1 - top, x0 - left : x1 - left]
    return out


def prototype_method(data: bytes, framing: str) -> np.ndarray | None:
    x, info = prototype.preprocess(data, framing)  # type: ignore[arg-type]
    return x if info.ink else None


# ------------------------------------------------------------------ models


def find_versions(models_dir: Path) -> list[dict[str, Any]]:
    """Finished image-classification versions with a ``model.tflite``."""
    found = []
    for meta_path in sorted(models_dir.glob("*/*/metadata.json")):
        meta = json.loads(meta_path.read_text())
        tflite = meta_path.parent / "model.tflite"
        if meta.get("task") != "image_classification" or not tflite.is_file():
            continue
        framing = meta["input"].get("framing") or ("digit" if meta["name"] == "mnist" else "item")
        found.append({"name": meta["name"], "version": int(meta["version"]),
                      "recipe": meta.get("recipe", {}).get("name", ""), "framing": framing,
                      "path": tflite})  # fmt: skip
    return sorted(found, key=lambda v: (v["name"], v["version"]))


def predict(tflite: Path, x: np.ndarray) -> np.ndarray:
    """Probabilities for a batch (n, 28, 28), LiteRT, one interpreter sized to the batch."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(tflite), num_threads=1)
    inp = interp.get_input_details()[0]
    interp.resize_tensor_input(inp["index"], [x.shape[0], *inp["shape"][1:]], strict=False)
    interp.allocate_tensors()
    interp.set_tensor(inp["index"], np.ascontiguousarray(x, np.float32))
    interp.invoke()
    return np.array(interp.get_tensor(interp.get_output_details()[0]["index"]))


# ------------------------------------------------------------------ the run


def load_manifest(data_dir: Path) -> list[dict[str, Any]]:
    path = data_dir / "manifest.jsonl"
    if not path.is_file():
        raise SystemExit(f"{path} is missing: run python -m benchmarks.photos.generate first")
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def samples(rows: list[dict[str, Any]], data_dir: Path, framing: str) -> list[dict[str, Any]]:
    """The evaluation items for one framing: (bytes, label, groups, split), multi digits cut."""
    out = []
    for r in rows:
        if r["subset"] == "ood" or (r["framing"] == framing and r["subset"] != "multi"):
            data = (data_dir / r["file"]).read_bytes()
            groups = ["all", f"src:{r['source']}", f"scene:{r['scene']}",
                      f"size:{r['size_class']}", *(f"tag:{t}" for t in r["tags"])]  # fmt: skip
            out.append({"data": data, "label": r["label"], "split": r["split"],
                        "subset": r["subset"], "groups": groups,
                        "size": r["size_class"], "file": r["file"]})  # fmt: skip
        elif r["subset"] == "multi" and framing == "digit":
            img = Image.open(data_dir / r["file"])
            img.load()
            for j, (box, label) in enumerate(zip(r["boxes"], r["labels"], strict=True)):
                x0, y0, x1, y1 = box
                m = round(0.15 * max(x1 - x0, y1 - y0))
                crop = img.crop((max(0, x0 - m), max(0, y0 - m), min(img.width, x1 + m),
                                 min(img.height, y1 + m)))  # fmt: skip
                buf = io.BytesIO()
                crop.save(buf, "PNG")
                groups = ["all", f"src:multi-{r['source']}", f"scene:{r['scene']}"]
                out.append({"data": buf.getvalue(), "label": label, "split": r["split"],
                            "subset": "multi", "groups": groups, "size": r["size_class"],
                            "file": f"{r['file']}#{j}"})  # fmt: skip
    return out


def run_method(
    fn: Prep, items: list[dict[str, Any]], framing: str
) -> tuple[list[Any], list[float]]:
    xs, times = [], []
    for it in items:
        t0 = time.perf_counter()
        try:
            x = fn(it["data"], framing)
        except Exception as exc:  # a preprocessing that crashes is wrong on that picture
            print(f"  {it['file']}: {type(exc).__name__}: {exc}", file=sys.stderr)
            x = None
        times.append(time.perf_counter() - t0)
        xs.append(x)
    return xs, times


def score(
    items: list[dict[str, Any]], xs: list[Any], probs: np.ndarray | None, split: str
) -> dict[str, Any]:
    """Per group: n, correct, judged blank (readable pictures); ood: pages flagged as no ink."""
    groups: dict[str, dict[str, int]] = defaultdict(lambda: {"n": 0, "correct": 0, "blank": 0})
    ood = {"n": 0, "flagged": 0}
    ood_kind: dict[str, dict[str, int]] = defaultdict(lambda: {"n": 0, "flagged": 0})
    k = 0
    for it, x in zip(items, xs, strict=True):
        if split != "all" and it["split"] != split:
            if x is not None:
                k += 1
            continue
        pred = None
        if x is not None:
            pred = int(np.argmax(probs[k])) if probs is not None else None
            k += 1
        if it["subset"] == "ood":
            kind = next(g for g in it["groups"] if g.startswith("src:"))[4:]
            ood["n"] += 1
            ood_kind[kind]["n"] += 1
            if x is None:
                ood["flagged"] += 1
                ood_kind[kind]["flagged"] += 1
            continue
        for g in it["groups"]:
            cell = groups[g]
            cell["n"] += 1
            cell["blank"] += x is None
            cell["correct"] += pred is not None and pred == it["label"]
    return {"groups": dict(groups), "ood": ood, "ood_kind": dict(ood_kind)}


def prototype_timing(repeats: int = 200) -> dict[str, float]:
    """Median ms of prototype.preprocess per picture size, decode excluded and included."""
    rng = np.random.default_rng(0)
    cases = {"icon 48x48 PNG": ((48, 48), "PNG"), "316x239 grey PNG": ((316, 239), "PNG"),
             "600x800 JPEG": ((600, 800), "JPEG"),
             "3000x4000 JPEG": ((3000, 4000), "JPEG")}  # fmt: skip
    out: dict[str, float] = {}
    for name, ((w, h), fmt) in cases.items():
        yy, xx = np.mgrid[0:h, 0:w]
        page = 235 - 50 * xx / w + rng.normal(0, 3, (h, w))
        cy, cx, r = h / 2, w / 2, min(h, w) / 5
        ring = np.abs(np.hypot(yy - cy, xx - cx) - r) < max(1.5, r / 8)
        page[ring] = 40
        img = Image.fromarray(np.clip(page, 0, 255).astype(np.uint8), "L")
        buf = io.BytesIO()
        img.save(buf, fmt, **({"quality": 85} if fmt == "JPEG" else {}))
        data = buf.getvalue()
        n = max(5, repeats // (20 if w > 1000 else 1))
        decoded = Image.open(io.BytesIO(data))
        decoded.load()
        t = []
        for _ in range(n):
            t0 = time.perf_counter()
            prototype.preprocess(decoded, "digit")
            t.append(time.perf_counter() - t0)
        out[f"{name}, after decode"] = 1000 * statistics.median(t)
        t = []
        for _ in range(n):
            t0 = time.perf_counter()
            prototype.preprocess(data, "digit")
            t.append(time.perf_counter() - t0)
        out[f"{name}, bytes in"] = 1000 * statistics.median(t)
    return out


def evaluate(
    models_dir: Path, data_dir: Path, methods: list[str], splits: list[str]
) -> dict[str, Any]:
    rows = load_manifest(data_dir)
    versions = find_versions(models_dir)
    if not versions:
        raise SystemExit(f"no image-classification version with model.tflite in {models_dir}")
    fns: dict[str, Prep] = {"baseline": baseline, "prototype": prototype_method}
    where = ""
    if "current" in methods:
        fns["current"], where = current_method()
    result: dict[str, Any] = {"models_dir": str(models_dir), "data_dir": str(data_dir),
                              "current_from": where, "splits": splits, "methods": methods,
                              "runs": [], "timing_ms": {}}  # fmt: skip
    for framing in sorted({v["framing"] for v in versions}):
        items = samples(rows, data_dir, framing)
        for method in methods:
            xs, times = run_method(fns[method], items, framing)
            by_size: dict[str, list[float]] = defaultdict(list)
            for it, t in zip(items, times, strict=True):
                by_size[it["size"]].append(t)
            result["timing_ms"][f"{method}/{framing}"] = {
                s: round(1000 * statistics.median(v), 3) for s, v in sorted(by_size.items())
            }
            present = [x for x in xs if x is not None]
            batch = np.stack(present) if present else np.zeros((0, 28, 28), np.float32)
            for v in (v for v in versions if v["framing"] == framing):
                probs = predict(v["path"], batch) if len(batch) else None
                for split in splits:
                    s = score(items, xs, probs, split)
                    result["runs"].append({"model": v["name"], "version": v["version"],
                                           "recipe": v["recipe"], "method": method,
                                           "split": split, **s})  # fmt: skip
                g = next(r for r in result["runs"][::-1] if r["method"] == method)["groups"]
                acc = g["all"]["correct"] / max(1, g["all"]["n"])
                print(f"{v['name']} v{v['version']} {method:9s} {splits[-1]}: {acc:.3f} "
                      f"(blank {g['all']['blank']}/{g['all']['n']})", flush=True)  # fmt: skip
    result["prototype_speed_ms"] = {k: round(v, 3) for k, v in prototype_timing().items()}
    return result


# ------------------------------------------------------------------ report


def _acc(cell: dict[str, int] | None) -> str:
    if not cell or not cell["n"]:
        return ""
    return f"{cell['correct'] / cell['n']:.3f}"


def markdown(result: dict[str, Any]) -> str:
    methods = result["methods"]
    runs = result["runs"]
    lines = ["# Photos and drawings", "",
             "Generated by `python -m benchmarks.photos.evaluate`; the set by "
             "`python -m benchmarks.photos.generate` (see `benchmarks/photos/README.md`). "
             f"Models: `{result['models_dir']}`. `current` is the service's upload path "
             f"(`{result['current_from']}`). A readable picture judged blank counts as wrong.",
             "", "## Accuracy", "",
             "| model | version | split | n | " + " | ".join(methods)
             + " | judged blank (" + " / ".join(methods) + ") |",
             "|---|---|---|---:|" + "---:|" * len(methods) + "---:|"]  # fmt: skip
    keys = sorted({(r["model"], r["version"], r["recipe"]) for r in runs})
    for model, version, recipe in keys:
        for split in result["splits"]:
            cells = {r["method"]: r for r in runs if (r["model"], r["version"], r["split"])
                     == (model, version, split)}  # fmt: skip
            alls = [cells[m]["groups"].get("all") if m in cells else None for m in methods]
            n = alls[0]["n"] if alls and alls[0] else 0
            blanks = " / ".join(str(a["blank"]) if a else "" for a in alls)
            lines.append(f"| {model} | {version} ({recipe}) | {split} | {n} | "
                         + " | ".join(f"**{_acc(a)}**" if m == "prototype" else _acc(a)
                                      for m, a in zip(methods, alls, strict=True))
                         + f" | {blanks} |")  # fmt: skip
    head = "| model | split | n | " + " | ".join(methods) + " | per kind (" + "; ".join(methods)
    lines += ["", '## Pages without a digit or item: share flagged "no ink" (higher is better)',
              "", head + ") |", "|---|---|---:|" + "---:|" * len(methods) + "---|"]  # fmt: skip
    seen = set()
    for r in runs:
        key = (r["model"], r["split"])
        if key in seen:
            continue
        seen.add(key)
        cells = {x["method"]: x for x in runs if (x["model"], x["split"], x["version"])
                 == (r["model"], r["split"], r["version"])}  # fmt: skip
        shares, kinds = [], []
        for m in methods:
            o = cells[m]["ood"] if m in cells else {"n": 0, "flagged": 0}
            shares.append(f"{o['flagged'] / max(1, o['n']):.2f}")
            ok = cells[m]["ood_kind"] if m in cells else {}
            kinds.append(", ".join(f"{k} {v['flagged']}/{v['n']}" for k, v in sorted(ok.items())))
        n = cells[methods[0]]["ood"]["n"] if methods[0] in cells else 0
        lines.append(f"| {r['model']} | {r['split']} | {n} | " + " | ".join(shares)
                     + " | " + "; ".join(kinds) + " |")  # fmt: skip
    lines += ["", "## Per condition", "",
              "Cells: " + " / ".join(methods) + " accuracy (n). `src:` source, `scene:` paper "
              "or drawing, `size:` picture size, `tag:` a degradation present.", ""]  # fmt: skip
    for model, version, recipe in keys:
        for split in result["splits"]:
            cells = {r["method"]: r for r in runs if (r["model"], r["version"], r["split"])
                     == (model, version, split)}  # fmt: skip
            if not cells:
                continue
            groups = sorted(next(iter(cells.values()))["groups"])
            lines += [f"### {model} {version} ({recipe}), {split}", "",
                      "| condition | n | " + " | ".join(methods) + " | blank |",
                      "|---|---:|" + "---:|" * len(methods) + "---:|"]  # fmt: skip
            for g in groups:
                row = [cells[m]["groups"].get(g) if m in cells else None for m in methods]
                n = row[0]["n"] if row[0] else 0
                blank = " / ".join(str(c["blank"]) if c else "" for c in row)
                lines.append(f"| {g} | {n} | " + " | ".join(_acc(c) for c in row)
                             + f" | {blank} |")  # fmt: skip
            lines.append("")
    lines += ["## Speed", "", "Median ms per picture (decode + preprocessing), by size class:", "",
              "| method / framing | " + " | ".join(("icon", "300px", "phone")) + " |",
              "|---|---:|---:|---:|"]  # fmt: skip
    for k, v in result["timing_ms"].items():
        lines.append(f"| {k} | " + " | ".join(str(v.get(s, "")) for s in
                                              ("icon", "300px", "phone")) + " |")  # fmt: skip
    lines += ["", "Prototype alone, synthetic page with a ring digit, median ms:", "",
              "| picture | ms |", "|---|---:|"]  # fmt: skip
    lines += [f"| {k} | {v} |" for k, v in result["prototype_speed_ms"].items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models-dir", type=Path, required=True)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--preprocess", default="current,baseline,prototype",
                        help="comma list of current, baseline, prototype")  # fmt: skip
    parser.add_argument("--split", default="all", choices=("dev", "holdout", "all"),
                        help="'all' reports dev and holdout separately")  # fmt: skip
    parser.add_argument("--out", type=Path, default=RESULTS / "photos")
    args = parser.parse_args(argv)
    methods = [m.strip() for m in args.preprocess.split(",") if m.strip()]
    unknown = set(methods) - set(METHODS)
    if unknown:
        parser.error(f"unknown preprocessing: {sorted(unknown)}")
    splits = ["dev", "holdout"] if args.split == "all" else [args.split]
    result = evaluate(args.models_dir, args.data_dir, methods, splits)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=1, default=str) + "\n")
    args.out.with_suffix(".md").write_text(markdown(result))
    print(f"wrote {args.out.with_suffix('.md')} and .json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
