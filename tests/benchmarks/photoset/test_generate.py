"""The photo set's generator and the harness's baseline, on synthetic sources (no model)."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmarks.photoset import generate as gen
from benchmarks.photoset.evaluate import auroc, baseline, fit_and_centre


def _sources(fonts: list[Path] | None = None) -> gen.Sources:
    rng = np.random.default_rng(0)
    x = np.zeros((20, 28, 28), np.float32)
    x[:, 6:22, 11:16] = 1.0  # a bar: a "1"
    return gen.Sources(
        mnist_x=x, mnist_y=np.ones(20, int), fashion_x=x.copy(), fashion_y=np.ones(20, int),
        fonts=[] if fonts is None else fonts,
        mnist_order=rng.permutation(20), fashion_order=rng.permutation(20),
    )  # fmt: skip


def test_generation_is_deterministic_and_the_manifest_complete(tmp_path: Path) -> None:
    first = gen.generate(tmp_path / "a", 20, phones=False, sources=_sources())
    second = gen.generate(tmp_path / "b", 20, phones=False, sources=_sources())
    for a, b in zip(first["items"], second["items"], strict=True):
        assert a == b
        data = (tmp_path / "a" / a["file"]).read_bytes()
        assert data == (tmp_path / "b" / b["file"]).read_bytes()
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    kinds = {it["kind"] for it in manifest["items"]}
    assert kinds == {"mnist", "fashion", "ood"}  # no fonts given: no font pictures
    assert manifest["fonts"] == [] and len(manifest["fonts_missing"]) == len(gen.FONT_FILES)
    for it in manifest["items"]:
        assert {"file", "label", "model", "conditions", "split", "size"} <= it.keys()
        assert it["model"] in ("mnist", "fashion_mnist", "none")
        assert it["split"] in ("dev", "holdout")
        assert (it["label"] is None) == (it["model"] == "none")
        with Image.open(tmp_path / "a" / it["file"]) as img:
            assert list(img.size) == it["size"]
        if it["size_class"] == "icon":
            assert 28 <= it["size"][0] <= 64


def test_the_split_is_a_fixed_hash_and_about_a_fifth() -> None:
    splits = [gen.split_of("mnist", i) for i in range(2000)]
    assert 0.17 < splits.count("holdout") / 2000 < 0.23
    digest = hashlib.sha256(b"mnist:7").hexdigest()
    assert gen.split_of("mnist", 7) == ("holdout" if int(digest[:8], 16) % 5 == 0 else "dev")
    # a picture keeps its split (and content) whatever the count
    small = {(s.kind, s.index): s.split for s in gen.build_specs(20, 0, phones=False)}
    big = {(s.kind, s.index): s.split for s in gen.build_specs(200, 0, phones=False)}
    assert all(big[key] == split for key, split in small.items())


def test_a_phone_sized_picture_is_3000x4000() -> None:
    data, entry = gen.render(gen.Spec("mnist", 3, "phone"), _sources())
    assert entry["size"] == [3000, 4000] and "phone" in entry["conditions"]
    with Image.open(io.BytesIO(data)) as img:
        assert img.format == "JPEG" and img.size == (3000, 4000)


def test_the_full_set_has_about_ten_phone_pictures() -> None:
    specs = gen.build_specs(1500, 12)
    assert 8 <= sum(s.size_class == "phone" for s in specs) <= 12
    assert len(specs) > 1900


@pytest.mark.skipif(not gen.available_fonts(), reason="no handwriting font installed")
def test_font_digits_render() -> None:
    fonts = gen.available_fonts()
    _data, entry = gen.render(gen.Spec("font", 0, "300px"), _sources(fonts))
    assert entry["label"] == 0 and entry["source"] == f"font:{fonts[0].name}"


def test_the_baseline_centres_a_digit_by_its_centre_of_mass() -> None:
    page = np.full((200, 300), 240, np.uint8)
    page[20:90, 200:220] = 20  # a dark bar in the top right corner
    buf = io.BytesIO()
    Image.fromarray(page).save(buf, format="PNG")
    out = baseline(buf.getvalue())
    assert out is not None and out.shape == (28, 28)
    ys, _xs = np.nonzero(out > 0.5)
    assert ys.max() - ys.min() + 1 == 20  # the longer side fitted to 20 px
    mass = out.sum()
    cy = (out.sum(axis=1) @ np.arange(28)) / mass
    cx = (out.sum(axis=0) @ np.arange(28)) / mass
    assert abs(cy - 14) <= 1 and abs(cx - 14) <= 1
    blank = io.BytesIO()
    Image.new("L", (50, 50), 200).save(blank, format="PNG")
    assert baseline(blank.getvalue()) is None
    assert fit_and_centre(np.ones((10, 40), np.float32), "item").shape == (28, 28)


def test_auroc() -> None:
    assert auroc(np.array([0.0, 1.0]), np.array([2.0, 3.0])) == 1.0
    assert auroc(np.array([1.0]), np.array([1.0])) == 0.5
    assert auroc(np.array([]), np.array([1.0])) is None
