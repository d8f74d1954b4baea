"""The version's ``report/`` folder: plots (matplotlib, Agg) and ``report.md``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import roc_curve

from training.calibration import reliability
from training.metrics import class_probabilities, predicted_classes

HISTORY_KEYS = ("loss", "accuracy", "val_loss")
DPI = 100


@dataclass
class ReportData:
    dataset: str
    description: str
    labels: list[str]
    recipe: dict[str, Any]
    training: dict[str, Any]
    metrics: dict[str, Any]
    data_source: str
    y_test: np.ndarray
    probs: np.ndarray
    samples: np.ndarray | None = None  # raw test images for samples.png
    threshold: float | None = None  # a sigmoid model's decision threshold
    probs_before: np.ndarray | None = None  # before calibration (``probs`` are after it)
    calibration: dict[str, Any] | None = None  # metadata.calibration
    conformal: dict[str, Any] | None = None  # metadata.conformal


def plot_history(history: dict[str, list[float]], path: Path) -> None:
    """Loss, accuracy and val_loss per epoch, as the tutorial plots them."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for key in HISTORY_KEYS:
        if history.get(key):
            ax.plot(range(1, len(history[key]) + 1), history[key], marker=".", label=key)
    ax.set_xlabel("epoch")
    ax.set_title("training history")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def plot_confusion_matrix(matrix: list[list[int]], labels: list[str], path: Path) -> None:
    counts = np.asarray(matrix)
    size = 3 + 0.5 * len(labels)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(counts, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    limit = counts.max() / 2 if counts.size else 0
    for (i, j), value in np.ndenumerate(counts):
        colour = "white" if value > limit else "black"
        ax.text(j, i, str(value), ha="center", va="center", color=colour, fontsize=8)
    ax.set_title("confusion matrix (test set)")
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def plot_samples(
    images: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray, labels: list[str], path: Path
) -> None:
    """A 5x5 grid of the first test images with their true and predicted labels."""
    fig = plt.figure(figsize=(10, 10))
    for i in range(min(25, len(images))):
        ax = fig.add_subplot(5, 5, i + 1)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.imshow(images[i], cmap=plt.cm.binary)
        ok = y_true[i] == y_pred[i]
        ax.set_xlabel(
            f"{labels[y_pred[i]]} (true: {labels[y_true[i]]})",
            color="tab:blue" if ok else "tab:red",
            fontsize=8,
        )
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def plot_roc(y_true: np.ndarray, p_positive: np.ndarray, auc: float | None, path: Path) -> None:
    fpr, tpr, _ = roc_curve(y_true, p_positive)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot(fpr, tpr, label=f"ROC-AUC = {auc:.3f}" if auc is not None else "ROC")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="chance")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title("ROC curve (test set)")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def plot_reliability(y_true: np.ndarray, before: np.ndarray, after: np.ndarray, path: Path) -> None:
    """Reliability diagram (accuracy against top-class confidence per bin), before and after
    calibration, with the share of examples per bin below."""
    fig, (ax, counts) = plt.subplots(
        2, 1, figsize=(5, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect calibration")
    for name, probs, marker in (("before", before, "o"), ("after", after, "s")):
        bins = reliability(y_true, probs)
        conf, acc = np.array(bins["confidence"]), np.array(bins["accuracy"])
        ok = np.isfinite(conf)
        ax.plot(conf[ok], acc[ok], marker=marker, label=f"{name} calibration")
        share = np.array(bins["count"]) / max(len(y_true), 1)
        centres = (np.arange(len(share)) + 0.5) / len(share)
        offset = -0.01 if name == "before" else 0.01
        counts.bar(centres + offset, share, width=0.02, label=name)
    ax.set_ylabel("accuracy")
    ax.set_title("reliability diagram (test set)")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left")
    counts.set_yscale("log")
    counts.set_xlabel("top-class confidence")
    counts.set_ylabel("share")
    counts.set_xlim(0, 1)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def _calibration_lines(data: ReportData) -> list[str]:
    cal, conf = data.calibration, data.conformal
    lines: list[str] = []
    if cal is not None:
        params = ", ".join(f"{k} = {v:.4f}" for k, v in cal["params"].items())
        split = cal["split"]
        lines += [
            "## Calibration",
            "",
            f"Method **{cal['method']}** ({params}), fitted on {split['examples']} examples "
            f"held out from the training split (seed {split['seed']}); measured on the "
            f"{cal['measured_on']}.",
            "",
            "| | ECE | Brier | accuracy |",
            "|---|---|---|---|",
        ]
        for key in ("before", "after"):
            row = cal[key]
            lines.append(
                f"| {key} | {row['ece']:.4f} | {row['brier']:.4f} | {row['accuracy']:.4f} |"
            )
        lines.append("")
    if conf is not None:
        lines += [
            "## Prediction sets (split conformal, LAC)",
            "",
            f"Scores of {conf['n']} calibration examples; default alpha {conf['alpha']}. "
            "On the test split:",
            "",
            "| alpha | coverage | mean set size | one label | empty |",
            "|---|---|---|---|---|",
        ]
        for row in conf["test"]:
            lines.append(
                f"| {row['alpha']} | {row['coverage']:.4f} | {row['mean_set_size']:.3f} | "
                f"{row['single_label']:.4f} | {row['empty']:.4f} |"
            )
        lines.append("")
    return lines


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def markdown(data: ReportData, version: str) -> str:
    m = data.metrics
    lines = [
        f"# {data.dataset} version {version}",
        "",
        data.description,
        "",
        f"Recipe **{data.recipe['name']}**, seed {data.recipe.get('seed')}; "
        f"{data.training['epochs_run']} epochs in {data.training['seconds']:.1f} s. "
        f"Data: {data.data_source}.",
        "",
        "## Test-set metrics",
        "",
        "| metric | value |",
        "|---|---|",
    ]
    for key in ("accuracy", "loss", "roc_auc", "ece"):
        if m.get(key) is not None:
            lines.append(f"| {key} | {_fmt(m[key])} |")
    if m.get("cv"):
        cv = m["cv"]
        where = f"{cv.get('folds')}-fold stratified CV x{cv.get('repeats')}, all rows"
        lines.append(
            f"| accuracy ({where}) | {cv['accuracy_mean']:.4f} ± {cv['accuracy_std']:.4f} |"
        )
        lines.append(f"| ROC-AUC ({where}) | {cv['auc_mean']:.4f} ± {cv['auc_std']:.4f} |")
    if data.threshold is not None:
        lines.append(f"| decision threshold | {data.threshold:.4f} |")
    lines += ["", "| class | precision | recall |", "|---|---|---|"]
    for label, pr in m["per_class"].items():
        lines.append(f"| {label} | {pr['precision']:.4f} | {pr['recall']:.4f} |")
    lines += ["", "## Confusion matrix (rows: true, columns: predicted)", ""]
    lines.append("| | " + " | ".join(data.labels) + " |")
    lines.append("|---" * (len(data.labels) + 1) + "|")
    for label, row in zip(data.labels, m["confusion_matrix"], strict=True):
        lines.append(f"| **{label}** | " + " | ".join(str(v) for v in row) + " |")
    lines += ["", *_calibration_lines(data)]
    lines += ["## Hyper-parameters", "", "```json"]
    lines += [json.dumps(data.recipe.get("hyperparameters", {}), indent=2), "```", ""]
    plots = ["history.png", "confusion_matrix.png"]
    plots += ["samples.png"] if data.samples is not None else []
    plots += ["roc.png"] if m.get("roc_auc") is not None else []
    plots += ["reliability.png"] if data.probs_before is not None else []
    lines += ["## Plots", ""] + [f"![{p}]({p})" for p in plots] + [""]
    return "\n".join(lines)


def write_report(report_dir: Path, data: ReportData) -> None:
    """Write every plot and report.md into ``report_dir`` (which exists)."""
    plot_history(data.training.get("history", {}), report_dir / "history.png")
    plot_confusion_matrix(
        data.metrics["confusion_matrix"], data.labels, report_dir / "confusion_matrix.png"
    )
    y_true = np.asarray(data.y_test, dtype=np.int64)
    if data.samples is not None:
        y_pred = predicted_classes(data.probs, data.threshold)
        plot_samples(data.samples, y_true, y_pred, data.labels, report_dir / "samples.png")
    if data.metrics.get("roc_auc") is not None:
        p_pos = class_probabilities(data.probs)[:, 1]
        plot_roc(y_true, p_pos, data.metrics["roc_auc"], report_dir / "roc.png")
    if data.probs_before is not None:
        plot_reliability(y_true, data.probs_before, data.probs, report_dir / "reliability.png")
    (report_dir / "report.md").write_text(markdown(data, report_dir.parent.name), encoding="utf-8")
