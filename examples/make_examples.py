"""Make the example files the README and docs/client.md send: pictures of real test-set images
and a few real Pima records.

    .venv/bin/python examples/make_examples.py        # from the repository root

The pictures are images of the MNIST and Fashion-MNIST **test** sets (never trained on),
upscaled and laid dark on paper or a table as a phone photo would show them, with light from one
side and a little grain. ``two.png`` is only upscaled (light on black, as the demo page's canvas
draws). ``year.jpg`` is the number 2024 written with four test digits, for
``?digits=many``. ``seven.json`` is the MNIST test set's first image (a 7) as the own API's JSON
body: a 28x28 array of 0-255 values. ``patients.csv`` holds the first rows of the Pima table,
under the header the ``predict`` command reads (feature names in lower case, and the
``diabetes`` outcome, which it leaves out). Seeds are fixed, so a rerun with the pinned
libraries writes the same bytes (``tests/test_examples.py`` checks it).
"""

from __future__ import annotations

import csv
import io
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

OUT = Path(__file__).resolve().parent
SEED = 2024
JPEG_QUALITY = 85
PIMA_ROWS = 5


@dataclass(frozen=True)
class Picture:
    """One example picture: which test images, and how it is photographed."""

    file: str
    dataset: Literal["mnist", "fashion_mnist"]
    indices: tuple[int, ...]  # test-set images, left to right
    size: tuple[int, int]  # width, height in pixels
    ground: tuple[int, int, int] | None  # paper or table colour; None: light on black
    ink: tuple[int, int, int] = (30, 30, 30)


PICTURES = (
    Picture("digit.png", "mnist", (0,), (120, 150), (236, 236, 236)),  # a 7, grey paper
    Picture("two.png", "mnist", (1,), (112, 112), None),  # a 2, as drawn on a canvas
    Picture("four.jpg", "mnist", (4,), (150, 200), (243, 236, 222), (28, 34, 62)),  # a 4
    Picture("year.jpg", "mnist", (1, 3, 35, 4), (320, 160), (243, 236, 222), (28, 34, 62)),
    Picture("shoe.png", "fashion_mnist", (11,), (160, 120), (212, 212, 212), (50, 50, 50)),
    Picture("shirt.jpg", "fashion_mnist", (4,), (150, 150), (226, 222, 214), (40, 60, 90)),
)


def ink_strip(images: np.ndarray) -> np.ndarray:
    """Test images side by side, each cut to its inked columns with a small gap between,
    as a number is written; one image is returned as it is. uint8, light on black."""
    if len(images) == 1:
        return images[0]
    parts = []
    for image in images:
        columns = np.flatnonzero(image.max(axis=0) > 0)
        parts.append(image[:, columns[0] : columns[-1] + 1])
        parts.append(np.zeros((image.shape[0], 3), np.uint8))
    return np.concatenate([np.zeros((image.shape[0], 3), np.uint8), *parts], axis=1)


def photograph(picture: Picture, ink: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """``ink`` (uint8, light on black) scaled to about 70% of the picture's height and laid on
    the ground with a lighting gradient and grain; without a ground, only scaled."""
    width, height = picture.size
    box_h = round(0.7 * height)
    box_w = min(round(box_h * ink.shape[1] / ink.shape[0]), width - 8)
    scaled = Image.fromarray(ink, mode="L").resize((box_w, box_h), Image.Resampling.BICUBIC)
    alpha = np.zeros((height, width), np.float32)
    # a little low and to the right of the centre, as a hand-held photo frames it
    top = min((height - box_h) // 2 + height // 20, height - box_h)
    left = min((width - box_w) // 2 + width // 25, width - box_w)
    alpha[top : top + box_h, left : left + box_w] = np.asarray(scaled, np.float32) / 255.0
    if picture.ground is None:
        return Image.fromarray(np.round(alpha * 255.0).astype(np.uint8), mode="L")
    ys = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    xs = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :, None]
    light = 1.0 - 0.05 * ys - 0.03 * xs  # lit from the top left
    grain = rng.normal(0.0, 2.0, (height, width, 1)).astype(np.float32)
    ground = light * np.array(picture.ground, np.float32) + grain
    cover = np.clip(alpha * 1.1, 0.0, 1.0)[..., None]
    pixels = ground * (1.0 - cover) + np.array(picture.ink, np.float32) * cover
    pixels = np.clip(np.round(pixels), 0, 255).astype(np.uint8)
    grey = len(set(picture.ground)) == 1 and len(set(picture.ink)) == 1
    return Image.fromarray(pixels[..., 0] if grey else pixels, mode="L" if grey else "RGB")


def encode(image: Image.Image, file: str) -> bytes:
    buf = io.BytesIO()
    if file.endswith(".jpg"):
        image.save(buf, format="JPEG", quality=JPEG_QUALITY)
    else:
        image.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def pictures() -> dict[str, bytes]:
    """Every example picture, file name -> encoded bytes."""
    from training.datasets import load_images

    test_sets = {name: load_images(name).x_test for name in {p.dataset for p in PICTURES}}
    out = {}
    for n, picture in enumerate(PICTURES):
        images = test_sets[picture.dataset][list(picture.indices)]
        rng = np.random.default_rng([SEED, n])
        out[picture.file] = encode(photograph(picture, ink_strip(images), rng), picture.file)
    return out


def patients_csv() -> bytes:
    """The first rows of the Pima table with a header of feature names and the outcome."""
    from training.datasets import PIMA_FEATURES, load_pima

    data = load_pima()
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([*PIMA_FEATURES, "diabetes"])
    for row, outcome in zip(data.features[:PIMA_ROWS], data.outcome[:PIMA_ROWS], strict=True):
        writer.writerow([f"{value:g}" for value in row] + [int(outcome)])
    return buf.getvalue().encode()


def seven_json() -> bytes:
    """The MNIST test set's first image (a 7) as the own API's JSON body, one pixel row a line."""
    from training.datasets import load_images

    image = load_images("mnist").x_test[0]
    rows = [json.dumps(row, separators=(",", ":")) for row in image.tolist()]
    body = '{"instances": [[\n' + ",\n".join(rows) + '\n]], "scale": "byte", "top_k": 3}\n'
    return body.encode()


def examples() -> dict[str, bytes]:
    """Every example file, file name -> contents."""
    return {**pictures(), "patients.csv": patients_csv(), "seven.json": seven_json()}


def main(argv: list[str] | None = None) -> int:
    out = Path(argv[0]) if argv else OUT
    for name, data in examples().items():
        (out / name).write_bytes(data)
        print(f"{out / name}  {len(data):,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
