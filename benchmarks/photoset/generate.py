"""Generate the photo-and-drawing evaluation set: ``python -m benchmarks.photoset.generate``.

Four kinds of picture, each numbered from 0 within its kind:

- ``mnist``: real MNIST *test* digits (a fixed permutation of the test set), upscaled, pen width
  varied (dilated or eroded), on paper;
- ``font``: digits 0-9 in handwriting fonts from Debian packages (``fonts-dkg-handwriting``,
  ``fonts-breip``, ``fonts-humor-sans``, ``fonts-femkeklaver``, ``fonts-dancingscript``,
  ``fonts-comic-neue``), found by path under ``/usr/share/fonts``; faux-bold by dilation, varied
  size; fonts that are not installed are skipped and the manifest says which were used;
- ``fashion``: real Fashion-MNIST *test* items rendered as a photographed object: the item's
  intensity shades a fabric colour, over a light, dark, coloured or textured background;
- ``ood``: pages without a digit or item (label ``null``, model ``none``): blank paper, a lighting
  gradient only, textured or lined empty paper, noise, a single near-horizontal stroke or arc,
  scribbles.

The "paper" of a digit picture is off-white or tinted, with any of: a lighting gradient, a shadow
band, grain, texture blotches, ruled lines, squares; a few pictures are flat drawings (dark on
white or light on black, as a paint program makes). Then a small rotation (up to 12 degrees),
blur, noise, and the file format: JPEG (quality 50-95), PNG or WebP. Sizes: ``icon`` (28-64 px),
``300px`` (240-360 px wide) and ``phone`` (3000x4000 JPEG, a few only).

Everything is seeded by the kind and the index, so a picture does not change when ``--count``
does. The split is fixed by a hash: a picture is in ``holdout`` when
``int(sha256(f"{kind}:{index}").hexdigest()[:8], 16) % 5 == 0`` (20%), else in ``dev``.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

SEED = 20261130
DEFAULT_OUT = Path(os.path.expanduser("~/.cache/digitserve/photoset"))
DEFAULT_COUNT = 1500  # digit pictures; clothes and OOD pages scale with it
FASHION_SHARE = 0.27
OOD_SHARE = 0.067
FONT_SHARE = 0.4  # of the digit pictures, when fonts are installed
PHONE = (3000, 4000)
PHONE_DIGITS = 8
PHONE_FASHION = 2
CANVAS = 256  # ink masks are drawn at this size, then scaled to the picture
FONT_ROOT = Path("/usr/share/fonts")
FONT_FILES = (
    "truetype/fifthhorseman/dkg.ttf",
    "truetype/fifthhorseman/dkgBd.ttf",
    "truetype/fifthhorseman/dkgIt.ttf",
    "truetype/breip/Breip.ttf",
    "truetype/humor-sans/Humor-Sans.ttf",
    "truetype/femkeklaver/femkeklaver.ttf",
    "opentype/dancingscript/DancingScript-Regular.otf",
    "opentype/dancingscript/DancingScript-Bold.otf",
    "opentype/comic-neue/ComicNeue-Light.otf",
    "opentype/comic-neue/ComicNeue-Regular.otf",
    "opentype/comic-neue/ComicNeue-Italic.otf",
    "opentype/comic-neue/ComicNeue-Bold.otf",
)
FASHION_LABELS = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                  "Sneaker", "Bag", "Ankle boot")  # fmt: skip
OOD_KINDS = ("blank", "gradient", "textured-paper", "noise", "single-stroke", "scribble")
KINDS = ("mnist", "font", "fashion", "ood")


@dataclass(frozen=True)
class Spec:
    kind: str  # one of KINDS
    index: int  # within the kind
    size_class: str  # icon | 300px | phone

    @property
    def name(self) -> str:
        return f"{self.kind}-{self.index:05d}"

    @property
    def split(self) -> str:
        return split_of(self.kind, self.index)

    def rng(self) -> np.random.Generator:
        return np.random.default_rng([SEED, KINDS.index(self.kind), self.index])


def split_of(kind: str, index: int) -> str:
    """``holdout`` for a fixed 20% of each kind (by a hash of kind and index), else ``dev``."""
    digest = hashlib.sha256(f"{kind}:{index}".encode()).hexdigest()
    return "holdout" if int(digest[:8], 16) % 5 == 0 else "dev"


def available_fonts(root: Path = FONT_ROOT) -> list[Path]:
    return [root / rel for rel in FONT_FILES if (root / rel).is_file()]


def counts(count: int, fonts: int) -> dict[str, int]:
    n_font = round(FONT_SHARE * count) if fonts else 0
    return {
        "mnist": count - n_font,
        "font": n_font,
        "fashion": round(FASHION_SHARE * count),
        "ood": max(len(OOD_KINDS), round(OOD_SHARE * count)),
    }


def _phone_indices(n: int, how_many: int) -> set[int]:
    if n == 0 or how_many == 0:
        return set()
    step = max(1, n // how_many)
    return {step // 2 + k * step for k in range(how_many) if step // 2 + k * step < n}


def build_specs(count: int, fonts: int, phones: bool = True) -> list[Spec]:
    """Every picture of a set of ``count`` digits (``fonts`` = how many fonts are installed)."""
    n = counts(count, fonts)
    specs: list[Spec] = []
    phone_mnist = _phone_indices(n["mnist"], PHONE_DIGITS // 2) if phones else set()
    phone_font = _phone_indices(n["font"], PHONE_DIGITS // 2) if phones else set()
    phone_fashion = _phone_indices(n["fashion"], PHONE_FASHION) if phones else set()
    phone = {"mnist": phone_mnist, "font": phone_font, "fashion": phone_fashion, "ood": set()}
    for kind in KINDS:
        for i in range(n[kind]):
            if i in phone[kind]:
                size = "phone"
            else:  # icons: about a quarter
                h = int(hashlib.sha256(f"size:{kind}:{i}".encode()).hexdigest()[:8], 16)
                size = "icon" if h % 4 == 0 else "300px"
            specs.append(Spec(kind, i, size))
    return specs


# ------------------------------------------------------------------ ink masks (CANVAS x CANVAS)


def _upscaled(item: np.ndarray) -> np.ndarray:
    """A 28x28 image in [0, 1] as a CANVAS-sized float mask (bicubic, clipped)."""
    img = Image.fromarray(np.round(np.clip(item, 0, 1) * 255).astype(np.uint8))
    big = img.resize((CANVAS, CANVAS), Image.Resampling.BICUBIC)
    return np.asarray(big, np.float32) / 255.0


def _pen(mask: np.ndarray, rng: np.random.Generator, tags: list[str]) -> np.ndarray:
    """Vary the pen: dilate (bold) or erode (fine) the mask at canvas scale."""
    choice = rng.random()
    img = Image.fromarray(np.round(mask * 255).astype(np.uint8))
    if choice < 0.25:
        size = int(rng.choice([5, 7, 9, 11]))
        img = img.filter(ImageFilter.MaxFilter(size))
        tags.append("pen-bold")
    elif choice < 0.4:
        img = img.filter(ImageFilter.MinFilter(int(rng.choice([3, 5]))))
        tags.append("pen-fine")
    return np.asarray(img, np.float32) / 255.0


def mnist_mask(digit: np.ndarray, rng: np.random.Generator, tags: list[str]) -> np.ndarray:
    mask = np.clip(_upscaled(digit) * 1.15, 0.0, 1.0)
    return _pen(mask, rng, tags)


def font_mask(font: Path, label: int, rng: np.random.Generator, tags: list[str]) -> np.ndarray:
    """The digit ``label`` in ``font``, centred on the canvas, size and weight varied."""
    size = int(rng.integers(110, 170))
    face = ImageFont.truetype(str(font), size)
    img = Image.new("L", (CANVAS, CANVAS), 0)
    draw = ImageDraw.Draw(img)
    text = str(label)
    left, top, right, bottom = draw.textbbox((0, 0), text, font=face)
    x = (CANVAS - (right - left)) / 2 - left
    y = (CANVAS - (bottom - top)) / 2 - top
    draw.text((x, y), text, fill=255, font=face)
    choice = rng.random()
    if choice < 0.4:
        k = int(rng.choice([3, 5, 7, 9, 11]))
        img = img.filter(ImageFilter.MaxFilter(k))
        tags.append("pen-bold")
    elif choice < 0.55:
        tags.append("pen-fine")  # as drawn: the font's own weight
    return np.asarray(img, np.float32) / 255.0


def _rotate(mask: np.ndarray, degrees: float) -> np.ndarray:
    img = Image.fromarray(mask.astype(np.float32), mode="F")
    return np.asarray(img.rotate(degrees, Image.Resampling.BICUBIC), np.float32).clip(0, 1)


def _trim(mask: np.ndarray) -> np.ndarray:
    rows = np.flatnonzero(mask.max(axis=1) > 0.05)
    cols = np.flatnonzero(mask.max(axis=0) > 0.05)
    if rows.size == 0:
        return mask
    return mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def _scaled(mask: np.ndarray, longer: int) -> np.ndarray:
    h, w = mask.shape
    s = longer / max(h, w)
    img = Image.fromarray(mask.astype(np.float32), mode="F")
    size = (max(1, round(w * s)), max(1, round(h * s)))
    return np.asarray(img.resize(size, Image.Resampling.BILINEAR), np.float32).clip(0, 1)


# ------------------------------------------------------------------ paper and light


def _smooth_field(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    """Low-frequency noise in [-1, 1] of size (h, w), from a cells-wide grid."""
    gh, gw = max(2, round(cells * h / max(h, w))), max(2, round(cells * w / max(h, w)))
    grid = rng.uniform(-1.0, 1.0, (gh, gw)).astype(np.float32)
    img = Image.fromarray(grid, mode="F").resize((w, h), Image.Resampling.BICUBIC)
    return np.asarray(img, np.float32)


def _light(rng: np.random.Generator, h: int, w: int, tags: list[str]) -> np.ndarray:
    """A multiplicative light field (h, w): gradient and/or a soft shadow band."""
    ys = np.linspace(-0.5, 0.5, h, dtype=np.float32)[:, None]
    xs = np.linspace(-0.5, 0.5, w, dtype=np.float32)[None, :]
    light = np.ones((h, w), np.float32)
    if rng.random() < 0.5:
        angle = rng.uniform(0, 2 * math.pi)
        depth = float(rng.uniform(0.12, 0.35))
        light = light * (1.0 - depth * (0.5 + math.cos(angle) * ys + math.sin(angle) * xs))
        tags.append("gradient")
    if rng.random() < 0.25:
        angle = rng.uniform(0, math.pi)
        offset = float(rng.uniform(-0.3, 0.3))
        width = float(rng.uniform(0.2, 0.5))
        dist = math.cos(angle) * ys + math.sin(angle) * xs - offset
        soft = width * 0.5
        band = np.clip((width / 2 - np.abs(dist)) / soft + 0.5, 0.0, 1.0)
        light = light * (1.0 - float(rng.uniform(0.2, 0.45)) * band)
        tags.append("shadow")
    return light


def paper(
    rng: np.random.Generator, h: int, w: int, tags: list[str], *, lines: bool = True
) -> np.ndarray:
    """Off-white or tinted paper (h, w, 3) float32 0-255, before light and grain."""
    base = float(rng.uniform(225, 252))
    tint = rng.uniform(-10, 4, 3).astype(np.float32)
    if rng.random() < 0.3:  # clearly tinted: cream, blue, grey, green
        tint = tint + rng.choice([[4, 0, -22], [-14, -6, 4], [-18, -18, -18], [-10, 0, -10]])
        tags.append("tinted")
    colour = np.clip(base + tint, 120, 255).astype(np.float32)
    page = np.broadcast_to(colour, (h, w, 3)).astype(np.float32)
    if rng.random() < 0.3:
        blotch = _smooth_field(rng, h, w, int(rng.integers(4, 12))) * float(rng.uniform(5, 14))
        page = page + blotch[..., None]
        tags.append("texture")
    if lines and rng.random() < 0.35:
        squared = rng.random() < 0.45
        spacing = max(3, round(float(rng.uniform(0.06, 0.12)) * h))
        thick = max(1, round(h / 300))
        ink = np.array(rng.choice([[150, 170, 210], [170, 170, 170], [200, 150, 150]]), np.float32)
        strength = float(rng.uniform(0.5, 0.9))
        mask = np.zeros((h, w), np.float32)
        phase = int(rng.integers(0, spacing))
        for y in range(phase, h, spacing):
            mask[y : y + thick] = 1.0
        if squared:
            for x in range(phase, w, spacing):
                mask[:, x : x + thick] = 1.0
        a = strength * mask[..., None]
        page = page * (1 - a) + ink * a
        tags.append("squared" if squared else "ruled")
    return page


def _finish(
    page: np.ndarray, rng: np.random.Generator, tags: list[str], blur_px: float, noisy: bool
) -> Image.Image:
    """Grain/noise, blur, to an RGB or grey image."""
    h, w = page.shape[:2]
    sigma = float(rng.uniform(1.0, 4.0))
    if noisy and rng.random() < 0.3:
        sigma = float(rng.uniform(7.0, 14.0))
        tags.append("noise")
    grain = rng.normal(0.0, sigma, (h, w)).astype(np.float32)
    page = page + grain[..., None]
    img = Image.fromarray(np.clip(np.round(page), 0, 255).astype(np.uint8), mode="RGB")
    if blur_px >= 0.6:
        img = img.filter(ImageFilter.GaussianBlur(blur_px))
    if rng.random() < 0.15:
        img = img.convert("L")
        tags.append("grey")
    return img


def _size(spec: Spec, rng: np.random.Generator) -> tuple[int, int]:
    if spec.size_class == "phone":
        return PHONE
    if spec.size_class == "icon":
        side = int(rng.integers(28, 65))
        return side, side
    w = int(rng.integers(240, 361))
    return w, round(w * float(rng.choice([1.0, 1.0, 4 / 3, 3 / 4])))


def _encode(
    img: Image.Image, spec: Spec, rng: np.random.Generator, tags: list[str]
) -> tuple[bytes, str]:
    buf = io.BytesIO()
    if spec.size_class == "phone":
        fmt = "jpeg"
    else:
        fmt = str(rng.choice(["jpeg", "jpeg", "png", "webp"], p=[0.35, 0.25, 0.25, 0.15]))
    if fmt == "jpeg":
        q = int(rng.integers(50, 96)) if spec.size_class != "phone" else int(rng.integers(70, 96))
        img.save(buf, format="JPEG", quality=q)
        tags.append("jpeg-low" if q < 70 else "jpeg")
        return buf.getvalue(), "jpg"
    if fmt == "webp":
        img.save(buf, format="WEBP", quality=int(rng.integers(60, 95)))
        tags.append("webp")
        return buf.getvalue(), "webp"
    img.save(buf, format="PNG")
    tags.append("png")
    return buf.getvalue(), "png"


# ------------------------------------------------------------------ pictures


def _digit_picture(
    mask: np.ndarray, spec: Spec, rng: np.random.Generator, tags: list[str]
) -> Image.Image:
    w, h = _size(spec, rng)
    angle = float(rng.uniform(-12, 12))
    if abs(angle) > 6:
        tags.append("rotated")
    mask = _trim(_rotate(mask, angle))
    short = min(w, h)
    frac = (
        float(rng.uniform(0.3, 0.7))
        if spec.size_class != "icon"
        else float(rng.uniform(0.55, 0.85))
    )
    ink = _scaled(mask, max(4, round(frac * short)))
    ih, iw = ink.shape
    top = int(np.clip(round((h - ih) / 2 + rng.uniform(-0.15, 0.15) * h), 0, h - ih))
    left = int(np.clip(round((w - iw) / 2 + rng.uniform(-0.15, 0.15) * w), 0, w - iw))
    cover = np.zeros((h, w), np.float32)
    cover[top : top + ih, left : left + iw] = ink
    tags.append(spec.size_class)
    if rng.random() < 0.12:  # a flat drawing from a paint program
        dark = rng.random() < 0.5
        ground, pen = (0.0, 255.0) if dark else (255.0, 0.0)
        out = ground * (1 - cover) + pen * cover
        tags.append("drawing-dark" if dark else "drawing")
        return Image.fromarray(np.clip(np.round(out), 0, 255).astype(np.uint8), mode="L")
    page = paper(rng, h, w, tags)
    pen = np.array(
        rng.choice([[25, 28, 40], [20, 35, 110], [70, 70, 75], [110, 110, 115], [30, 30, 30]]),
        np.float32,
    )
    if pen[0] > 100:
        tags.append("pencil")
    opacity = float(rng.uniform(0.8, 1.0))
    a = (cover * opacity)[..., None]
    page = page * (1 - a) + pen * a
    page = page * _light(rng, h, w, tags)[..., None]
    blur = float(rng.uniform(0.0, 0.025)) * frac * short if rng.random() < 0.4 else 0.0
    if blur >= 0.6:
        tags.append("blur")
    return _finish(page, rng, tags, blur, noisy=True)


def _background(
    rng: np.random.Generator, h: int, w: int, tags: list[str]
) -> tuple[np.ndarray, float]:
    kind = str(rng.choice(["light", "dark", "coloured", "textured"]))
    tags.append(f"bg-{kind}")
    if kind == "light":
        page = paper(rng, h, w, [], lines=False)
    elif kind == "dark":
        page = np.broadcast_to(rng.uniform(15, 60, 3).astype(np.float32), (h, w, 3)).copy()
    elif kind == "coloured":
        page = np.broadcast_to(rng.uniform(40, 230, 3).astype(np.float32), (h, w, 3)).copy()
    else:  # wood or cloth: stripes plus blotches on a mid colour
        colour = rng.uniform(80, 200, 3).astype(np.float32)
        ys = np.arange(h, dtype=np.float32)[:, None] * np.ones((1, w), np.float32)
        period = float(rng.uniform(0.02, 0.08)) * h
        stripes = np.sin(2 * math.pi * ys / period) * float(rng.uniform(6, 18))
        field = _smooth_field(rng, h, w, 8) * 15.0
        page = colour + (stripes + field)[..., None]
    lum = float(np.mean(page[:: max(1, h // 16), :: max(1, w // 16)]))
    return page.astype(np.float32), lum


def _fashion_picture(
    item: np.ndarray, spec: Spec, rng: np.random.Generator, tags: list[str]
) -> Image.Image:
    w, h = _size(spec, rng)
    tags.append(spec.size_class)
    page, lum = _background(rng, h, w, tags)
    shade = _upscaled(item)
    alpha = np.clip(shade * 8.0, 0.0, 1.0)
    angle = float(rng.uniform(-8, 8))
    if abs(angle) > 4:
        tags.append("rotated")
    both = np.stack([_rotate(alpha, angle), _rotate(shade, angle)])
    rows = np.flatnonzero(both[0].max(axis=1) > 0.05)
    cols = np.flatnonzero(both[0].max(axis=0) > 0.05)
    both = both[:, rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    frac = float(rng.uniform(0.45, 0.85))
    longer = max(4, round(frac * min(w, h)))
    a, s = _scaled(both[0], longer), _scaled(both[1], longer)
    for _ in range(20):  # a fabric that stands out from the background
        fabric = rng.uniform(20, 245, 3).astype(np.float32)
        if abs(float(fabric.mean()) - lum) > 60:
            break
    ih, iw = a.shape
    top = int(np.clip(round((h - ih) / 2 + rng.uniform(-0.08, 0.08) * h), 0, h - ih))
    left = int(np.clip(round((w - iw) / 2 + rng.uniform(-0.08, 0.08) * w), 0, w - iw))
    obj = fabric * (0.45 + 0.55 * s[..., None])
    region = page[top : top + ih, left : left + iw]
    page[top : top + ih, left : left + iw] = region * (1 - a[..., None]) + obj * a[..., None]
    page = page * _light(rng, h, w, tags)[..., None]
    blur = float(rng.uniform(0.0, 0.01)) * longer if rng.random() < 0.3 else 0.0
    if blur >= 0.6:
        tags.append("blur")
    return _finish(page, rng, tags, blur, noisy=True)


def _ood_picture(spec: Spec, rng: np.random.Generator, tags: list[str]) -> Image.Image:
    kind = OOD_KINDS[spec.index % len(OOD_KINDS)]
    tags.append(kind)
    w, h = _size(spec, rng)
    tags.append(spec.size_class)
    if kind == "noise":
        grey = rng.random() < 0.5
        arr = rng.integers(0, 256, (h, w) if grey else (h, w, 3), dtype=np.uint8)
        return Image.fromarray(arr, mode="L" if grey else "RGB")
    inner: list[str] = []
    page = paper(rng, h, w, inner, lines=kind == "textured-paper")
    if kind == "textured-paper":
        page = page + _smooth_field(rng, h, w, 10)[..., None] * 12.0
    if kind in ("single-stroke", "scribble"):
        canvas = Image.new("L", (w, h), 0)
        draw = ImageDraw.Draw(canvas)
        width = max(1, round(min(w, h) * float(rng.uniform(0.015, 0.05))))
        if kind == "single-stroke":  # near-horizontal (a vertical stroke is a fair "1")
            length = float(rng.uniform(0.3, 0.7)) * w
            angle = math.radians(float(rng.uniform(-30, 30)))
            cx, cy = w * float(rng.uniform(0.35, 0.65)), h * float(rng.uniform(0.35, 0.65))
            dx, dy = math.cos(angle) * length / 2, math.sin(angle) * length / 2
            if rng.random() < 0.5:
                draw.line([(cx - dx, cy - dy), (cx + dx, cy + dy)], fill=255, width=width)
            else:
                r = length / 2
                start = float(rng.uniform(180, 250))
                draw.arc([cx - r, cy - r / 2, cx + r, cy + r / 2], start, start + 110,
                         fill=255, width=width)  # fmt: skip
        else:
            pts = [(w * float(rng.uniform(0.2, 0.8)), h * float(rng.uniform(0.2, 0.8)))]
            for _ in range(int(rng.integers(6, 14))):
                x, y = pts[-1]
                pts.append((float(np.clip(x + rng.normal(0, 0.2 * w), 0, w - 1)),
                            float(np.clip(y + rng.normal(0, 0.2 * h), 0, h - 1))))  # fmt: skip
            draw.line(pts, fill=255, width=width, joint="curve")
        a = (np.asarray(canvas, np.float32) / 255.0)[..., None]
        page = page * (1 - a) + np.array([25.0, 28.0, 45.0], np.float32) * a
    if kind != "blank":
        page = page * _light(rng, h, w, inner)[..., None]
    tags.extend(t for t in inner if t in ("ruled", "squared", "gradient", "shadow", "texture"))
    return _finish(page, rng, tags, 0.0, noisy=False)


@dataclass
class Sources:
    mnist_x: np.ndarray
    mnist_y: np.ndarray
    fashion_x: np.ndarray
    fashion_y: np.ndarray
    fonts: list[Path]
    mnist_order: np.ndarray
    fashion_order: np.ndarray


def load_sources(fonts: list[Path] | None = None) -> Sources:
    from training.datasets import load_images

    mnist, fashion = load_images("mnist"), load_images("fashion_mnist")
    order = np.random.default_rng(SEED)
    return Sources(
        mnist_x=np.asarray(mnist.x_test, np.float32) / 255.0,
        mnist_y=np.asarray(mnist.y_test).astype(int),
        fashion_x=np.asarray(fashion.x_test, np.float32) / 255.0,
        fashion_y=np.asarray(fashion.y_test).astype(int),
        fonts=available_fonts() if fonts is None else fonts,
        mnist_order=order.permutation(len(mnist.x_test)),
        fashion_order=order.permutation(len(fashion.x_test)),
    )


def render(spec: Spec, src: Sources) -> tuple[bytes, dict[str, Any]]:
    """One picture's encoded bytes and its manifest entry (without ``file``)."""
    rng = spec.rng()
    tags: list[str] = []
    entry: dict[str, Any] = {"kind": spec.kind, "index": spec.index, "split": spec.split}
    if spec.kind == "mnist":
        k = int(src.mnist_order[spec.index % len(src.mnist_order)])
        label = int(src.mnist_y[k])
        entry.update(model="mnist", label=label, source=f"mnist-test:{k}")
        tags.append("src-mnist")
        img = _digit_picture(mnist_mask(src.mnist_x[k], rng, tags), spec, rng, tags)
    elif spec.kind == "font":
        font = src.fonts[spec.index % len(src.fonts)]
        label = (spec.index // len(src.fonts)) % 10
        entry.update(model="mnist", label=label, source=f"font:{font.name}")
        tags.append("src-font")
        img = _digit_picture(font_mask(font, label, rng, tags), spec, rng, tags)
    elif spec.kind == "fashion":
        k = int(src.fashion_order[spec.index % len(src.fashion_order)])
        label = int(src.fashion_y[k])
        entry.update(model="fashion_mnist", label=label, source=f"fashion-test:{k}")
        img = _fashion_picture(src.fashion_x[k], spec, rng, tags)
    else:
        entry.update(model="none", label=None, source="synthetic")
        img = _ood_picture(spec, rng, tags)
    data, ext = _encode(img, spec, rng, tags)
    entry.update(conditions=tags, size=list(img.size), size_class=spec.size_class, ext=ext)
    return data, entry


def generate(
    out: Path, count: int = DEFAULT_COUNT, *, phones: bool = True, sources: Sources | None = None
) -> dict[str, Any]:
    """Write every picture and ``manifest.json`` into ``out``; returns the manifest."""
    started = time.perf_counter()
    src = load_sources() if sources is None else sources
    specs = build_specs(count, len(src.fonts), phones=phones)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*-*.*"):
        old.unlink()
    items = []
    for spec in specs:
        data, entry = render(spec, src)
        name = f"{spec.name}.{entry.pop('ext')}"
        (out / name).write_bytes(data)
        items.append({"file": name, **entry})
    used = {p.name for p in src.fonts}
    missing = [rel for rel in FONT_FILES if Path(rel).name not in used]
    manifest = {
        "seed": SEED,
        "count": count,
        "split_rule": 'holdout iff int(sha256(f"{kind}:{index}").hexdigest()[:8], 16) % 5 == 0',
        "fonts": [str(p) for p in src.fonts],
        "fonts_missing": missing,
        "fashion_labels": list(FASHION_LABELS),
        "seconds": round(time.perf_counter() - started, 1),
        "items": items,
    }
    tmp = out / "manifest.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=1))
    tmp.replace(out / "manifest.json")
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--count", type=int, default=DEFAULT_COUNT, help="digit pictures")
    parser.add_argument("--no-phone", action="store_true", help="skip the 3000x4000 pictures")
    args = parser.parse_args(argv)
    manifest = generate(args.out, args.count, phones=not args.no_phone)
    items = manifest["items"]
    by_kind: dict[str, int] = {}
    for it in items:
        by_kind[it["kind"]] = by_kind.get(it["kind"], 0) + 1
    holdout = sum(it["split"] == "holdout" for it in items)
    print(f"wrote {len(items)} pictures to {args.out} in {manifest['seconds']} s: {by_kind}; "
          f"holdout {holdout}")  # fmt: skip
    if manifest["fonts_missing"]:
        print(f"note: fonts not installed (skipped): {', '.join(manifest['fonts_missing'])}")
    print(f"fonts used: {len(manifest['fonts'])}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
