"""The markdown page of ``benchmarks.trust``'s result."""

from __future__ import annotations

from typing import Any


def _ece(e: dict[str, Any]) -> str:
    low, high = e["interval"]
    return f"{e['ece']:.4f} [{low:.3f}, {high:.3f}]"


def _calibration(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "## Calibration (test set)",
        "",
        "ECE with its 95% bootstrap interval; floor: the mean (and 95th percentile) ECE of a "
        "perfectly calibrated model with the same probabilities at the same size, simulated, "
        "so an ECE near the floor is what chance alone gives; p: the share of those calibrated "
        "draws with an ECE at least the measured one. A resample repeats rows, which adds "
        "noise to every bin, so on small sets the bootstrap interval sits above the estimate.",
        "",
        "| model | version | method | bins | ECE before | ECE after | floor (p95) | p after | "
        "Brier before | Brier after | accuracy |",
        "|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        cal = row["calibration"]
        for before, after in zip(cal["before"]["ece"], cal["after"]["ece"], strict=True):
            lines.append(
                f"| {row['model']} | {row['version']} | {cal['method']} | "
                f"{after['bins']} {after['scheme']} | {_ece(before)} | {_ece(after)} | "
                f"{after['floor_mean']:.4f} ({after['floor_p95']:.4f}) | {after['p_value']:.2f} | "
                f"{cal['before']['brier']:.4f} | {cal['after']['brier']:.4f} | "
                f"{row['accuracy']:.4f} |"
            )
    return lines


def _oof(oof: dict[str, Any]) -> list[str]:
    lines = [
        "",
        "## Pima: out-of-fold calibration of the `best` recipe",
        "",
        "5-fold stratified CV repeated 3 times; each fold reruns the whole recipe (calibration "
        "split, bag of inner-fold members, calibrator) on its training rows and predicts its "
        "held-out rows. ECE: mean over the three repeats of the pooled out-of-fold ECE; interval "
        "and floor on the first repeat. The calibrator is chosen on the training rows only; "
        "all rows are the report.",
        "",
        "| rows | calibrator | ECE 15 width | interval | floor (p95) | ECE 10 mass | "
        "floor (p95) | Brier | log-loss |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, block in oof.items():
        for name, w in block["width_15"].items():
            m = block["mass_10"][name]
            low, high = w["interval_first_repeat"]
            lines.append(
                f"| {label} ({block['examples']}) | {name} | {w['ece_mean']:.4f} | "
                f"[{low:.3f}, {high:.3f}] | {w['floor_mean']:.4f} ({w['floor_p95']:.4f}) | "
                f"{m['ece_mean']:.4f} | {m['floor_mean']:.4f} ({m['floor_p95']:.4f}) | "
                f"{w['brier']:.4f} | {w['log_loss']:.4f} |"
            )
    return lines


def _sets(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "",
        "## Prediction sets (test set)",
        "",
        "default: the version's default alpha (metadata); rule: the alpha the default rule "
        "picks on the version's calibration split. bound: 1 - alpha - 2 SE of the test set; "
        "with draw: also counting the spread of the calibration draw (versions without delta).",
        "",
        "| model | version | delta | alpha | coverage | bound | with draw | mean set size | "
        "one label | empty |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        conf = row["conformal"]
        for s in row["sets"]:
            tags = [
                t
                for t, a in (("default", conf["default_alpha"]), ("rule", conf["rule_alpha"]))
                if a == s["alpha"]
            ]
            alpha = f"{s['alpha']}" + (f" ({', '.join(tags)})" if tags else "")
            met = "" if s["met"] else " (below)"
            lines.append(
                f"| {row['model']} | {row['version']} | {conf['delta'] or '-'} | {alpha} | "
                f"{s['coverage']:.4f}{met} | {s['bound']:.4f} | {s['bound_with_draw']:.4f} | "
                f"{s['mean_set_size']:.3f} | {s['single_label']:.4f} | {s['empty']:.4f} |"
            )
    lines += [
        "",
        "Calibration split against test set, at the default alpha (the scores shipped are the "
        "served model's if the gap is ~1e-6):",
        "",
        "| model | version | scores | score gap | accuracy cal | accuracy test | coverage cal |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        c = row["conformal"]
        lines.append(
            f"| {row['model']} | {row['version']} | {c['n']} | {c['max_score_gap']:.1e} | "
            f"{c['calibration_accuracy']:.4f} | {row['accuracy']:.4f} | "
            f"{c['calibration_coverage']:.4f} |"
        )
    return lines


def _abstention(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "",
        "## Abstention (`abstain=true`)",
        "",
        "Share of answers that abstain, and why: out of distribution (OOD flag), several labels "
        "in the set, or none.",
        "",
        "| model | version | inputs | alpha | abstained | OOD | several labels | no label |",
        "|---|---:|---|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        conf = row["conformal"]
        for label, by_alpha in row["abstention"].items():
            for alpha, a in by_alpha.items():
                tags = [
                    t
                    for t, v in (("default", conf["default_alpha"]), ("rule", conf["rule_alpha"]))
                    if str(v) == alpha
                ]
                shown = alpha + (f" ({', '.join(tags)})" if tags else "")
                r = a["reasons"]
                lines.append(
                    f"| {row['model']} | {row['version']} | {label} | {shown} | "
                    f"{a['abstained']:.4f} | {r.get('out_of_distribution', 0):.4f} | "
                    f"{r.get('several_labels', 0):.4f} | {r.get('no_label', 0):.4f} |"
                )
    return lines


def markdown(result: dict[str, Any]) -> str:
    rows = result["versions"]
    lines = [
        "# Calibration, prediction sets and abstention",
        "",
        f"`python -m benchmarks.trust --models-dir {result['models_dir']}`, "
        f"{result['created_at']}. Test sets: MNIST and Fashion-MNIST 10,000 images each, Pima "
        "the tutorial split's 154 rows. ECE: top-class confidence. Brier: summed over classes "
        "(images), (p - y)^2 (Pima).",
        "",
        *_calibration(rows),
    ]
    if result.get("pima_oof"):
        lines += _oof(result["pima_oof"])
    lines += _sets(rows) + _abstention(rows)
    return "\n".join(lines) + "\n"
