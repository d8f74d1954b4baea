"""The photo evaluation's pieces on tiny synthetic pictures (no trained model): the baseline,
AUROC, scoring by role and split, and a whole run with a stand-in model."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from benchmarks.photos import evaluate as ev
from benchmarks.photos import generate as gen
from benchmarks.photos import report
from benchmarks.photos.ood_metrics import auroc, photo_ood
from benchmarks.photos.preprocessings import baseline

COUNTS = {"digit": 6, "fashion": 3, "multi": 1, "ood": 4, "canvas": 2, "marks": 2, "framed": 4,
          "tabled": 4, "surfaces": 4}  # fmt: skip


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def test_the_baseline_centres_a_digit_by_its_centre_of_mass() -> None:
    page = np.full((200, 300), 240, np.uint8)
    page[20:90, 200:220] = 20  # a dark bar in the top right corner
    out = baseline(_png(page), "digit")
    assert out is not None and out.shape == (28, 28)
    ys, _xs = np.nonzero(out > 0.5)
    assert ys.max() - ys.min() + 1 == 20  # the longer side fitted to 20 px
    mass = out.sum()
    assert abs((out.sum(axis=1) @ np.arange(28)) / mass - 14) <= 1
    assert abs((out.sum(axis=0) @ np.arange(28)) / mass - 14) <= 1
    assert baseline(_png(np.full((50, 50), 200, np.uint8)), "digit") is None


def test_auroc() -> None:
    assert auroc(np.array([0.0, 1.0]), np.array([2.0, 3.0])) == 1.0
    assert auroc(np.array([2.0, 3.0]), np.array([0.0, 1.0])) == 0.0
    assert auroc(np.array([1.0]), np.array([1.0])) == 0.5
    assert auroc(np.array([]), np.array([1.0])) is None


def test_photo_ood_counts_only_pictures_past_the_blank_check() -> None:
    roles = np.array(["own", "own", "page", "page", "other"])
    scores = np.array([0.0, 1.0, 5.0, 0.0, 9.0])
    flags = scores > 4
    passed = np.array([True, True, True, False, True])
    out = photo_ood(roles, scores, flags, passed)
    assert out["auroc_vs_pages"] == 1.0 and out["pages_past_gate"] == 1 and out["pages"] == 2
    assert out["auroc_vs_other"] == 1.0 and out["own_flagged"] == 0.0
    assert out["pages_answered"] == 0.0  # one flagged, one judged blank
    assert out["other_answered"] == 0.0


def test_score_keeps_splits_apart_and_counts_blank_as_wrong() -> None:
    def item(split: str, role: str, label: int | None) -> dict[str, Any]:
        return {"split": split, "role": role, "label": label, "subset": "digit",
                "kind": "blank", "groups": ["all"]}  # fmt: skip

    items = [item("dev", "own", 3), item("dev", "own", 4), item("holdout", "own", 3),
             item("dev", "page", None)]  # fmt: skip
    passed = np.array([True, False, True, False])
    preds = np.array([3, 4, 1, 0])
    dev = ev.score(items, passed, preds, "dev")
    assert dev["groups"]["all"] == {"n": 2, "correct": 1, "blank": 1}
    assert dev["pages"]["digit"] == {"n": 1, "blank": 1}
    assert ev.score(items, passed, preds, "holdout")["groups"]["all"]["correct"] == 0


def _data() -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    x = np.zeros((20, 28, 28), np.uint8)
    x[:, 5:23, 12:16] = 255
    labels = np.arange(20) % 10
    return (x, labels), (x.copy(), labels.copy())


def test_a_whole_run_with_a_stand_in_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = gen.generate(tmp_path / "set", COUNTS, fonts=[], data=_data())
    versions = [{"name": "mnist", "version": 1, "recipe": "r", "framing": "digit",
                 "test_accuracy": 0.99, "model": b"", "task": None}]  # fmt: skip
    monkeypatch.setattr(ev, "find_versions", lambda _dir: versions)

    def always_seven(_model: bytes, x: np.ndarray) -> np.ndarray:
        return np.tile(np.eye(10)[7], (len(x), 1))

    monkeypatch.setattr(ev, "predict", always_seven)
    result = ev.evaluate(tmp_path, tmp_path / "set", ["baseline"], ["dev", "holdout"])
    json.dumps(result)  # the JSON report can be written
    items = ev.samples(rows, tmp_path / "set", "digit")
    own = [it for it in items if it["role"] == "own"]
    read = [baseline(it["data"], "digit") is not None for it in own]
    runs = {r["split"]: r for r in result["runs"]}
    total = {k: sum(runs[s]["groups"]["all"][k] for s in runs) for k in ("n", "correct", "blank")}
    assert (
        total["n"]
        == len(own)
        == sum(len(r["labels"]) for r in rows if r["subset"] == "multi")
        + sum(r["subset"] in ("digit", "canvas") for r in rows)
    )
    assert total["blank"] == read.count(False)
    assert total["correct"] == sum(
        ok and it["label"] == 7 for it, ok in zip(own, read, strict=True)
    )
    assert {it["role"] for it in items} == {"own", "page", "other", "framed"}
    assert {"format:png", "subset:canvas"} <= set().union(*(r["groups"] for r in runs.values()))
    # the framed, tabled and surfaces subsets are scored apart: each its own group, never in "all"
    apart = [it for it in items if it["role"] == "framed"]
    assert len(apart) == sum(COUNTS[subset] for subset in report.APART)
    assert all("all" not in it["groups"] for it in apart)
    for subset in report.APART:
        n = sum(runs[s]["groups"].get(subset, {"n": 0})["n"] for s in runs)
        assert n == COUNTS[subset]
    text = report.markdown(result)
    assert "| mnist | 1 (r) | 0.9900 | dev |" in text and "## Speed" in text
    assert "## Framings the other subsets do not hold" in text
