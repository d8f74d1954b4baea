"""Accuracy and OOD scores of the image models on the photo-and-drawing set.

``python -m benchmarks.photos.evaluate --models-dir DIR [--preprocess current,baseline]
[--split dev|holdout|all]``

Every picture goes, in this process, through decoding + a preprocessing
(:mod:`benchmarks.photos.preprocessings`) + the version's ``model.tflite`` (LiteRT, as the service
runs it). Digit models (framing ``digit``) are scored on the ``digit`` and ``canvas`` subsets and
on each digit of the ``multi`` subset cut at its labelled box (plus a 15% margin); item models on
``fashion``. A readable picture judged blank counts as wrong. Pages without a digit (``ood``,
``marks``) and the other data set's photos are what the OOD score should flag
(:mod:`benchmarks.photos.ood_metrics`); for ``ood`` pages the report also gives the share judged
blank ("no ink", higher is better).

Each version is read once at the start (metadata, model bytes, OOD model), so a version published
or removed during the run does not mix into it. Writes ``benchmarks/results/photos.{md,json}``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
from PIL import Image

from benchmarks.photos import ood_metrics, preprocessings, report
from benchmarks.photos.generate import DEFAULT_OUT

RESULTS = Path(__file__).resolve().parents[1] / "results"
OWN_SUBSETS = {"digit": ("digit", "canvas"), "item": ("fashion",)}
# labelled like the own subsets, but scored apart (not in "all", not in the OOD figures), so the
# figures of the set before they were added keep their meaning
FRAMED_SUBSETS = {"digit": report.APART, "item": ()}
OTHER_SUBSETS = {"digit": ("fashion",), "item": ("digit", "canvas")}
PAGE_SUBSETS = ("ood", "marks")
SIZES = ("icon", "300px", "phone")


# ------------------------------------------------------------------ versions


def find_versions(models_dir: Path) -> list[dict[str, Any]]:
    """Finished image-classification versions with a ``model.tflite``, read into memory."""
    found = []
    for meta_path in sorted(models_dir.glob("*/*/metadata.json")):
        try:
            meta = json.loads(meta_path.read_text())
            tflite = (meta_path.parent / "model.tflite").read_bytes()
        except (OSError, ValueError):  # not finished, or removed while we looked
            continue
        if meta.get("task") != "image_classification":
            continue
        framing = meta["input"].get("framing") or ("digit" if meta["name"] == "mnist" else "item")
        found.append({"name": meta["name"], "version": int(meta["version"]),
                      "recipe": meta.get("recipe", {}).get("name", ""), "framing": framing,
                      "test_accuracy": meta.get("metrics", {}).get("accuracy"),
                      "model": tflite, "task": _task(meta, meta_path.parent)})  # fmt: skip
    return sorted(found, key=lambda v: (v["name"], v["version"]))


def _task(meta: dict[str, Any], folder: Path) -> Any:
    """The service's task for the version when it has an OOD model, else None."""
    try:
        from service.serving.tasks import Task

        task = Task.from_metadata(meta, folder)
    except Exception as exc:  # an OOD model the service cannot read: reported as missing
        print(f"  {folder}: no OOD model ({type(exc).__name__}: {exc})", file=sys.stderr)
        return None
    return task if getattr(task, "ood", None) is not None else None


def predict(model: bytes, x: np.ndarray) -> np.ndarray:
    """Probabilities for a batch (n, 28, 28), LiteRT, one interpreter sized to the batch."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=model, num_threads=1)
    inp = interp.get_input_details()[0]
    interp.resize_tensor_input(inp["index"], [x.shape[0], *inp["shape"][1:]], strict=False)
    interp.allocate_tensors()
    interp.set_tensor(inp["index"], np.ascontiguousarray(x, np.float32))
    interp.invoke()
    return np.array(interp.get_tensor(interp.get_output_details()[0]["index"]))


# ------------------------------------------------------------------ the pictures


def load_manifest(data_dir: Path) -> list[dict[str, Any]]:
    path = data_dir / "manifest.jsonl"
    if not path.is_file():
        raise SystemExit(f"{path} is missing: run python -m benchmarks.photos.generate first")
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def _item(r: dict[str, Any], data: bytes, role: str, label: int | None) -> dict[str, Any]:
    first = r["subset"] if role == "framed" else "all"  # each scored-apart subset by itself
    groups = [first, f"subset:{r['subset']}", f"src:{r['source']}", f"scene:{r['scene']}",
              f"size:{r['size_class']}", f"format:{r['format']}",
              *(f"tag:{t}" for t in r["tags"])]  # fmt: skip
    return {"data": data, "label": label, "split": r["split"], "subset": r["subset"],
            "role": role, "kind": r["source"], "groups": groups, "size": r["size_class"],
            "file": r["file"]}  # fmt: skip


def samples(rows: list[dict[str, Any]], data_dir: Path, framing: str) -> list[dict[str, Any]]:
    """Every picture a model of ``framing`` sees, with its role: ``own`` (labelled), ``page``
    (no digit or item) or ``other`` (the other data set's photos)."""
    out = []
    for r in rows:
        subset = r["subset"]
        if subset in OWN_SUBSETS[framing]:
            out.append(_item(r, (data_dir / r["file"]).read_bytes(), "own", r["label"]))
        elif subset in FRAMED_SUBSETS[framing]:
            out.append(_item(r, (data_dir / r["file"]).read_bytes(), "framed", r["label"]))
        elif subset in PAGE_SUBSETS:
            out.append(_item(r, (data_dir / r["file"]).read_bytes(), "page", None))
        elif subset in OTHER_SUBSETS[framing]:
            out.append(_item(r, (data_dir / r["file"]).read_bytes(), "other", None))
        elif subset == "multi" and framing == "digit":
            out.extend(_multi_digits(r, data_dir))
    return out


def _multi_digits(r: dict[str, Any], data_dir: Path) -> list[dict[str, Any]]:
    """Each digit of a number, cut at its box with a margin, as a PNG."""
    img = Image.open(data_dir / r["file"])
    img.load()
    out = []
    for j, (box, label) in enumerate(zip(r["boxes"], r["labels"], strict=True)):
        x0, y0, x1, y1 = box
        m = round(0.15 * max(x1 - x0, y1 - y0))
        crop = img.crop((max(0, x0 - m), max(0, y0 - m), min(img.width, x1 + m),
                         min(img.height, y1 + m)))  # fmt: skip
        buf = io.BytesIO()
        crop.save(buf, "PNG")
        it = _item(r, buf.getvalue(), "own", label)
        it["groups"] = ["all", "subset:multi", f"src:multi-{r['source']}", f"scene:{r['scene']}"]
        it["file"] = f"{r['file']}#{j}"
        out.append(it)
    return out


# ------------------------------------------------------------------ the run


def run_method(
    fn: preprocessings.Prep, items: list[dict[str, Any]], framing: str
) -> tuple[list[np.ndarray | None], list[float]]:
    xs: list[np.ndarray | None] = []
    times = []
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


def decode_times(items: list[dict[str, Any]]) -> dict[str, float]:
    """Median ms to decode a picture (Pillow, full size), by size class."""
    by_size: dict[str, list[float]] = defaultdict(list)
    for it in items:
        if it["subset"] == "multi":
            continue
        t0 = time.perf_counter()
        with Image.open(io.BytesIO(it["data"])) as img:
            img.load()
        by_size[it["size"]].append(time.perf_counter() - t0)
    return {s: round(1000 * statistics.median(v), 3) for s, v in sorted(by_size.items())}


def score(
    items: list[dict[str, Any]], passed: np.ndarray, preds: np.ndarray, split: str
) -> dict[str, Any]:
    """Per group of the own pictures: n, correct, judged blank; pages: judged blank per kind."""
    groups: dict[str, dict[str, int]] = defaultdict(lambda: {"n": 0, "correct": 0, "blank": 0})
    pages: dict[str, dict[str, int]] = defaultdict(lambda: {"n": 0, "blank": 0})
    for i, it in enumerate(items):
        if it["split"] != split:
            continue
        if it["role"] == "page":
            for key in (it["subset"], f"{it['subset']}:{it['kind']}"):
                pages[key]["n"] += 1
                pages[key]["blank"] += int(not passed[i])
        elif it["role"] in ("own", "framed"):
            for g in it["groups"]:
                cell = groups[g]
                cell["n"] += 1
                cell["blank"] += int(not passed[i])
                cell["correct"] += int(bool(passed[i]) and int(preds[i]) == it["label"])
    return {"groups": dict(groups), "pages": dict(sorted(pages.items()))}


def evaluate(
    models_dir: Path, data_dir: Path, methods: list[str], splits: list[str]
) -> dict[str, Any]:
    rows = load_manifest(data_dir)
    versions = find_versions(models_dir)
    if not versions:
        raise SystemExit(f"no image-classification version with model.tflite in {models_dir}")
    fns, where = preprocessings.load(methods)
    counts: dict[str, int] = defaultdict(int)
    for r in rows:
        counts[f"{r['subset']}/{r['split']}"] += 1
    result: dict[str, Any] = {"models_dir": str(models_dir), "data_dir": str(data_dir),
                              "current_from": where, "splits": splits, "methods": list(fns),
                              "pictures": dict(sorted(counts.items())),
                              "versions": [], "runs": [], "timing_ms": {},
                              "decode_ms": {}, "test_set_ood": {}}  # fmt: skip
    for v in versions:
        keep = ("name", "version", "recipe", "framing", "test_accuracy")
        result["versions"].append({k: v[k] for k in keep} | {"ood_model": v["task"] is not None})
        if v["task"] is not None:
            key = f"{v['name']}/{v['version']}"
            result["test_set_ood"][key] = ood_metrics.on_test_sets(
                v["task"], v["name"], lambda x, m=v["model"]: predict(m, x)
            )
    for framing in sorted({v["framing"] for v in versions}):
        items = samples(rows, data_dir, framing)
        result["decode_ms"][framing] = decode_times(items)
        split_of = np.array([it["split"] for it in items])
        roles = np.array([it["role"] for it in items])
        for method, fn in fns.items():
            xs, times = run_method(fn, items, framing)
            by_size: dict[str, list[float]] = defaultdict(list)
            for it, t in zip(items, times, strict=True):
                if it["subset"] != "multi":
                    by_size[it["size"]].append(t)
            result["timing_ms"][f"{method}/{framing}"] = {
                s: round(1000 * statistics.median(t), 3) for s, t in sorted(by_size.items())
            }
            passed = np.array([x is not None for x in xs])
            batch = np.stack([x if x is not None else np.zeros((28, 28), np.float32) for x in xs])
            for v in (v for v in versions if v["framing"] == framing):
                probs = predict(v["model"], batch)
                preds = probs.argmax(axis=1)
                scores = flags = None
                if v["task"] is not None:
                    scores = np.asarray(v["task"].ood_scores(batch, probs), float)
                    flags = np.asarray(v["task"].ood_flags(batch, probs), bool)
                for split in splits:
                    run = {"model": v["name"], "version": v["version"], "recipe": v["recipe"],
                           "method": method, "split": split,
                           **score(items, passed, preds, split)}  # fmt: skip
                    if scores is not None and flags is not None:
                        sel = split_of == split
                        run["ood"] = ood_metrics.photo_ood(
                            roles[sel], scores[sel], flags[sel], passed[sel]
                        )
                    result["runs"].append(run)
                    g = run["groups"].get("all", {"n": 0, "correct": 0, "blank": 0})
                    print(f"{v['name']} v{v['version']} {method:9s} {split:7s}: "
                          f"{g['correct'] / max(1, g['n']):.3f} (blank {g['blank']}/{g['n']})",
                          flush=True)  # fmt: skip
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models-dir", type=Path, default=Path("models"))
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--preprocess", default=",".join(preprocessings.METHODS),
                        help="comma list of current, baseline")  # fmt: skip
    parser.add_argument("--split", default="all", choices=("dev", "holdout", "all"),
                        help="'all' reports dev and holdout separately")  # fmt: skip
    parser.add_argument("--out", type=Path, default=RESULTS / "photos")
    args = parser.parse_args(argv)
    methods = [m.strip() for m in args.preprocess.split(",") if m.strip()]
    unknown = set(methods) - set(preprocessings.METHODS)
    if unknown:
        parser.error(f"unknown preprocessing: {sorted(unknown)}")
    splits = ["dev", "holdout"] if args.split == "all" else [args.split]
    result = evaluate(args.models_dir, args.data_dir, methods, splits)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=1, default=str) + "\n")
    args.out.with_suffix(".md").write_text(report.markdown(result))
    print(f"wrote {args.out.with_suffix('.md')} and .json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
