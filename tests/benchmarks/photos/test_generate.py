"""The photo set's generator on tiny synthetic test sets: determinism, labels, sizes, split."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.photos import generate as gen

COUNTS = {"digit": 9, "fashion": 4, "multi": 2, "ood": 8, "canvas": 2, "marks": 3, "framed": 8,
          "tabled": 8, "surfaces": 8}  # fmt: skip


def _data() -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    x = np.zeros((20, 28, 28), np.uint8)
    x[:, 5:23, 12:16] = 255  # a bar: a "1"
    labels = np.arange(20) % 10
    return (x, labels), (x.copy(), labels.copy())


def test_generation_is_deterministic_with_complete_labels(tmp_path: Path) -> None:
    fonts = gen.available_fonts()[:1]
    first = gen.generate(tmp_path / "a", COUNTS, fonts=fonts, data=_data())
    second = gen.generate(tmp_path / "b", COUNTS, fonts=fonts, data=_data())
    assert first == second
    assert len(first) == sum(COUNTS.values())
    for row in first:
        data = (tmp_path / "a" / row["file"]).read_bytes()
        assert data == (tmp_path / "b" / row["file"]).read_bytes()
        img = Image.open(tmp_path / "a" / row["file"])
        assert (img.width, img.height) == (row["width"], row["height"])
        assert row["split"] == gen.split_of(row["subset"], row["index"])
        if row["subset"] == "framed":  # one digit, framed each way in turn
            assert row["label"] in range(10) and row["framing"] == "digit"
            assert row["source"] == f"framed-{gen.FRAMINGS[row['index'] % len(gen.FRAMINGS)]}"
            assert row["item"].startswith("mnist-test-")
        if row["subset"] == "tabled":  # one digit, on a sheet lying each way in turn
            assert row["label"] in range(10) and row["framing"] == "digit"
            assert row["source"] == f"tabled-{gen.TABLINGS[row['index'] % len(gen.TABLINGS)]}"
            assert row["item"].startswith("mnist-test-") and row["scene"] == "table"
        if row["subset"] == "surfaces":  # one digit, on each surface in turn
            kind = gen.SURFACES[row["index"] % len(gen.SURFACES)]
            assert row["label"] in range(10) and row["framing"] == "digit"
            assert row["source"] == f"surfaces-{kind}" and row["item"].startswith("mnist-test-")
            assert kind != "askew" or any(t.startswith("askew-") for t in row["tags"])
            assert kind != "light-ink" or "gel-ink" in row["tags"]
        if row["subset"] in ("digit", "fashion"):
            assert row["label"] in range(10)
            assert row["framing"] == ("digit" if row["subset"] == "digit" else "item")
        if row["subset"] in ("ood", "marks"):
            assert row["label"] is None and row["framing"] is None
        if row["subset"] == "canvas":  # the demo pad's upload: a 280x280 PNG
            assert (row["width"], row["height"], row["format"]) == (280, 280, "png")
            assert row["label"] in range(10) and row["framing"] == "digit"
        if row["subset"] == "multi":
            assert len(row["labels"]) == len(row["boxes"]) >= 2
            for x0, y0, x1, y1 in row["boxes"]:
                assert 0 <= x0 < x1 <= row["width"] and 0 <= y0 < y1 <= row["height"]
            lefts = [b[0] for b in row["boxes"]]
            assert lefts == sorted(lefts)  # left to right, as the number reads
        if row["size_class"] == "icon":
            assert max(row["width"], row["height"]) <= 64
    manifest = (tmp_path / "a" / "manifest.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in manifest] == first
    mnist_rows = [r for r in first if r["subset"] == "digit" and r["source"] == "mnist"]
    assert all(r["item"].startswith("mnist-test-") for r in mnist_rows)


def test_a_regenerated_set_keeps_its_manifest_hash(tmp_path: Path) -> None:
    fonts = gen.available_fonts()[:1]
    rows = gen.generate(tmp_path / "a", COUNTS, fonts=fonts, data=_data())
    again = gen.generate(tmp_path / "a", COUNTS, fonts=fonts, data=_data())  # over the old run
    assert (
        gen.summarise(rows, fonts)["manifest_sha256"]
        == gen.summarise(again, fonts)["manifest_sha256"]
    )
    files = {p.relative_to(tmp_path / "a").as_posix() for p in (tmp_path / "a").glob("*/*")}
    assert files == {r["file"] for r in again}


def test_some_pictures_are_webp() -> None:
    formats = set()
    for index in range(40):
        img = Image.new("RGB", (64, 64), (240, 240, 240))
        _data, ext = gen.encode(img, "300px", gen.rng_for("digit", index + 10**6), [])
        formats.add(ext)
    assert formats == {"jpg", "png", "webp"}


def test_marks_are_ink_without_a_digit() -> None:
    for index in range(len(gen.MARK_KINDS)):
        pic = gen.marks_picture(index)
        assert pic.label is None and pic.source == gen.MARK_KINDS[index]
        assert pic.image is not None
        grey = np.asarray(pic.image.convert("L"), np.float32)
        assert grey.max() - grey.min() > 60  # there is ink on the page


def test_split_and_size_rules_are_fixed() -> None:
    holdout = [i for i in range(1000) if gen.split_of("digit", i) == "holdout"]
    assert 150 < len(holdout) < 250  # about 20%
    assert gen.split_of("digit", 7) == gen.split_of("digit", 7)
    assert gen.size_class_of("digit", gen.PHONE_EVERY["digit"] // 2) == "phone"
    rng = np.random.default_rng(0)
    assert gen._size("phone", rng) == (3000, 4000)
    w, _ = gen._size("300px", rng)
    assert 240 <= w <= 600


def test_pen_trajectories_draw_every_digit() -> None:
    for label in range(10):
        mask = gen.pen_mask(label, np.random.default_rng(label), [])
        assert mask.max() > 0.9
        assert mask.shape[0] > 100  # trimmed to the digit, drawn about 180 px tall
