"""Evaluate every image version on the photo set: ``python -m benchmarks.photoset.evaluate``.

Each picture is decoded by the service's own path (``service.inputs.images.decode_image`` with the
version's framing, as ``Task.decode_file`` does) and by a plain MNIST-style baseline implemented
here (grey; invert when the border is light; normalise; crop to the ink; fit the longer side to
20 px, or 28 for an item; centre by the centre of mass, or the box for an item). The version's
``model.tflite`` runs on both, batched. A picture the service judges blank (``NoInkFound``, a 422)
counts as wrong. OOD scores come from the version's task (``Task.ood_scores``).

Writes ``benchmarks/results/photoset.md`` and ``photoset.json``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from benchmarks.photoset.generate import DEFAULT_OUT

RESULTS = Path(__file__).resolve().parents[1] / "results"
MAX_PIXELS = 16_777_216  # the service's default limit
MODELS = ("mnist", "fashion_mnist")
OTHER = {"mnist": "fashion_mnist", "fashion_mnist": "mnist"}
KEY_CONDITIONS = ("icon", "300px", "phone", "src-mnist", "src-font", "drawing", "drawing-dark",
                  "gradient", "shadow", "ruled", "squared", "texture", "tinted", "pencil", "blur",
                  "noise", "rotated", "pen-bold", "pen-fine", "jpeg-low", "jpeg", "png", "webp",
                  "grey", "bg-light", "bg-dark", "bg-coloured", "bg-textured")  # fmt: skip


# ------------------------------------------------------------------ baseline preprocessing


def baseline(data: bytes, fit: str = "digit") -> np.ndarray | None:
    """The plain recipe: grey, invert if the border is light, normalise, crop, fit, centre.

    Returns float32 (28, 28) light on black, or None when the picture is uniform.
    """
    img = Image.open(io.BytesIO(data))
    img.draft("L", (256, 256))
    img = img.convert("L")
    if max(img.size) > 256:
        img.thumbnail((256, 256), Image.Resampling.BOX)
    grey = np.asarray(img, np.float32)
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    if float(np.median(border)) > 127:
        grey = 255.0 - grey
    lo, hi = float(grey.min()), float(grey.max())
    if hi - lo < 1e-6:
        return None
    norm = (grey - lo) / (hi - lo)
    mask = norm > 0.5
    if not mask.any():
        return None
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    crop = norm[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    return fit_and_centre(crop, fit)


def fit_and_centre(crop: np.ndarray, fit: str = "digit") -> np.ndarray:
    """Fit ``crop`` (light on black) into 20x20 (digit) or 28x28 (item) and paste it in 28x28,
    centred by its centre of mass (digit) or its box (item)."""
    h, w = crop.shape
    box = 20 if fit == "digit" else 28
    s = box / max(h, w)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    small = Image.fromarray(crop.astype(np.float32), mode="F").resize(
        size, Image.Resampling.LANCZOS
    )
    arr = np.clip(np.asarray(small, np.float32), 0.0, 1.0)
    out = np.zeros((28, 28), np.float32)
    h, w = arr.shape
    if fit == "digit" and arr.sum() > 0:
        cy = float(arr.sum(axis=1) @ np.arange(h)) / float(arr.sum())
        cx = float(arr.sum(axis=0) @ np.arange(w)) / float(arr.sum())
        top, left = round(14 - cy), round(14 - cx)
    else:
        top, left = (28 - h + 1) // 2, (28 - w + 1) // 2
    y0, y1, x0, x1 = max(top, 0), min(top + h, 28), max(left, 0), min(left + w, 28)
    out[y0:y1, x0:x1] = arr[y0 - top : y1 - top, x0 - left : x1 - left]
    return out


# ------------------------------------------------------------------ models


class Version:
    def __init__(self, folder: Path) -> None:
        from ai_edge_litert.interpreter import Interpreter

        from service.serving.tasks import Task

        self.folder = folder
        self.meta = json.loads((folder / "metadata.json").read_text())
        self.name = str(self.meta["name"])
        self.version = int(self.meta["version"])
        self.recipe = str(self.meta.get("recipe", {}).get("name", "?"))
        self.task: Any = Task.from_metadata(self.meta, folder)
        self.framing = str(self.task.framing)
        self.interpreter = Interpreter(model_path=str(folder / "model.tflite"), num_threads=2)
        self.shape = tuple(self.meta["input"]["shape"])

    @property
    def label(self) -> str:
        return f"{self.name} v{self.version} ({self.recipe})"

    def predict(self, x: np.ndarray, batch: int = 256) -> np.ndarray:
        out = []
        it = self.interpreter
        for start in range(0, len(x), batch):
            chunk = np.ascontiguousarray(x[start : start + batch], np.float32)
            idx = it.get_input_details()[0]["index"]
            it.resize_tensor_input(idx, [len(chunk), *self.shape], strict=False)
            it.allocate_tensors()
            it.set_tensor(idx, chunk.reshape(len(chunk), *self.shape))
            it.invoke()
            out.append(np.array(it.get_tensor(it.get_output_details()[0]["index"])))
        return np.concatenate(out).argmax(axis=1) if out else np.zeros(0, int)

    def ood(self, x: np.ndarray) -> np.ndarray | None:
        if len(x) == 0:
            return np.zeros(0, np.float32)
        return self.task.ood_scores(np.asarray(x, np.float32))


def find_versions(models_dir: Path) -> list[Version]:
    found = []
    for name in MODELS:
        for folder in sorted((models_dir / name).glob("*"), key=lambda p: (len(p.name), p.name)):
            if (folder / "metadata.json").is_file() and (folder / "model.tflite").is_file():
                found.append(Version(folder))
    return found


# ------------------------------------------------------------------ metrics


def auroc(inside: np.ndarray, outside: np.ndarray) -> float | None:
    """P(score of an outside picture > score of an inside one), ties half (Mann-Whitney)."""
    inside, outside = np.asarray(inside, float), np.asarray(outside, float)
    if len(inside) == 0 or len(outside) == 0:
        return None
    greater = (outside[:, None] > inside[None, :]).mean()
    equal = (outside[:, None] == inside[None, :]).mean()
    return float(greater + 0.5 * equal)


def _single_strokes(n: int, rng: np.random.Generator) -> np.ndarray:
    """28x28 images of one near-horizontal line or arc (a vertical one would be a fair "1")."""
    from PIL import ImageDraw

    out = np.zeros((n, 28, 28), np.float32)
    for i in range(n):
        img = Image.new("L", (28, 28), 0)
        draw = ImageDraw.Draw(img)
        y = float(rng.uniform(8, 20))
        dy = float(rng.uniform(-5, 5))
        if i % 2:
            draw.line([(4, y - dy), (24, y + dy)], fill=255, width=int(rng.integers(2, 4)))
        else:
            draw.arc([4, y - 6, 24, y + 6], 180, 320, fill=255, width=int(rng.integers(2, 4)))
        out[i] = np.asarray(img, np.float32) / 255.0
    return out


def test_set_ood(v: Version, n: int = 2000) -> dict[str, Any]:
    """OOD on the real test sets: the own test images against the other set, noise, blank and
    single strokes; and the share of the own test images flagged."""
    from training.datasets import load_images

    rng = np.random.default_rng(7)
    own = np.asarray(load_images(v.name).x_test[:n], np.float32) / 255.0
    other = np.asarray(load_images(OTHER[v.name]).x_test[:n], np.float32) / 255.0
    s_own = v.ood(own)
    if s_own is None:
        return {"available": False}
    cases = {
        f"{OTHER[v.name]} test": other,
        "noise": rng.random((500, 28, 28), dtype=np.float32),
        "blank": np.zeros((50, 28, 28), np.float32) + rng.uniform(0, 0.02, (50, 1, 1)),
        "single-stroke": _single_strokes(500, rng),
    }
    flags = v.task.ood_flags(own)
    result: dict[str, Any] = {
        "available": True,
        "test_flagged": float(np.mean(flags)),
        "auroc": {},
    }
    for key, x in cases.items():
        result["auroc"][key] = auroc(s_own, v.ood(x))
    return result


# ------------------------------------------------------------------ the run


def _decode_all(items: list[dict[str, Any]], folder: Path, fits: set[str]) -> dict[str, Any]:
    """Service and baseline decoding of every picture for each framing, with timings."""
    from service.inputs.images import decode_image
    from service.inputs.preprocess import NoInkFound

    out: dict[str, Any] = {}
    for fit in sorted(fits):
        svc, base, status, ms = [], [], [], []
        for it in items:
            data = (folder / it["file"]).read_bytes()
            t0 = time.perf_counter()
            try:
                svc.append(decode_image(data, max_pixels=MAX_PIXELS, fit=fit))  # type: ignore[arg-type]
                status.append("ok")
            except NoInkFound:
                svc.append(np.zeros((28, 28), np.float32))
                status.append("blank")
            except Exception as exc:  # another 4xx: counted, reported
                svc.append(np.zeros((28, 28), np.float32))
                status.append(f"error: {type(exc).__name__}")
            ms.append(1000 * (time.perf_counter() - t0))
            b = baseline(data, fit)
            base.append(np.zeros((28, 28), np.float32) if b is None else b)
        out[fit] = {
            "service": np.stack(svc),
            "baseline": np.stack(base),
            "status": np.array(status),
            "ms": np.array(ms),
        }
    return out


def _acc(mask: np.ndarray, right: np.ndarray) -> dict[str, Any]:
    n = int(mask.sum())
    return {"n": n, "accuracy": None if n == 0 else float(right[mask].mean())}


def evaluate(folder: Path, models_dir: Path, split: str = "all") -> dict[str, Any]:
    manifest = json.loads((folder / "manifest.json").read_text())
    items = [it for it in manifest["items"] if split == "all" or it["split"] == split]
    versions = find_versions(models_dir)
    started = time.perf_counter()
    decoded = _decode_all(items, folder, {v.framing for v in versions} or {"digit"})
    decode_s = time.perf_counter() - started
    model_of = np.array([it["model"] for it in items])
    splits = np.array([it["split"] for it in items])
    labels = np.array([-1 if it["label"] is None else it["label"] for it in items])
    conds = [set(it["conditions"]) for it in items]
    result: dict[str, Any] = {
        "photoset": str(folder),
        "models_dir": str(models_dir),
        "split": split,
        "counts": {m: int((model_of == m).sum()) for m in ("mnist", "fashion_mnist", "none")},
        "fonts": manifest.get("fonts", []),
        "versions": [],
    }
    size_class = np.array([it["size_class"] for it in items])
    timing = {}
    for fit, d in decoded.items():
        timing[fit] = {
            sc: round(float(np.median(d["ms"][size_class == sc])), 2)
            for sc in ("icon", "300px", "phone")
            if (size_class == sc).any()
        }
    result["ms_per_photo_median"] = timing
    result["decode_seconds"] = round(decode_s, 1)
    for v in versions:
        d = decoded[v.framing]
        own = model_of == v.name
        pred_svc = v.predict(d["service"])
        pred_base = v.predict(d["baseline"])
        ok = d["status"] == "ok"
        right_svc = (pred_svc == labels) & ok
        right_base = pred_base == labels
        entry: dict[str, Any] = {"model": v.name, "version": v.version, "recipe": v.recipe,
                                 "framing": v.framing, "splits": {}}  # fmt: skip
        for sp in ("dev", "holdout", "all"):
            sel = own & ((splits == sp) if sp != "all" else True)
            if not sel.any() or (sp == "all" and split != "all"):
                continue
            per_cond = {}
            for c in KEY_CONDITIONS:
                cm = sel & np.array([c in cs for cs in conds])
                if cm.any():
                    per_cond[c] = {"n": int(cm.sum()),
                                   "service": float(right_svc[cm].mean()),
                                   "baseline": float(right_base[cm].mean()),
                                   "blank": int((cm & (d["status"] == "blank")).sum())}  # fmt: skip
            entry["splits"][sp] = {
                "service": _acc(sel, right_svc),
                "baseline": _acc(sel, right_base),
                "blank": int((sel & (d["status"] == "blank")).sum()),
                "errors": int((sel & np.char.startswith(d["status"], "error")).sum()),
                "conditions": per_cond,
            }
        # OOD
        s_all = v.ood(d["service"])
        if s_all is None:
            entry["ood"] = {"available": False}
        else:
            inside = s_all[own & ok]
            pages = (model_of == "none") & ok
            other = (model_of == OTHER[v.name]) & ok
            flags = s_all > v.task.ood.threshold
            entry["ood"] = {
                "available": True,
                "threshold": float(v.task.ood.threshold),
                "photos_flagged": float(flags[own & ok].mean()) if (own & ok).any() else None,
                "auroc_photos_vs_pages": auroc(inside, s_all[pages]),
                "pages_passing_gate": int(pages.sum()),
                "pages_total": int((model_of == "none").sum()),
                "auroc_photos_vs_other_photos": auroc(inside, s_all[other]),
                "test_sets": test_set_ood(v),
                "by_split": {
                    sp: {
                        "auroc_photos_vs_pages": auroc(
                            s_all[own & ok & (splits == sp)], s_all[pages & (splits == sp)]
                        ),
                        "auroc_photos_vs_other_photos": auroc(
                            s_all[own & ok & (splits == sp)], s_all[other & (splits == sp)]
                        ),
                    }
                    for sp in ("dev", "holdout")
                },
            }
        result["versions"].append(entry)
    return result


def _f(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def markdown(r: dict[str, Any]) -> str:
    lines = ["# Photo-and-drawing set", "",
             f"Pictures: {r['counts']} (split: {r['split']}); fonts: "
             f"{', '.join(Path(f).name for f in r['fonts']) or 'none installed'}.",
             "Service = `decode_image` with the version's framing; baseline = grey, invert if the "
             "border is light, normalise, crop at half contrast, fit 20x20 (item: 28), centre of "
             "mass. A picture the service judges blank counts as wrong.", ""]  # fmt: skip
    lines += ["## Accuracy", "",
              "| model | version | split | n | service | baseline | judged blank | errors |",
              "|---|---|---|---:|---:|---:|---:|---:|"]  # fmt: skip
    for e in r["versions"]:
        for sp, s in e["splits"].items():
            lines.append(
                f"| {e['model']} | {e['version']} ({e['recipe']}) | {sp} | {s['service']['n']} | "
                f"{_f(s['service']['accuracy'])} | {_f(s['baseline']['accuracy'])} | "
                f"{s['blank']} | {s['errors']} |"
            )
    lines += ["", "## Per condition (service / baseline)", ""]
    for e in r["versions"]:
        for sp in ("dev", "holdout"):
            s = e["splits"].get(sp)
            if not s:
                continue
            lines += [f"### {e['model']} v{e['version']} ({e['recipe']}), {sp}", "",
                      "| condition | n | service | baseline | judged blank |",
                      "|---|---:|---:|---:|---:|"]  # fmt: skip
            for c, v in s["conditions"].items():
                lines.append(
                    f"| {c} | {v['n']} | {_f(v['service'])} | {_f(v['baseline'])} | {v['blank']} |"
                )
            lines.append("")
    lines += ["## Out of distribution (AUROC; higher is better)", "",
              "| model | version | photos vs OOD pages past the gate | vs the other set's photos | "
              "test: other set | test: noise | test: blank | test: single stroke | "
              "test images flagged | own photos flagged |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for e in r["versions"]:
        o = e["ood"]
        if not o["available"]:
            lines.append(f"| {e['model']} | {e['version']} | not available (no OOD model) "
                         "| | | | | | | |")  # fmt: skip
            continue
        t = o["test_sets"]["auroc"]
        other = next(k for k in t if k.endswith("test"))
        lines.append(
            f"| {e['model']} | {e['version']} | {_f(o['auroc_photos_vs_pages'])} "
            f"({o['pages_passing_gate']}/{o['pages_total']}) | "
            f"{_f(o['auroc_photos_vs_other_photos'])} | {_f(t[other])} | {_f(t['noise'])} | "
            f"{_f(t['blank'])} | {_f(t['single-stroke'])} | "
            f"{o['test_sets']['test_flagged']:.3f} | {_f(o['photos_flagged'])} |"
        )
    lines += ["", "## Decoding time (median ms per photo, service path)", "",
              "| framing | " + " | ".join(("icon", "300px", "phone")) + " |",
              "|---|---:|---:|---:|"]  # fmt: skip
    for fit, t in r["ms_per_photo_median"].items():
        cells = " | ".join(str(t.get(sc, "n/a")) for sc in ("icon", "300px", "phone"))
        lines.append(f"| {fit} | {cells} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--models-dir", type=Path, default=Path("models"))
    parser.add_argument("--photos", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--split", choices=("dev", "holdout", "all"), default="all")
    parser.add_argument("--out", type=Path, default=RESULTS / "photoset")
    args = parser.parse_args(argv)
    result = evaluate(args.photos, args.models_dir, args.split)
    text = markdown(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".md").write_text(text)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=1))
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
