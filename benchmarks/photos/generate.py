"""Generate the labelled photo-and-drawing set: ``python -m benchmarks.photos.generate``.

Nine subsets, each numbered from 0 and seeded by ``(SEED, subset, index)``, so a picture does
not change when the counts do:

- ``digit``: one digit per picture, from three sources: real MNIST *test* digits (a fixed
  permutation of the test set) upscaled and used as ink; digits typed in handwriting fonts from
  Debian packages (the ones installed are listed in the manifest); synthetic pen trajectories
  (a few control points per digit shape, jittered, slanted, drawn with a round pen of varied
  width);
- ``fashion``: Fashion-MNIST *test* items rendered as photographed objects (the item's intensity
  shades a fabric colour) on light, dark, coloured or textured backgrounds;
- ``multi``: numbers of 2-5 digits on paper, with per-digit labels and boxes;
- ``ood``: pages without a digit (label ``null``): blank, near-blank (dust), gradient or shadow
  only, textured paper, empty ruled or squared paper, noise, an empty drawing canvas;
- ``canvas``: digits drawn on the demo page's pad in headless Chromium by ``canvas.py`` (kept in
  ``canvas/``), uploaded as the page does (a 280x280 PNG);
- ``marks``: paper with ink that is no digit (label ``null``): a near-horizontal stroke, a flat
  arc, a scribble;
- ``framed``: one real MNIST test digit (a part of the permutation no other subset uses) framed
  as the others are not: cropped tight around it, on a sheet of paper lying on a darker table,
  in a box drawn around it, or circled. Scored apart from the other digits;
- ``tabled``: the same on a sheet turned 10-45 degrees, a sticky note, a sheet running off one
  edge, or a sheet held up against a dark room. Scored apart;
- ``surfaces``: the same in chalk on a dark board, on ruled paper photographed 1-5 degrees
  askew, on a page mostly in deep shadow, or in a light-coloured gel ink. Scored apart.

A digit picture is either a photo (off-white or tinted paper, optional texture, ruled lines or
squares, lighting gradient, soft shadow, small rotation, blur, grain or noise) or a drawing (flat
dark-on-white, light-on-black as the demo canvas, or dark strokes on a transparent PNG). Files are
JPEG (quality 35-95), PNG or WebP. Sizes: ``icon`` (28-64 px), ``300px`` (240-600 px wide) and
``phone`` (3000x4000 JPEG; a few per subset).

Split rule: a picture is in ``holdout`` when
``int(sha256(f"{subset}:{index}").hexdigest()[:8], 16) % 5 == 0`` (about 20%), else in ``dev``.
Every choice (thresholds, window sizes) is made on ``dev`` only.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import math
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

SEED = 15_2026
DEFAULT_OUT = Path(__file__).resolve().parent / ".cache"
SUMMARY_FILE = Path(__file__).resolve().parent / "summary.json"
CANVAS_DIR = Path(__file__).resolve().parent / "canvas"  # drawings made by canvas.py
DATA_CACHE = Path(os.environ.get("TRAIN_CACHE_DIR", os.path.expanduser("~/.cache/digitserve")))
# New subsets go at the end: a subset's position seeds its pictures.
SUBSETS = ("digit", "fashion", "multi", "ood", "canvas", "marks", "framed", "tabled", "surfaces")
COUNTS = {"digit": 1500, "fashion": 400, "multi": 80, "ood": 120, "canvas": 100, "marks": 60,
          "framed": 200, "tabled": 100, "surfaces": 100}  # fmt: skip
PHONE = (3000, 4000)
PHONE_EVERY = {"digit": 100, "fashion": 100, "multi": 40, "ood": 40, "canvas": 0, "marks": 40,
               "framed": 40, "tabled": 20, "surfaces": 20}  # fmt: skip
WEBP_SHARE = 0.35  # of the pictures not saved as JPEG: phones and browsers save WebP too
CANVAS = 256  # ink masks are drawn at this size, then scaled into the picture
FONT_FILES = (  # relative to /usr/share/fonts; missing ones are skipped
    "truetype/fifthhorseman/dkg.ttf",
    "truetype/fifthhorseman/dkgBd.ttf",
    "truetype/breip/Breip.ttf",
    "truetype/humor-sans/Humor-Sans.ttf",
    "truetype/femkeklaver/femkeklaver.ttf",
    "opentype/dancingscript/DancingScript-Regular.otf",
    "opentype/comic-neue/ComicNeue-Regular.otf",
    "opentype/comic-neue/ComicNeue-Bold.otf",
    "opentype/kaushanscript/KaushanScript-Regular.otf",
    "truetype/klee/KleeOne-Regular.ttf",
    "truetype/klee/KleeOne-SemiBold.ttf",
    "truetype/kristi/Kristi.ttf",
    "truetype/rufscript/Rufscript010.ttf",
    "truetype/fifthhorseman/dkgIt.ttf",
    "opentype/dancingscript/DancingScript-Bold.otf",
    "opentype/comic-neue/ComicNeue-Light.otf",
    "opentype/comic-neue/ComicNeue-Italic.otf",
)
FONT_ROOT = Path("/usr/share/fonts")
DIGIT_SOURCES = ("mnist", "font", "pen")
SCENES = ("plain", "tinted", "textured", "ruled", "squared", "gradient", "shadow", "drawing")
DRAWINGS = ("dark-on-white", "light-on-black", "transparent")
BACKGROUNDS = ("light", "dark", "coloured", "textured")
OOD_KINDS = ("blank", "near-blank", "gradient", "shadow", "textured", "lined", "noise", "canvas")
MARK_KINDS = ("stroke", "arc", "scribble")  # ink that is no digit
# how a single digit is framed in the "framed" subset: cropped tight around it, on a sheet lying
# on a darker table, in a box drawn around it, or circled
FRAMINGS = ("tight", "sheet", "boxed", "circled")
FRAMED_FIRST = 7000  # the framed subset's MNIST test digits: the permutation from here on
# how the sheet lies in the "tabled" subset: turned 10-45 degrees, a sticky note, running off
# one edge of the picture, or held up against a dark room
TABLINGS = ("turned", "note", "off-edge", "held")
TABLED_FIRST = 7500  # the tabled subset's MNIST test digits: the permutation from here on
# what the digit is written on or with in the "surfaces" subset: light chalk or marker on a dark
# board, ruled paper photographed askew, a page mostly in deep shadow, or a light-coloured ink
SURFACES = ("board", "askew", "shadowed", "light-ink")
SURFACES_FIRST = 7700  # the surfaces subset's MNIST test digits: the permutation from here on


def split_of(subset: str, index: int) -> str:
    """``holdout`` for a fixed ~20% of each subset (a hash of subset and index), else ``dev``."""
    digest = hashlib.sha256(f"{subset}:{index}".encode()).hexdigest()
    return "holdout" if int(digest[:8], 16) % 5 == 0 else "dev"


def rng_for(subset: str, index: int) -> np.random.Generator:
    return np.random.default_rng([SEED, SUBSETS.index(subset), index])


def available_fonts(root: Path = FONT_ROOT) -> list[Path]:
    return [root / rel for rel in FONT_FILES if (root / rel).is_file()]


# ------------------------------------------------------------------ test sets


def _read_idx(path: Path) -> np.ndarray:
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    dims = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims))
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * dims).reshape(shape)


def load_test_set(name: str) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (n, 28, 28), labels) of a data set's *test* split, from the data cache
    (``python -m training.datasets all`` fills it)."""
    folder = DATA_CACHE / name
    for suffix in ("", ".gz"):
        images = folder / f"t10k-images-idx3-ubyte{suffix}"
        labels = folder / f"t10k-labels-idx1-ubyte{suffix}"
        if images.is_file() and labels.is_file():
            return _read_idx(images), _read_idx(labels)
    from training.datasets import fetch  # fetches, verifies and caches

    data: Any = fetch(name)
    return np.asarray(data.x_test), np.asarray(data.y_test)


# ------------------------------------------------------------------ ink masks (float32, 0-1)


def _trim(mask: np.ndarray, level: float = 0.05) -> np.ndarray:
    rows = np.flatnonzero(mask.max(axis=1) > level)
    cols = np.flatnonzero(mask.max(axis=0) > level)
    if rows.size == 0:
        return mask
    return mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def _f(img: Image.Image) -> np.ndarray:
    return np.asarray(img, np.float32) / 255.0


def _l(mask: np.ndarray) -> Image.Image:
    return Image.fromarray(np.round(np.clip(mask, 0, 1) * 255).astype(np.uint8))


def _pen_width(mask: np.ndarray, rng: np.random.Generator, tags: list[str]) -> np.ndarray:
    """Bolder (dilate) or finer (erode) strokes, at canvas scale."""
    r = rng.random()
    if r < 0.25:
        tags.append("pen-bold")
        return _f(_l(mask).filter(ImageFilter.MaxFilter(int(rng.choice([5, 7, 9, 13])))))
    if r < 0.4:
        tags.append("pen-fine")
        return _f(_l(mask).filter(ImageFilter.MinFilter(int(rng.choice([3, 5])))))
    return mask


def mnist_mask(digit: np.ndarray, rng: np.random.Generator, tags: list[str]) -> np.ndarray:
    """A 28x28 test digit as crisp ink on the canvas: bicubic upscale, then a contrast curve so
    the strokes have a pen's solid core instead of a 9x upscale's blur."""
    big = _f(Image.fromarray(digit).resize((CANVAS, CANVAS), Image.Resampling.BICUBIC))
    mask = np.clip((big - 0.25) / 0.4, 0.0, 1.0)
    return _trim(_pen_width(mask, rng, tags))


def font_mask(font: Path, label: int, rng: np.random.Generator, tags: list[str]) -> np.ndarray:
    face = ImageFont.truetype(str(font), int(rng.integers(120, 180)))
    img = Image.new("L", (CANVAS + 64, CANVAS + 64), 0)
    draw = ImageDraw.Draw(img)
    left, top, right, bottom = draw.textbbox((0, 0), str(label), font=face)
    xy = ((img.width - right - left) / 2, (img.height - bottom - top) / 2)
    draw.text(xy, str(label), fill=255, font=face)
    return _trim(_pen_width(_f(img), rng, tags))


# Control points of each digit's strokes in a unit box (x right, y down); a stroke is a polyline
# smoothed by Catmull-Rom. Several shapes per digit (open or closed 4, barred 7, ...).
_STROKES: dict[int, list[list[list[tuple[float, float]]]]] = {
    0: [[[(0.5, 0.03), (0.2, 0.2), (0.15, 0.55), (0.3, 0.9), (0.6, 0.97), (0.82, 0.7),
          (0.85, 0.35), (0.7, 0.08), (0.5, 0.03), (0.35, 0.1)]]],
    1: [[[(0.55, 0.03), (0.5, 0.5), (0.45, 0.97)]],
        [[(0.3, 0.22), (0.58, 0.03), (0.52, 0.5), (0.48, 0.97)]]],
    2: [[[(0.15, 0.3), (0.35, 0.06), (0.7, 0.05), (0.82, 0.3), (0.6, 0.6), (0.15, 0.95),
          (0.5, 0.93), (0.88, 0.95)]]],
    3: [[[(0.15, 0.15), (0.5, 0.02), (0.8, 0.18), (0.7, 0.4), (0.4, 0.48), (0.75, 0.58),
          (0.85, 0.8), (0.55, 0.97), (0.15, 0.88)]]],
    4: [[[(0.6, 0.03), (0.35, 0.4), (0.1, 0.68), (0.5, 0.68), (0.9, 0.66)],
         [(0.68, 0.3), (0.67, 0.65), (0.66, 0.97)]],
        [[(0.2, 0.03), (0.15, 0.55), (0.5, 0.58), (0.85, 0.55)],
         [(0.75, 0.03), (0.73, 0.5), (0.72, 0.97)]]],
    5: [[[(0.82, 0.04), (0.5, 0.05), (0.25, 0.06), (0.2, 0.45), (0.55, 0.38), (0.82, 0.6),
          (0.7, 0.92), (0.4, 0.97), (0.15, 0.85)]]],
    6: [[[(0.72, 0.03), (0.4, 0.25), (0.2, 0.6), (0.3, 0.92), (0.6, 0.96), (0.8, 0.75),
          (0.6, 0.52), (0.3, 0.6), (0.22, 0.72)]]],
    7: [[[(0.12, 0.06), (0.5, 0.05), (0.88, 0.06), (0.6, 0.5), (0.4, 0.97)]],
        [[(0.12, 0.06), (0.5, 0.05), (0.88, 0.06), (0.6, 0.5), (0.4, 0.97)],
         [(0.3, 0.5), (0.55, 0.5), (0.8, 0.5)]]],
    8: [[[(0.72, 0.15), (0.5, 0.03), (0.25, 0.15), (0.3, 0.38), (0.5, 0.5), (0.75, 0.65),
          (0.7, 0.92), (0.5, 0.97), (0.25, 0.88), (0.28, 0.65), (0.5, 0.5), (0.7, 0.35),
          (0.72, 0.15)]]],
    9: [[[(0.78, 0.25), (0.55, 0.04), (0.25, 0.15), (0.25, 0.4), (0.5, 0.5), (0.78, 0.3),
          (0.75, 0.6), (0.65, 0.97)]]],
}  # fmt: skip


def _catmull_rom(points: np.ndarray, per_segment: int = 12) -> np.ndarray:
    p = np.vstack([points[:1], points, points[-1:]])
    t = np.linspace(0.0, 1.0, per_segment, endpoint=False)[:, None]
    out = []
    for i in range(1, len(p) - 2):
        p0, p1, p2, p3 = p[i - 1], p[i], p[i + 1], p[i + 2]
        out.append(
            0.5
            * (
                2 * p1
                + (-p0 + p2) * t
                + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2
                + (-p0 + 3 * p1 - 3 * p2 + p3) * t**3
            )
        )
    out.append(p[-2:-1])
    return np.vstack(out)


def pen_geometry(
    label: int, rng: np.random.Generator
) -> tuple[list[list[tuple[float, float]]], float, float, np.ndarray]:
    """A digit shape of ``label`` and a writer's hand for it: (strokes, slant, aspect, rotation)."""
    shapes = _STROKES[label]
    strokes = shapes[int(rng.integers(0, len(shapes)))]
    slant = float(rng.uniform(-0.3, 0.15))
    aspect = float(rng.uniform(0.65, 1.1))
    angle = math.radians(float(rng.uniform(-8, 8)))
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    return strokes, slant, aspect, rot


def pen_paths(
    geometry: tuple[list[list[tuple[float, float]]], float, float, np.ndarray],
    rng: np.random.Generator,
) -> list[np.ndarray]:
    """The pen's paths (one (n, 2) array per stroke, x right, y down), about one unit tall and
    centred on 0: the control points jittered, slanted, squeezed, rotated and smoothed."""
    strokes, slant, aspect, rot = geometry
    paths = []
    for stroke in strokes:
        pts = np.array(stroke, np.float64) + rng.normal(0.0, 0.025, (len(stroke), 2))
        pts[:, 0] = (pts[:, 0] - 0.5) * aspect - slant * (pts[:, 1] - 0.5)
        pts[:, 1] = pts[:, 1] - 0.5
        paths.append(_catmull_rom(pts @ rot.T))
    return paths


def pen_mask(label: int, rng: np.random.Generator, tags: list[str]) -> np.ndarray:
    """A synthetic pen trajectory of ``label``: jittered control points, random slant, width
    and aspect, drawn with a round pen (2-14% of the digit's height)."""
    geometry = pen_geometry(label, rng)
    height = 180.0
    width_frac = float(rng.choice([rng.uniform(0.02, 0.05), rng.uniform(0.05, 0.1),
                                   rng.uniform(0.1, 0.14)]))  # fmt: skip
    tags.append("pen-fine" if width_frac < 0.05 else "pen-bold" if width_frac >= 0.1 else "pen")
    pen = max(2, round(width_frac * height))
    img = Image.new("L", (CANVAS + 96, CANVAS + 96), 0)
    draw = ImageDraw.Draw(img)
    for path in pen_paths(geometry, rng):
        xy = [(float(x), float(y)) for x, y in path * height + (CANVAS + 96) / 2]
        draw.line(xy, fill=255, width=pen, joint="curve")
        r = pen / 2
        for x, y in (xy[0], xy[-1]):
            draw.ellipse((x - r, y - r, x + r, y + r), fill=255)
    return _trim(_f(img.filter(ImageFilter.GaussianBlur(1.0))))


# ------------------------------------------------------------------ paper, light and camera


def _field(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    """Smooth noise in about [-1, 1], (h, w), from a grid of ``cells`` along the longer side."""
    gh = max(2, round(cells * h / max(h, w)))
    gw = max(2, round(cells * w / max(h, w)))
    grid = rng.uniform(-1.0, 1.0, (gh, gw)).astype(np.float32)
    return np.asarray(Image.fromarray(grid).resize((w, h), Image.Resampling.BICUBIC), np.float32)


def paper(rng: np.random.Generator, h: int, w: int, scene: str) -> np.ndarray:
    """Paper (h, w, 3) float32 0-255 for a scene: off-white, tinted, textured, ruled, squared."""
    base = float(rng.uniform(215, 250))
    colour = base + rng.uniform(-8, 3, 3)
    if scene == "tinted":  # cream, blue, grey, green, pink
        tints = [[5, 0, -30], [-20, -8, 5], [-35, -35, -35], [-15, 0, -15], [0, -15, -10]]
        colour = colour + np.array(tints[int(rng.integers(0, len(tints)))], np.float64)
    page = np.empty((h, w, 3), np.float32)
    page[:] = np.clip(colour, 100, 255)
    if scene == "textured" or rng.random() < 0.15:  # recycled paper, card, cloth
        amp = float(rng.uniform(6, 16)) if scene == "textured" else float(rng.uniform(2, 6))
        blot = _field(rng, h, w, int(rng.integers(6, 20))) * amp
        fibre = _field(rng, h, w, int(rng.integers(40, 90))) * amp * 0.5
        page += (blot + fibre)[..., None]
    if scene in ("ruled", "squared"):
        spacing = max(4, round(float(rng.uniform(0.05, 0.1)) * max(h, w)))
        thick = max(1, round(max(h, w) / 400))
        ink = np.array([[140, 165, 215], [165, 165, 165], [120, 180, 200]][int(rng.integers(3))])
        a = float(rng.uniform(0.4, 0.85))
        mask = np.zeros((h, w), np.float32)
        start = int(rng.integers(0, spacing))
        for y in range(start, h, spacing):
            mask[y : y + thick] = a
        if scene == "squared":
            for x in range(start, w, spacing):
                mask[:, x : x + thick] = a
        elif rng.random() < 0.4:  # the red margin of a school exercise book
            x = int(rng.uniform(0.08, 0.15) * w)
            page[:, x : x + thick] = page[:, x : x + thick] * 0.4 + np.array([220, 90, 90]) * 0.6
        page = page * (1 - mask[..., None]) + ink.astype(np.float32) * mask[..., None]
    return page


def light(rng: np.random.Generator, h: int, w: int, scene: str) -> np.ndarray:
    """Multiplicative light (h, w): a mild unevenness always, a strong gradient or shadow for
    those scenes."""
    ys = np.linspace(-0.5, 0.5, h, dtype=np.float32)[:, None]
    xs = np.linspace(-0.5, 0.5, w, dtype=np.float32)[None, :]
    a = rng.uniform(0, 2 * math.pi)
    depth = float(rng.uniform(0.35, 0.6)) if scene == "gradient" else float(rng.uniform(0, 0.12))
    out = 1.0 - depth * (0.5 + math.cos(a) * ys + math.sin(a) * xs)
    if scene == "gradient" and rng.random() < 0.5:  # vignette: a lamp close to the page
        out = out * (1.0 - float(rng.uniform(0.2, 0.4)) * (4 * (ys**2 + xs**2)))
    if scene == "shadow":  # a hand or phone between lamp and page: a soft-edged half plane
        b = rng.uniform(0, 2 * math.pi)
        dist = math.cos(b) * ys + math.sin(b) * xs - float(rng.uniform(-0.3, 0.3))
        soft = float(rng.uniform(0.02, 0.12))
        out = out * (1.0 - float(rng.uniform(0.3, 0.55)) / (1.0 + np.exp(-dist / soft)))
    return np.clip(out, 0.05, 1.0).astype(np.float32)


def ink_colour(rng: np.random.Generator, tags: list[str]) -> tuple[np.ndarray, float]:
    """(RGB, opacity) of a pen: black, blue ballpoint, dark grey marker or a pencil."""
    r = rng.random()
    if r < 0.4:
        return rng.uniform(10, 45, 3), float(rng.uniform(0.85, 1.0))
    if r < 0.7:
        tags.append("blue-ink")
        return np.array([25, 35, 110]) + rng.uniform(-10, 30, 3), float(rng.uniform(0.8, 1.0))
    if r < 0.85:
        return rng.uniform(40, 75, 3), float(rng.uniform(0.8, 1.0))
    tags.append("pencil")
    return rng.uniform(60, 95, 3), float(rng.uniform(0.6, 0.85))


def place(
    canvas: np.ndarray, mask: np.ndarray, top: int, left: int, colour: np.ndarray, alpha: float
) -> None:
    """Composite ``mask`` (0-1) as ink of ``colour`` into ``canvas`` at (top, left), in place."""
    h, w = mask.shape
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + h, canvas.shape[0]), min(left + w, canvas.shape[1])
    if y1 <= y0 or x1 <= x0:
        return
    a = (mask[y0 - top : y1 - top, x0 - left : x1 - left] * alpha)[..., None]
    canvas[y0:y1, x0:x1] = canvas[y0:y1, x0:x1] * (1 - a) + colour.astype(np.float32) * a


def _resize_mask(mask: np.ndarray, height: int) -> np.ndarray:
    h, w = mask.shape
    s = height / h
    size = (max(1, round(w * s)), max(1, round(h * s)))
    return np.asarray(Image.fromarray(mask).resize(size, Image.Resampling.BILINEAR), np.float32)


def camera(
    page: np.ndarray,
    rng: np.random.Generator,
    tags: list[str],
    *,
    out_size: tuple[int, int],
    rotate: bool = True,
    grey: bool = False,
) -> Image.Image:
    """Rotate slightly, blur, add grain and noise, resize to ``out_size`` (w, h)."""
    h, w = page.shape[:2]
    sigma = float(rng.uniform(1.0, 4.0))
    if rng.random() < 0.25:
        sigma = float(rng.uniform(6.0, 14.0))
        tags.append("noise")
    page = page + rng.normal(0.0, sigma, (h, w, 1)).astype(np.float32)
    img = Image.fromarray(np.clip(np.round(page), 0, 255).astype(np.uint8), "RGB")
    if rotate and rng.random() < 0.6:
        deg = float(rng.uniform(-8, 8))
        img = img.rotate(deg, Image.Resampling.BICUBIC, expand=False)
        # the corners the rotation exposed are cropped away: the page was rendered with margin
        m = math.sin(math.radians(abs(deg)))
        cx, cy = round(m * h / 2) + 1, round(m * w / 2) + 1
        img = img.crop((cx, cy, w - cx, h - cy))
        if abs(deg) > 3:
            tags.append("rotated")
    if rng.random() < 0.35:
        img = img.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.6, 1.6)) * max(h, w) / 400))
        tags.append("blur")
    img = img.resize(
        out_size, Image.Resampling.LANCZOS if out_size[0] < w else Image.Resampling.BICUBIC
    )
    if out_size[0] > w:  # a phone camera: the sensor's own fine grain at full resolution
        arr = np.asarray(img, np.int16) + rng.integers(-3, 4, (out_size[1], out_size[0], 1))
        img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")
    if grey:
        img = img.convert("L")
    return img


def encode(
    img: Image.Image, size_class: str, rng: np.random.Generator, tags: list[str]
) -> tuple[bytes, str]:
    buf = io.BytesIO()
    if size_class == "phone" or (img.mode != "RGBA" and rng.random() < 0.6):
        q = int(rng.integers(70, 95)) if size_class == "phone" else int(rng.integers(35, 96))
        img.convert("RGB" if img.mode == "RGBA" else img.mode).save(buf, "JPEG", quality=q)
        tags.append("jpeg-low" if q < 60 else "jpeg")
        return buf.getvalue(), "jpg"
    if rng.random() < WEBP_SHARE:
        img.save(buf, "WEBP", quality=int(rng.integers(60, 96)))
        tags.append("webp")
        return buf.getvalue(), "webp"
    img.save(buf, "PNG")
    tags.append("png")
    return buf.getvalue(), "png"


def _size(size_class: str, rng: np.random.Generator) -> tuple[int, int]:
    if size_class == "phone":
        return PHONE
    if size_class == "icon":
        s = int(rng.integers(28, 65))
        return s, s
    w = int(rng.integers(240, 601))
    return w, round(w * float(rng.choice([1.0, 4 / 3, 3 / 4])))


def size_class_of(subset: str, index: int) -> str:
    every = PHONE_EVERY[subset]
    if subset == "canvas":  # the demo page's pad: 280x280
        return "300px"
    if index % every == every // 2:
        return "phone"
    h = int(hashlib.sha256(f"size:{subset}:{index}".encode()).hexdigest()[:8], 16)
    return "icon" if h % 5 == 0 else "300px"


def _render_size(out: tuple[int, int]) -> tuple[int, int]:
    """The page is drawn at this size (w, h): icons at 4x (then reduced, as a small photo is),
    phone photos at 1/4 (then enlarged; the camera adds its fine grain)."""
    w, h = out
    if max(w, h) <= 64:
        return w * 4, h * 4
    if max(w, h) > 1000:
        return w // 4, h // 4
    return w, h


# ------------------------------------------------------------------ pictures


@dataclass
class Picture:
    subset: str
    index: int
    label: int | None
    source: str
    scene: str
    size_class: str
    framing: str | None  # digit | item | None (out of distribution)
    tags: list[str] = field(default_factory=list)
    labels: list[int] | None = None  # multi: per digit, left to right
    boxes: list[list[int]] | None = None  # multi: (x0, y0, x1, y1) per digit, in pixels
    image: Image.Image | None = None

    @property
    def name(self) -> str:
        return f"{self.subset}-{self.index:05d}"


def _scene(rng: np.random.Generator, drawing_share: float = 0.12) -> str:
    if rng.random() < drawing_share:
        return "drawing"
    return str(rng.choice(SCENES[:-1], p=[0.2, 0.12, 0.12, 0.12, 0.1, 0.18, 0.16]))


def _drawing(
    mask: np.ndarray, size: tuple[int, int], rng: np.random.Generator, tags: list[str]
) -> Image.Image:
    """A flat digital drawing: the mask placed off-centre on a canvas of one colour."""
    w, h = size
    style = DRAWINGS[int(rng.integers(0, len(DRAWINGS)))]
    tags.append(style)
    height = round(float(rng.uniform(0.4, 0.85)) * h)
    m = _resize_mask(mask, height)
    m = m[:, : w - 2] if m.shape[1] > w - 2 else m
    top = int(rng.integers(0, max(1, h - m.shape[0] + 1)))
    left = int(rng.integers(0, max(1, w - m.shape[1] + 1)))
    full = np.zeros((h, w), np.float32)
    full[top : top + m.shape[0], left : left + m.shape[1]] = m[: h - top, : w - left]
    if style == "transparent":
        rgba = np.zeros((h, w, 4), np.uint8)
        rgba[..., :3] = rng.integers(0, 60)
        rgba[..., 3] = np.round(full * 255).astype(np.uint8)
        return Image.fromarray(rgba, "RGBA")
    grey = full * 255 if style == "light-on-black" else 255 - full * 255
    return Image.fromarray(np.round(grey).astype(np.uint8), "L").convert("RGB")


def digit_picture(index: int, mnist: tuple[np.ndarray, np.ndarray], fonts: list[Path]) -> Picture:
    rng = rng_for("digit", index)
    perm = np.random.default_rng(SEED).permutation(len(mnist[1]))
    sources = DIGIT_SOURCES if fonts else ("mnist", "pen")
    source = sources[index % len(sources)]
    tags: list[str] = []
    if source == "mnist":
        k = int(perm[index % len(perm)])
        label = int(mnist[1][k])
        mask = mnist_mask(mnist[0][k], rng, tags)
        tags.append(f"mnist-test-{k}")
    elif source == "font":
        label = int(rng.integers(0, 10))
        font = fonts[int(rng.integers(0, len(fonts)))]
        tags.append(f"font:{font.stem}")
        mask = font_mask(font, label, rng, tags)
    else:
        label = int(rng.integers(0, 10))
        mask = pen_mask(label, rng, tags)
    size_class = size_class_of("digit", index)
    out = _size(size_class, rng)
    scene = _scene(rng) if size_class != "phone" else _scene(rng, 0.0)
    pic = Picture("digit", index, label, source, scene, size_class, "digit", tags)
    if scene == "drawing":
        pic.image = _drawing(mask, out, rng, tags)
        return pic
    rw, rh = _render_size(out)
    margin = 1.15  # room for the rotation's crop
    h, w = round(rh * margin), round(rw * margin)
    page = paper(rng, h, w, scene)
    frac = float(rng.uniform(0.25, 0.75))
    tags.append("small" if frac < 0.4 else "large" if frac > 0.6 else "medium")
    m = _resize_mask(mask, round(frac * min(rh, rw) * (rh / min(rh, rw)) ** 0.5))
    if m.shape[1] > 0.9 * rw:
        m = _resize_mask(m, round(m.shape[0] * 0.9 * rw / m.shape[1]))
    # off-centre: anywhere inside the visible area
    top = round((h - rh) / 2 + rng.uniform(0.03, 0.97) * max(1, rh - m.shape[0]))
    left = round((w - rw) / 2 + rng.uniform(0.03, 0.97) * max(1, rw - m.shape[1]))
    colour, alpha = ink_colour(rng, tags)
    if "pencil" in tags:  # graphite: grainy coverage
        m = m * np.clip(rng.normal(1.0, 0.25, m.shape), 0.3, 1.0).astype(np.float32)
    place(page, m, top, left, colour, alpha)
    page *= light(rng, h, w, scene)[..., None]
    pic.image = camera(page, rng, tags, out_size=out, grey=rng.random() < 0.1)
    return pic


def fashion_picture(index: int, fashion: tuple[np.ndarray, np.ndarray]) -> Picture:
    """A test item photographed: its intensity shades a fabric colour over a background; on a
    light background the item is darker than the ground (as the product photos Fashion-MNIST was
    made from, before it negated them), on a dark one lighter."""
    rng = rng_for("fashion", index)
    perm = np.random.default_rng(SEED + 1).permutation(len(fashion[1]))
    k = int(perm[index % len(perm)])
    label = int(fashion[1][k])
    tags = [f"fashion-test-{k}"]
    size_class = size_class_of("fashion", index)
    out = _size(size_class, rng)
    rw, rh = _render_size(out)
    bg_kind = BACKGROUNDS[int(rng.integers(0, len(BACKGROUNDS)))]
    if bg_kind == "light":
        bg = rng.uniform(215, 250) + rng.uniform(-6, 4, 3)
    elif bg_kind == "dark":
        bg = rng.uniform(10, 55) + rng.uniform(-5, 5, 3)
    elif bg_kind == "coloured":
        hue = np.array(Image.new("HSV", (1, 1), (int(rng.integers(0, 256)),
                                                 int(rng.integers(80, 200)),
                                                 int(rng.choice([rng.integers(40, 90),
                                                                 rng.integers(170, 240)])))
                                 ).convert("RGB").getpixel((0, 0)), np.float64)  # fmt: skip
        bg = hue
    else:
        bg = rng.choice([rng.uniform(150, 220), rng.uniform(40, 100)]) + rng.uniform(-20, 10, 3)
    bg = np.clip(bg, 0, 255)
    page = np.empty((rh, rw, 3), np.float32)
    page[:] = bg
    if bg_kind == "textured":  # wood grain or cloth: stripes and blotches
        stripes = np.sin(np.linspace(0, float(rng.uniform(20, 60)), rw))[None, :] * 8
        page += (stripes + _field(rng, rh, rw, 12) * 14 + _field(rng, rh, rw, 60) * 6)[..., None]
    bg_luma = float(bg @ np.array([0.299, 0.587, 0.114]))
    light_bg = bg_luma > 128
    frac = float(rng.uniform(0.5, 0.85))
    side = max(8, round(frac * min(rw, rh)))
    v = _f(Image.fromarray(fashion[0][k]).resize((side, side), Image.Resampling.BICUBIC))
    alpha = np.clip(v * 8.0, 0.0, 1.0)
    tint = rng.uniform(0.5, 1.0, 3)
    tint = tint / float(tint @ np.array([0.299, 0.587, 0.114]))
    if light_bg:  # darker where the item is brighter in the data set
        luma = bg_luma * (1.0 - float(rng.uniform(0.7, 0.95)) * v)
    else:
        luma = bg_luma + v * (float(rng.uniform(190, 245)) - bg_luma)
    item = np.clip(luma[..., None] * tint, 0, 255).astype(np.float32)
    top = round(rng.uniform(0.05, 0.95) * (rh - side))
    left = round(rng.uniform(0.05, 0.95) * (rw - side))
    if light_bg and rng.random() < 0.6:  # a soft drop shadow under the object
        sh = _f(_l(alpha).filter(ImageFilter.GaussianBlur(max(1.0, side / 30))))
        off = max(1, side // 30)
        place(page, sh, top + off, left + off, np.zeros(3), float(rng.uniform(0.15, 0.3)))
        tags.append("drop-shadow")
    region = page[top : top + side, left : left + side]
    a = alpha[: region.shape[0], : region.shape[1], None]
    region[:] = region * (1 - a) + item[: region.shape[0], : region.shape[1]] * a
    scene = "gradient" if rng.random() < 0.25 else "plain"
    page *= light(rng, rh, rw, scene)[..., None]
    tags.append(f"bg-{bg_kind}")
    pic = Picture("fashion", index, label, "fashion-mnist", scene, size_class, "item", tags)
    pic.image = camera(page, rng, tags, out_size=out, rotate=False)
    return pic


def multi_picture(index: int, mnist: tuple[np.ndarray, np.ndarray]) -> Picture:
    """A number of 2-5 digits written on paper (MNIST test digits from the second half of the
    permutation, or pen trajectories), with each digit's box in the output's pixels."""
    rng = rng_for("multi", index)
    perm = np.random.default_rng(SEED).permutation(len(mnist[1]))
    n = int(rng.integers(2, 6))
    use_pen = rng.random() < 0.3
    tags: list[str] = ["pen" if use_pen else "mnist"]
    masks, labels = [], []
    for j in range(n):
        if use_pen:
            lab = int(rng.integers(0, 10))
            masks.append(pen_mask(lab, rng, []))
        else:
            half = len(perm) // 2
            k = int(perm[half + (index * 5 + j) % (len(perm) - half)])
            lab = int(mnist[1][k])
            masks.append(mnist_mask(mnist[0][k], rng, []))
        labels.append(lab)
    size_class = size_class_of("multi", index)
    w, h = _size(size_class, rng) if size_class != "icon" else (int(rng.integers(96, 160)), 64)
    h = min(h, round(w * 0.75))
    out = (w, h)
    rw, rh = _render_size(out)
    scene = str(rng.choice(["plain", "tinted", "ruled", "squared", "gradient", "shadow"]))
    page = paper(rng, rh, rw, scene)
    digit_h = round(float(rng.uniform(0.25, 0.5)) * rh)
    scaled = [_resize_mask(m, digit_h) for m in masks]
    gap = round(digit_h * float(rng.uniform(0.12, 0.35)))
    total = sum(m.shape[1] for m in scaled) + gap * (n - 1)
    if total > 0.92 * rw:  # shrink to fit the width
        f = 0.92 * rw / total
        scaled = [_resize_mask(m, max(4, round(m.shape[0] * f))) for m in scaled]
        gap = round(gap * f)
        total = sum(m.shape[1] for m in scaled) + gap * (n - 1)
    left = round(rng.uniform(0.05, 0.95) * max(1, rw - total))
    base = round(rng.uniform(0.1, 0.9) * max(1, rh - max(m.shape[0] for m in scaled)))
    colour, alpha = ink_colour(rng, tags)
    boxes = []
    sx, sy = out[0] / rw, out[1] / rh
    for m in scaled:
        top = base + int(rng.integers(-max(1, digit_h // 12), max(2, digit_h // 12)))
        place(page, m, top, left, colour, alpha)
        ys, xs = np.nonzero(m > 0.3)
        box = [left + int(xs.min()), top + int(ys.min()), left + int(xs.max()) + 1,
               top + int(ys.max()) + 1]  # fmt: skip
        boxes.append([round(box[0] * sx), round(box[1] * sy), round(box[2] * sx),
                      round(box[3] * sy)])  # fmt: skip
        left += m.shape[1] + gap
    page *= light(rng, rh, rw, scene)[..., None]
    pic = Picture("multi", index, None, tags[0], scene, size_class, "digit", tags)
    pic.labels, pic.boxes = labels, boxes
    pic.image = camera(page, rng, tags, out_size=out, rotate=False)
    return pic


def ood_picture(index: int) -> Picture:
    """A page with no digit on it."""
    rng = rng_for("ood", index)
    kind = OOD_KINDS[index % len(OOD_KINDS)]
    size_class = size_class_of("ood", index)
    out = _size(size_class, rng)
    rw, rh = _render_size(out)
    tags: list[str] = []
    pic = Picture("ood", index, None, kind, kind, size_class, None, tags)
    if kind == "noise":
        arr = rng.integers(0, 256, (out[1], out[0], 3)).astype(np.uint8)
        if rng.random() < 0.5:  # smoother, like a dark, high-ISO shot
            arr = np.asarray(Image.fromarray(arr).filter(ImageFilter.GaussianBlur(1.5)))
        pic.image = Image.fromarray(arr, "RGB")
        return pic
    if kind == "canvas":  # an empty drawing canvas, black or white, maybe transparent
        colour = int(rng.choice([0, 255]))
        pic.image = Image.new("RGB", out, (colour,) * 3)
        return pic
    lined = str(rng.choice(["ruled", "squared"]))
    scene = {"blank": "plain", "near-blank": "plain", "gradient": "gradient", "shadow": "shadow",
             "textured": "textured", "lined": lined}[kind]  # fmt: skip
    page = paper(rng, rh, rw, scene)
    if kind == "near-blank":  # dust and a faint smudge, nothing a reader would call writing
        for _ in range(int(rng.integers(1, 6))):
            y, x = int(rng.integers(0, rh)), int(rng.integers(0, rw))
            r = max(1, round(rw / 250))
            page[max(0, y - r) : y + r, max(0, x - r) : x + r] *= float(rng.uniform(0.4, 0.8))
        smudge = np.clip(_field(rng, rh, rw, 6), 0, 1) * float(rng.uniform(4, 10))
        page -= smudge[..., None]
    page *= light(rng, rh, rw, scene)[..., None]
    pic.image = camera(page, rng, tags, out_size=out, rotate=False)
    return pic


def _frame_mask(
    shape: tuple[int, int],
    box: tuple[int, int, int, int],
    kind: str,
    pen: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """A hand-drawn box or circle (0-1 mask of ``shape``) around ``box`` (top, left, bottom,
    right): corners jittered, closed, a pen ``pen`` pixels wide."""
    ink = Image.new("L", (shape[1], shape[0]), 0)
    draw = ImageDraw.Draw(ink)
    top, left, bottom, right = box
    j = max(1, round(0.04 * max(bottom - top, right - left)))
    if kind == "boxed":
        corners = [(left, top), (right, top), (right, bottom), (left, bottom)]
        pts = [(x + float(rng.uniform(-j, j)), y + float(rng.uniform(-j, j))) for x, y in corners]
        draw.line([*pts, pts[0], pts[1]], fill=255, width=pen, joint="curve")
    else:
        draw.ellipse([left, top, right, bottom], outline=255, width=pen)
    return _f(ink)


_APART = {  # subset -> (its first MNIST test digit in the permutation, its kinds, its scene)
    "framed": (FRAMED_FIRST, FRAMINGS, "plain"),
    "tabled": (TABLED_FIRST, TABLINGS, "table"),
    "surfaces": (SURFACES_FIRST, SURFACES, "plain"),
}


def _one_digit(
    subset: str, index: int, mnist: tuple[np.ndarray, np.ndarray]
) -> tuple[
    np.random.Generator, np.ndarray, str, Picture, tuple[int, int], tuple[np.ndarray, float]
]:
    """What a picture of one real MNIST test digit in a scored-apart subset starts from: its
    random stream, the digit's ink mask, its kind (one each in turn), the picture, its output
    size and the pen (colour, opacity)."""
    first, kinds, scene = _APART[subset]
    rng = rng_for(subset, index)
    perm = np.random.default_rng(SEED).permutation(len(mnist[1]))
    k = int(perm[(first + index) % len(perm)])
    kind = kinds[index % len(kinds)]
    tags = [f"mnist-test-{k}"]
    mask = mnist_mask(mnist[0][k], rng, tags)
    size_class = size_class_of(subset, index)
    out = _size(size_class, rng)
    pen = ink_colour(rng, tags)
    pic = Picture(subset, index, int(mnist[1][k]), f"{subset}-{kind}", scene, size_class, "digit",
                  tags)  # fmt: skip
    return rng, mask, kind, pic, out, pen


def framed_picture(index: int, mnist: tuple[np.ndarray, np.ndarray]) -> Picture:
    """One real MNIST test digit (a part of the permutation no other subset uses) framed as
    users' pictures are and the other subsets are not: cropped tight around the digit, written
    on a sheet of paper photographed lying on a darker table, or with a box or a circle drawn
    around it (a form's cell, a marked answer)."""
    rng, mask, kind, pic, out, (colour, alpha) = _one_digit("framed", index, mnist)
    tags, size_class = pic.tags, pic.size_class
    rw, rh = _render_size(out)
    if kind == "tight":  # the digit fills the picture: a margin of 0-8% of it on each side
        scene = str(rng.choice(["plain", "tinted", "ruled", "squared"]))
        m = _resize_mask(mask, round(0.6 * rh))
        h, w = m.shape
        page = paper(rng, 2 * h, 2 * w + 2, scene)
        top, left = h // 2, w // 2
        place(page, m, top, left, colour, alpha)
        pad = [round(float(rng.uniform(0.0, 0.08)) * h) for _ in range(4)]
        crop = page[top - pad[0] : top + h + pad[1], left - pad[2] : left + w + pad[3]]
        crop = crop * light(rng, *crop.shape[:2], "plain")[..., None]
        cw, ch = crop.shape[1], crop.shape[0]
        s = out[1] / ch if size_class != "icon" else out[0] / max(cw, ch)
        pic.scene = scene
        pic.image = camera(crop, rng, tags, out_size=(max(8, round(cw * s)), max(8, round(ch * s))),
                           rotate=False)  # fmt: skip
        return pic
    if kind == "sheet":  # a sheet filling 55-85% of each side, turned a little, on a table
        table = np.empty((rh, rw, 3), np.float32)
        table[:] = rng.uniform(35, 150) + rng.uniform(-20, 15, 3)
        stripes = np.sin(np.linspace(0, float(rng.uniform(20, 60)), rw))[None, :] * 6
        table += (stripes + _field(rng, rh, rw, 12) * 10)[..., None]
        sh, sw = (
            round(rh * float(rng.uniform(0.55, 0.85))),
            round(rw * float(rng.uniform(0.55, 0.85))),
        )
        sheet = paper(rng, sh, sw, "plain")
        m = _resize_mask(mask, round(sh * float(rng.uniform(0.3, 0.55))))
        m = m[:, : sw - 2] if m.shape[1] > sw - 2 else m
        place(sheet, m, round(rng.uniform(0.1, 0.9) * (sh - m.shape[0])),
              round(rng.uniform(0.1, 0.9) * (sw - m.shape[1])), colour, alpha)  # fmt: skip
        deg = float(rng.uniform(-8, 8))
        turned = Image.fromarray(np.clip(sheet, 0, 255).astype(np.uint8), "RGB").rotate(
            deg, Image.Resampling.BICUBIC, expand=True)  # fmt: skip
        cover = Image.new("L", (sw, sh), 255).rotate(deg, Image.Resampling.BICUBIC, expand=True)
        top = round(rng.uniform(0.1, 0.9) * max(0, rh - turned.height))
        left = round(rng.uniform(0.1, 0.9) * max(0, rw - turned.width))
        a = _f(cover)[..., None]
        region = table[top : top + turned.height, left : left + turned.width]
        a = a[: region.shape[0], : region.shape[1]]
        region[:] = (
            region * (1 - a)
            + np.asarray(turned, np.float32)[: region.shape[0], : region.shape[1]] * a
        )
        table *= light(rng, rh, rw, "gradient" if rng.random() < 0.4 else "plain")[..., None]
        tags.append("rotated" if abs(deg) > 3 else "level")
        pic.scene = "table"
        pic.image = camera(table, rng, tags, out_size=out, rotate=False)
        return pic
    scene = str(rng.choice(["plain", "tinted", "ruled", "squared"]))
    page = paper(rng, rh, rw, scene)
    m = _resize_mask(mask, round(float(rng.uniform(0.3, 0.5)) * min(rh, rw)))
    h, w = m.shape
    margin = float(rng.uniform(0.12, 0.3))
    fh, fw = h * (1 + 2 * margin), max(w + 2 * margin * h, 0.75 * h)
    top = round(rng.uniform(0.05, 0.95) * max(1, rh - fh) + (fh - h) / 2)
    left = round(rng.uniform(0.05, 0.95) * max(1, rw - fw) + (fw - w) / 2)
    place(page, m, top, left, colour, alpha)
    box = (round(top - (fh - h) / 2), round(left - (fw - w) / 2),
           round(top + h + (fh - h) / 2), round(left + w + (fw - w) / 2))  # fmt: skip
    pen = max(1, round(h * float(rng.uniform(0.03, 0.07))))
    frame_colour, frame_alpha = (colour, alpha) if rng.random() < 0.6 else ink_colour(rng, [])
    place(page, _frame_mask((rh, rw), box, kind, pen, rng), 0, 0, frame_colour, frame_alpha)
    page *= light(rng, rh, rw, scene)[..., None]
    pic.scene = scene
    pic.image = camera(page, rng, tags, out_size=out, rotate=False)
    return pic


def tabled_picture(index: int, mnist: tuple[np.ndarray, np.ndarray]) -> Picture:
    """One real MNIST test digit (a part of the permutation no other subset uses) on a sheet of
    paper or a sticky note lying on a table, as phones photograph them and the ``framed``
    subset's sheets (fully in view, turned up to 8 degrees) are not: turned 10-45 degrees, a
    smaller coloured note turned up to 45, a sheet running off one edge of the picture, or a
    sheet held up against a dark room."""
    rng, mask, kind, pic, out, (colour, alpha) = _one_digit("tabled", index, mnist)
    tags = pic.tags
    rw, rh = _render_size(out)
    table = np.empty((rh, rw, 3), np.float32)
    if kind == "held":  # a dim room behind the sheet
        table[:] = rng.uniform(10, 45) + rng.uniform(-8, 8, 3)
    else:
        table[:] = rng.uniform(35, 150) + rng.uniform(-20, 15, 3)
    grain = np.sin(np.linspace(0, float(rng.uniform(20, 60)), rw))[None, :] * 6
    table += (grain + _field(rng, rh, rw, 12) * 10)[..., None]
    share = (0.45, 0.6) if kind == "note" else (0.55, 0.8)
    sh = round(rh * float(rng.uniform(*share)))
    sw = round(rw * float(rng.uniform(*share)))
    sheet = paper(rng, sh, sw, "plain")
    if kind == "note":  # a yellow, pink, green or blue sticky note
        tint = [(1.0, 0.95, 0.55), (1.0, 0.8, 0.85), (0.8, 1.0, 0.75), (0.75, 0.9, 1.0)]
        sheet *= np.array(tint[int(rng.integers(len(tint)))], np.float32)
        tags.append("note")
    m = _resize_mask(mask, round(min(sh, sw) * float(rng.uniform(0.3, 0.5))))
    # where the digit lies on the sheet: away from the edge that leaves the picture
    edge = int(rng.integers(4))  # top, bottom, left, right (for "off-edge")
    fy, fx = float(rng.uniform(0.2, 0.8)), float(rng.uniform(0.2, 0.8))
    if kind == "off-edge":
        far = float(rng.uniform(0.05, 0.3))
        fy = {0: 1 - far, 1: far}.get(edge, fy)
        fx = {2: 1 - far, 3: far}.get(edge, fx)
    place(sheet, m, round(fy * (sh - m.shape[0])), round(fx * (sw - m.shape[1])), colour, alpha)
    deg = float(rng.uniform(10, 45) * rng.choice([-1, 1])) if kind in ("turned", "note") else 0.0
    if kind in ("off-edge", "held"):
        deg = float(rng.uniform(-8, 8))
    turned = Image.fromarray(np.clip(sheet, 0, 255).astype(np.uint8), "RGB").rotate(
        deg, Image.Resampling.BICUBIC, expand=True)  # fmt: skip
    cover = _f(Image.new("L", (sw, sh), 255).rotate(deg, Image.Resampling.BICUBIC, expand=True))
    th, tw = cover.shape
    top = round(rng.uniform(0.1, 0.9) * max(0, rh - th))
    left = round(rng.uniform(0.1, 0.9) * max(0, rw - tw))
    if kind == "off-edge":  # a sixth to a third of the sheet beyond one edge
        cut = float(rng.uniform(1 / 6, 1 / 3))
        if edge == 0:
            top = -round(cut * th)
        elif edge == 1:
            top = rh - th + round(cut * th)
        elif edge == 2:
            left = -round(cut * tw)
        else:
            left = rw - tw + round(cut * tw)
        tags.append(("top", "bottom", "left", "right")[edge])
    # the part of the turned sheet inside the picture
    y0, x0 = max(0, top), max(0, left)
    y1, x1 = min(rh, top + th), min(rw, left + tw)
    a = cover[y0 - top : y1 - top, x0 - left : x1 - left, None]
    ink = np.asarray(turned, np.float32)[y0 - top : y1 - top, x0 - left : x1 - left]
    region = table[y0:y1, x0:x1]
    region[:] = region * (1 - a) + ink * a
    table *= light(rng, rh, rw, "gradient" if rng.random() < 0.4 else "plain")[..., None]
    pic.image = camera(table, rng, tags, out_size=out, rotate=False)
    return pic


BOARDS = ((20, 45, 35), (30, 30, 32), (60, 25, 25), (25, 30, 60), (45, 50, 45))  # green, black,
# dark red card, navy card, slate
GELS = ((250, 232, 60), (255, 160, 205), (125, 200, 250), (145, 230, 125), (255, 190, 85))


def surfaces_picture(index: int, mnist: tuple[np.ndarray, np.ndarray]) -> Picture:
    """One real MNIST test digit (a part of the permutation no other subset uses) where users
    write and photograph digits and the other subsets do not: in chalk or a light marker on a
    dark board (the chalk not near white), on ruled paper with rules as dark as ink photographed
    1-5 degrees askew, on a page three quarters in a hand's deep shadow, or in a light-coloured
    gel ink (yellow, pink, light blue, light green, orange)."""
    rng, mask, kind, pic, out, (colour, alpha) = _one_digit("surfaces", index, mnist)
    tags = pic.tags
    rw, rh = _render_size(out)
    m = _resize_mask(mask, round(min(rh, rw) * float(rng.uniform(0.3, 0.55))))
    top = round(rng.uniform(0.15, 0.85) * (rh - m.shape[0]))
    left = round(rng.uniform(0.15, 0.85) * (rw - m.shape[1]))
    if kind == "board":
        page = np.empty((rh, rw, 3), np.float32)
        tags[:] = [t for t in tags if t not in ("blue-ink", "pencil")]  # chalk, not the pen
        page[:] = np.array(BOARDS[int(rng.integers(len(BOARDS)))]) * float(rng.uniform(0.6, 1.4))
        page += (_field(rng, rh, rw, int(rng.integers(6, 14))) * float(rng.uniform(4, 12)))[
            ..., None
        ]
        skips = 1.0 - rng.random(m.shape).astype(np.float32) * float(rng.uniform(0.1, 0.5))
        chalk = np.full(3, float(rng.uniform(130, 235))) + rng.uniform(-10, 10, 3)
        place(page, m * skips, top, left, chalk, float(rng.uniform(0.75, 1.0)))
        page *= light(rng, rh, rw, "plain")[..., None]
        pic.scene = "board"
    elif kind == "askew":
        page = paper(rng, rh, rw, "plain")
        rule = np.array([(45, 45, 50), (50, 70, 150), (120, 120, 125)][int(rng.integers(3))])
        spacing = max(4, round(float(rng.uniform(0.05, 0.1)) * rh))
        thick = max(1, round(rh / 300))
        rules = np.zeros((rh, rw), np.float32)
        for y in range(int(rng.integers(0, spacing)), rh, spacing):
            rules[y : y + thick] = 1.0
        place(page, rules, 0, 0, rule, float(rng.uniform(0.5, 0.9)))
        place(page, m, top, left, colour, alpha)
        deg = float(rng.uniform(1, 5) * rng.choice([-1, 1]))
        turned = Image.fromarray(np.clip(page, 0, 255).astype(np.uint8), "RGB").rotate(
            deg, Image.Resampling.BICUBIC, expand=False)  # fmt: skip
        cut = math.sin(math.radians(abs(deg)))  # the corners the turn exposed are cropped away
        cx, cy = round(cut * rh / 2) + 1, round(cut * rw / 2) + 1
        page = np.asarray(turned.crop((cx, cy, rw - cx, rh - cy)), np.float32).copy()
        tags.append(f"askew-{abs(deg):.0f}")
        pic.scene = "ruled"
    elif kind == "shadowed":
        page = paper(rng, rh, rw, "plain")
        place(page, m, top, left, colour, alpha)
        ys = np.linspace(-0.5, 0.5, rh, dtype=np.float32)[:, None]
        xs = np.linspace(-0.5, 0.5, rw, dtype=np.float32)[None, :]
        b = float(rng.uniform(0, 2 * math.pi))
        along = math.cos(b) * ys + math.sin(b) * xs
        edge = float(np.quantile(along, 1 - rng.uniform(0.55, 0.8)))  # in shadow beyond it
        soft = float(rng.uniform(0.005, 0.05))
        depth = float(rng.uniform(0.35, 0.6))
        page *= (1.0 - depth / (1.0 + np.exp(-(along - edge) / soft)))[..., None]
        cy = (top + m.shape[0] / 2) / max(1, rh - 1) - 0.5
        cx = (left + m.shape[1] / 2) / max(1, rw - 1) - 0.5
        centre = math.cos(b) * cy + math.sin(b) * cx
        tags.append("digit-in-shadow" if centre > edge else "digit-in-light")
        pic.scene = "shadow"
    else:  # a light-coloured gel pen on white or lined paper
        scene = str(rng.choice(["plain", "ruled", "squared"]))
        page = paper(rng, rh, rw, scene)
        tags[:] = [t for t in tags if t not in ("blue-ink", "pencil")]  # the gel, not the pen
        gel = np.array(GELS[int(rng.integers(len(GELS)))], np.float32) + rng.uniform(-8, 8, 3)
        place(page, m, top, left, np.clip(gel, 0, 255), float(rng.uniform(0.8, 1.0)))
        page *= light(rng, rh, rw, "plain")[..., None]
        tags.append("gel-ink")
        pic.scene = scene
    pic.image = camera(page, rng, tags, out_size=out, rotate=False)
    return pic


def load_drawings(folder: Path = CANVAS_DIR) -> list[dict[str, Any]]:
    """The demo page's drawings made by ``canvas.py`` (label, ink, file), in index order."""
    listing = folder / "drawings.json"
    if not listing.is_file():
        return []
    return sorted(json.loads(listing.read_text()), key=lambda d: int(d["index"]))


def canvas_picture(index: int, drawings: list[dict[str, Any]]) -> Picture:
    """A digit drawn on the demo page's pad in Chromium, as the page uploads it (RGBA PNG)."""
    drawing = drawings[index]
    with Image.open(CANVAS_DIR / drawing["file"]) as img:
        pad = img.convert("L")
    tags = [str(drawing["ink"])]
    pic = Picture("canvas", index, int(drawing["label"]), "demo-pad", "drawing", "300px", "digit",
                  tags)  # fmt: skip
    pic.image = pad.convert("RGBA")
    return pic


def marks_picture(index: int) -> Picture:
    """Paper with ink that is no digit: a near-horizontal stroke (an upright one would be a fair
    "1"), a flat arc, or a scribble."""
    rng = rng_for("marks", index)
    kind = MARK_KINDS[index % len(MARK_KINDS)]
    size_class = size_class_of("marks", index)
    out = _size(size_class, rng)
    rw, rh = _render_size(out)
    scene = str(rng.choice(["plain", "tinted", "ruled", "squared", "gradient", "shadow"]))
    page = paper(rng, rh, rw, scene)
    ink = Image.new("L", (rw, rh), 0)
    draw = ImageDraw.Draw(ink)
    pen = max(1, round(min(rw, rh) * float(rng.uniform(0.015, 0.05))))
    cx, cy = rw * float(rng.uniform(0.3, 0.7)), rh * float(rng.uniform(0.3, 0.7))
    length = float(rng.uniform(0.3, 0.7)) * rw
    if kind == "stroke":
        a = math.radians(float(rng.uniform(-30, 30)))
        dx, dy = math.cos(a) * length / 2, math.sin(a) * length / 2
        draw.line([(cx - dx, cy - dy), (cx + dx, cy + dy)], fill=255, width=pen)
    elif kind == "arc":
        r = length / 2
        start = float(rng.uniform(180, 250))
        draw.arc([cx - r, cy - r / 2, cx + r, cy + r / 2], start, start + 110, fill=255, width=pen)
    else:
        pts = [(cx, cy)]
        for _ in range(int(rng.integers(6, 14))):
            x, y = pts[-1]
            pts.append((float(np.clip(x + rng.normal(0, 0.2 * rw), 0, rw - 1)),
                        float(np.clip(y + rng.normal(0, 0.2 * rh), 0, rh - 1))))  # fmt: skip
        draw.line(pts, fill=255, width=pen, joint="curve")
    tags: list[str] = []
    colour, alpha = ink_colour(rng, tags)
    place(page, _f(ink), 0, 0, colour, alpha)
    page *= light(rng, rh, rw, scene)[..., None]
    pic = Picture("marks", index, None, kind, scene, size_class, None, tags)
    pic.image = camera(page, rng, tags, out_size=out, rotate=False)
    return pic


# ------------------------------------------------------------------ the set


def plan(counts: dict[str, int] | None = None, drawings: int = 0) -> list[tuple[str, int]]:
    """(subset, index) of every picture; the canvas subset is capped by the drawings there are."""
    counts = counts or COUNTS
    limit = {s: counts.get(s, 0) for s in SUBSETS}
    limit["canvas"] = min(limit["canvas"], drawings)
    return [(s, i) for s in SUBSETS for i in range(limit[s])]


def make(
    subset: str,
    index: int,
    mnist: tuple[np.ndarray, np.ndarray],
    fashion: tuple[np.ndarray, np.ndarray],
    fonts: list[Path],
    drawings: list[dict[str, Any]],
) -> Picture:
    if subset == "digit":
        return digit_picture(index, mnist, fonts)
    if subset == "fashion":
        return fashion_picture(index, fashion)
    if subset == "multi":
        return multi_picture(index, mnist)
    if subset == "canvas":
        return canvas_picture(index, drawings)
    if subset == "marks":
        return marks_picture(index)
    if subset == "framed":
        return framed_picture(index, mnist)
    if subset == "tabled":
        return tabled_picture(index, mnist)
    if subset == "surfaces":
        return surfaces_picture(index, mnist)
    return ood_picture(index)


def record(pic: Picture, data: bytes, ext: str) -> dict[str, Any]:
    assert pic.image is not None
    return {
        "file": f"{pic.subset}/{pic.name}.{ext}",
        "subset": pic.subset,
        "index": pic.index,
        "split": split_of(pic.subset, pic.index),
        "label": pic.label,
        "labels": pic.labels,
        "boxes": pic.boxes,
        "framing": pic.framing,
        "source": pic.source,
        "scene": pic.scene,
        "size_class": pic.size_class,
        "width": pic.image.width,
        "height": pic.image.height,
        "format": "jpeg" if ext == "jpg" else ext,
        "tags": sorted(t for t in pic.tags if not t.startswith(("mnist-test", "fashion-test"))),
        "item": next((t for t in pic.tags if t.startswith(("mnist-test", "fashion-test"))), None),
        "sha256": hashlib.sha256(data).hexdigest(),
        "bytes": len(data),
    }


def generate(
    out: Path,
    counts: dict[str, int] | None = None,
    *,
    fonts: list[Path] | None = None,
    data: tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]] | None = None,
) -> list[dict[str, Any]]:
    """Write every picture under ``out/<subset>/`` and ``out/manifest.jsonl``; returns the
    manifest rows. ``data`` is (mnist, fashion) test sets, (images, labels) each; by default
    read from the data cache."""
    fonts = available_fonts() if fonts is None else fonts
    if data is None:
        data = load_test_set("mnist"), load_test_set("fashion_mnist")
    mnist, fashion = data
    drawings = load_drawings()
    rows = []
    for subset, index in plan(counts, len(drawings)):
        pic = make(subset, index, mnist, fashion, fonts, drawings)
        assert pic.image is not None
        tags = pic.tags
        if subset == "canvas":  # as the page uploads it
            buf = io.BytesIO()
            pic.image.save(buf, "PNG")
            blob, ext = buf.getvalue(), "png"
            tags.append("png")
        else:
            blob, ext = encode(pic.image, pic.size_class, rng_for(subset, index + 10**6), tags)
        row = record(pic, blob, ext)
        path = out / row["file"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(blob)
        rows.append(row)
    text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows)
    (out / "manifest.jsonl").write_text(text)
    (out / "fonts.json").write_text(json.dumps([str(f) for f in fonts], indent=1))
    kept = {out / r["file"] for r in rows}
    for subset in SUBSETS:  # pictures of an earlier run (another format, a larger count)
        for old in (out / subset).glob("*.*") if (out / subset).is_dir() else ():
            if old not in kept:
                old.unlink()
    return rows


def summarise(rows: list[dict[str, Any]], fonts: list[Path]) -> dict[str, Any]:
    """The committed summary: counts per subset, split, source, scene, size and tag, and the
    manifest's hash (a regenerated set must match it)."""
    text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows)

    def count(key: str) -> dict[str, int]:
        return dict(sorted(Counter(f"{r['subset']}/{r[key]}" for r in rows).items()))

    tags = Counter(f"{r['subset']}/{t}" for r in rows for t in r["tags"])
    return {
        "seed": SEED,
        "pictures": len(rows),
        "manifest_sha256": hashlib.sha256(text.encode()).hexdigest(),
        "fonts": [f.name for f in fonts],
        "split": count("split"),
        "source": count("source"),
        "scene": count("scene"),
        "size_class": count("size_class"),
        "format": count("format"),
        "tags": dict(sorted(tags.items())),
        "multi_digits": sum(len(r["labels"] or []) for r in rows if r["subset"] == "multi"),
        "canvas_drawings": sum(r["subset"] == "canvas" for r in rows),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every subset's count")
    parser.add_argument("--no-summary", action="store_true", help="do not rewrite summary.json")
    args = parser.parse_args(argv)
    counts = {k: max(1, round(v * args.scale)) for k, v in COUNTS.items()}
    fonts = available_fonts()
    start = time.perf_counter()
    rows = generate(args.out, counts, fonts=fonts)
    summary = summarise(rows, fonts)
    if not args.no_summary and args.scale == 1.0:
        SUMMARY_FILE.write_text(json.dumps(summary, indent=1) + "\n")
    took = time.perf_counter() - start
    print(f"{len(rows)} pictures in {args.out} ({took:.1f} s), fonts: {len(fonts)}")
    print(json.dumps({k: summary[k] for k in ("split", "size_class")}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
