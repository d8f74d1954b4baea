"""The evaluation's Markdown report (``benchmarks/results/photos.md``) from its JSON result."""

from __future__ import annotations

from typing import Any

SIZES = ("icon", "300px", "phone")


def _acc(cell: dict[str, int] | None) -> str:
    if not cell or not cell["n"]:
        return ""
    return f"{cell['correct'] / cell['n']:.3f}"


def _f(x: float | None, digits: int = 3) -> str:
    return "" if x is None else f"{x:.{digits}f}"


def _cells(runs: list[dict[str, Any]], model: str, version: int, split: str) -> dict[str, Any]:
    return {r["method"]: r for r in runs
            if (r["model"], r["version"], r["split"]) == (model, version, split)}  # fmt: skip


def _accuracy(result: dict[str, Any]) -> list[str]:
    methods, runs = result["methods"], result["runs"]
    lines = ["## Accuracy", "",
             "Test set: the version's accuracy on the real 28x28 test set (its metadata). "
             "Judged blank: readable pictures the preprocessing found no ink in (counted wrong).",
             "", "| model | version | test set | split | n | " + " | ".join(methods)
             + " | judged blank (" + " / ".join(methods) + ") |",
             "|---|---|---:|---|---:|" + "---:|" * len(methods) + "---:|"]  # fmt: skip
    for v in result["versions"]:
        for split in result["splits"]:
            cells = _cells(runs, v["name"], v["version"], split)
            alls = [cells[m]["groups"].get("all") if m in cells else None for m in methods]
            n = next((a["n"] for a in alls if a), 0)
            blanks = " / ".join(f"{a['blank'] / max(1, a['n']):.1%}" if a else "" for a in alls)
            lines.append(f"| {v['name']} | {v['version']} ({v['recipe']}) | "
                         f"{_f(v['test_accuracy'], 4)} | {split} | {n} | "
                         + " | ".join(_acc(a) for a in alls) + f" | {blanks} |")  # fmt: skip
    return lines


APART = ("framed", "tabled", "surfaces")  # the digit subsets scored apart from "all"


def _framed(result: dict[str, Any]) -> list[str]:
    """The ``framed``, ``tabled`` and ``surfaces`` subsets' accuracy per kind (scored apart from
    "all")."""
    methods, runs = result["methods"], result["runs"]
    sources = tuple(f"src:{subset}-" for subset in APART)  # their pictures' sources
    kinds = sorted({g for r in runs for g in r["groups"] if g.startswith(sources)})
    if not kinds:
        return []
    lines = ["", "## Framings the other subsets do not hold (`framed`, `tabled`, `surfaces`)", "",
             "One real MNIST test digit per picture: `framed` cropped tight around it, on a sheet "
             "lying on a darker table (turned up to 8 degrees), boxed, or circled; `tabled` on a "
             "sheet turned 10-45 degrees, on a sticky note, on a sheet running off one edge, or "
             "on a sheet held up against a dark room; `surfaces` in chalk on a dark board, on "
             "ruled paper photographed 1-5 degrees askew, on a page mostly in deep shadow, or in "
             "a light-coloured gel ink. Scored apart: not in the accuracy above nor in the OOD "
             "figures. Cells: accuracy per preprocessing (judged blank in brackets, counted "
             "wrong).", "",
             "| model | version | split | framing | n | " + " | ".join(methods) + " |",
             "|---|---|---|---|---:|" + "---:|" * len(methods)]  # fmt: skip
    for v in result["versions"]:
        for split in result["splits"]:
            cells = _cells(runs, v["name"], v["version"], split)
            for kind in [*APART, *kinds]:
                row = [cells[m]["groups"].get(kind) if m in cells else None for m in methods]
                n = next((c["n"] for c in row if c), 0)
                if not n:
                    continue
                shown = [f"{_acc(c)} ({c['blank']})" if c else "" for c in row]
                lines.append(f"| {v['name']} | {v['version']} ({v['recipe']}) | {split} | "
                             f"{kind.removeprefix('src:')} | {n} | "
                             + " | ".join(shown) + " |")  # fmt: skip
    return lines


def _pages(result: dict[str, Any]) -> list[str]:
    methods, runs = result["methods"], result["runs"]
    lines = ["", '## Pages without a digit: share judged blank ("no ink")', "",
             "Blank pages should be judged blank (higher is better); `marks` (a stroke, an arc, a "
             "scribble) hold ink, so they are for the OOD score below.", "",
             "| model | split | page kind | n | " + " | ".join(methods) + " |",
             "|---|---|---|---:|" + "---:|" * len(methods)]  # fmt: skip
    seen = set()
    for v in result["versions"]:
        if v["name"] in seen:
            continue  # the same pictures and preprocessing for every version of a model
        seen.add(v["name"])
        for split in result["splits"]:
            cells = _cells(runs, v["name"], v["version"], split)
            first = next(iter(cells.values()), None)
            for kind in first["pages"] if first else []:
                row = [cells[m]["pages"].get(kind) if m in cells else None for m in methods]
                n = next((c["n"] for c in row if c), 0)
                shares = [f"{c['blank'] / c['n']:.2f}" if c and c["n"] else "" for c in row]
                lines.append(f"| {v['name']} | {split} | {kind} | {n} | " + " | ".join(shares)
                             + " |")  # fmt: skip
    return lines


def _ood(result: dict[str, Any]) -> list[str]:
    runs = result["runs"]
    lines = ["", "## Out of distribution", "",
             "AUROC of the version's OOD score (higher is better), on what each preprocessing "
             "produced: own photos against pages without a digit that got past the blank check "
             "(`ood` and `marks`; past / all), and against the other data set's photos "
             "(Fashion-MNIST photos sent to mnist, digit photos sent to fashion_mnist). "
             "Own flagged: own photos flagged out of distribution. Answered: share given a "
             "label (neither judged blank nor flagged; lower is better).", "",
             "| model | version | method | split | vs pages | pages past | vs other set | "
             "own flagged | pages answered | other set answered |",
             "|---|---|---|---|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for r in runs:
        o = r.get("ood")
        if o is None:
            continue
        lines.append(f"| {r['model']} | {r['version']} | {r['method']} | {r['split']} | "
                     f"{_f(o['auroc_vs_pages'])} | {o['pages_past_gate']}/{o['pages']} | "
                     f"{_f(o['auroc_vs_other'])} | {_f(o['own_flagged'])} | "
                     f"{_f(o['pages_answered'])} | {_f(o['other_answered'])} |")  # fmt: skip
    missing = [f"{v['name']} {v['version']}" for v in result["versions"] if not v["ood_model"]]
    if missing:
        lines += ["", f"No OOD model: {', '.join(missing)}."]
    lines += ["", "On the real 28x28 test sets (AUROC: 2,000 own test images against 2,000 of the "
              "other test set and 500 of each synthetic kind; flagged: the whole test set):", "",
              "| model / version | other test set | noise | near-blank | single stroke | "
              "own test images flagged |", "|---|---:|---:|---:|---:|---:|"]  # fmt: skip
    for key, t in result["test_set_ood"].items():
        a = t["auroc"]
        lines.append(f"| {key} | {_f(a['other test set'])} | {_f(a['noise'])} | "
                     f"{_f(a['near-blank'])} | {_f(a['single stroke'])} | "
                     f"{_f(t['test_flagged'])} |")  # fmt: skip
    return lines


def _conditions(result: dict[str, Any]) -> list[str]:
    methods, runs = result["methods"], result["runs"]
    lines = ["", "## Per condition", "",
             "Cells: accuracy per preprocessing, then judged blank per preprocessing. "
             "`subset:` where the picture comes from, `src:` its source (MNIST test digit, "
             "font, pen trajectory, the demo pad, ...), `scene:` paper or drawing, `size:` "
             "picture size, `format:` file format, `tag:` a condition present.", ""]  # fmt: skip
    for v in result["versions"]:
        for split in result["splits"]:
            cells = _cells(runs, v["name"], v["version"], split)
            if not cells:
                continue
            groups = sorted(next(iter(cells.values()))["groups"])
            lines += [f"### {v['name']} {v['version']} ({v['recipe']}), {split}", "",
                      "| condition | n | " + " | ".join(methods) + " | blank |",
                      "|---|---:|" + "---:|" * len(methods) + "---:|"]  # fmt: skip
            for g in groups:
                row = [cells[m]["groups"].get(g) if m in cells else None for m in methods]
                n = next((c["n"] for c in row if c), 0)
                blank = " / ".join(str(c["blank"]) if c else "" for c in row)
                lines.append(f"| {g} | {n} | " + " | ".join(_acc(c) for c in row)
                             + f" | {blank} |")  # fmt: skip
            lines.append("")
    return lines


def _speed(result: dict[str, Any]) -> list[str]:
    lines = ["## Speed", "",
             "Median ms per picture in this process (one thread): decoding alone (Pillow, full "
             "size), and decoding + preprocessing (bytes in, 28x28 out) per method, by size "
             "class (icon 28-64 px, 300px 240-600 px wide, phone 3000x4000 JPEG).", "",
             "| step | " + " | ".join(SIZES) + " |", "|---|---:|---:|---:|"]  # fmt: skip
    for framing, t in result["decode_ms"].items():
        lines.append(f"| decode ({framing} pictures) | "
                     + " | ".join(str(t.get(s, "")) for s in SIZES) + " |")  # fmt: skip
    for k, t in result["timing_ms"].items():
        lines.append(f"| {k} | " + " | ".join(str(t.get(s, "")) for s in SIZES) + " |")
    return lines


def markdown(result: dict[str, Any]) -> str:
    pictures = ", ".join(f"{k} {n}" for k, n in result["pictures"].items())
    lines = ["# Photos and drawings", "",
             "Generated by `make eval-photos` (`python -m benchmarks.photos.generate`, then "
             "`python -m benchmarks.photos.evaluate`); the set and the split rule are in "
             "`benchmarks/photos/README.md`. Holdout is reported, never used to choose. "
             f"Models: `{result['models_dir']}`. `current` is the service's upload path "
             f"(`{result['current_from']}`).", "", f"Pictures: {pictures}.", ""]  # fmt: skip
    lines += _accuracy(result) + _framed(result) + _pages(result) + _ood(result)
    lines += _conditions(result)
    lines += _speed(result)
    return "\n".join(lines) + "\n"
