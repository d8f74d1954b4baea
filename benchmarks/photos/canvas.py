"""Digits drawn on the demo page's own canvas: ``python -m benchmarks.photos.canvas``.

Headless Chromium (Debian's ``/usr/bin/chromium``, driven by Playwright) opens the demo page from
``service/static/`` and replays pen trajectories on its drawing pad with real pointer events, so
the page's own code draws them (its pen width, round caps and joins, both ink modes). Each
drawing is exported the way the page uploads it (``pad.toDataURL("image/png")``) and its pixels
are kept in ``benchmarks/photos/canvas/`` as a grey PNG (the pad is opaque and grey, so no pixel
changes; a third of the bytes of the page's RGBA file), with ``drawings.json`` (label, ink,
pixel hash per drawing). The generator writes each back as the RGBA PNG the page sends, so the
set is the same on a machine without a browser.

The trajectories are the generator's pen shapes (:func:`generate.pen_geometry`), seeded by
``(SEED, "canvas", index)``: a digit 40-85% of the pad tall, off-centre, traced with a few
pointer moves per path segment as a mouse or a finger does. The page runs without a server:
every API call gets a 503, which only leaves the prediction panel empty.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import mimetypes
import sys
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from benchmarks.photos.generate import CANVAS_DIR, SEED, pen_geometry, pen_paths

STATIC = Path(__file__).resolve().parents[2] / "service" / "static"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ORIGIN = "http://demo.invalid"  # never resolved: every request is answered by the route below
COUNT = 100
DARK_INK_SHARE = 1 / 3  # the page starts in white-on-black; some users switch to dark ink
CANVAS_SUBSET = 1000  # the rng stream of this subset, apart from the generator's subsets


def rng_for(index: int) -> np.random.Generator:
    return np.random.default_rng([SEED, CANVAS_SUBSET, index])


def plan_drawing(index: int) -> dict[str, Any]:
    """A drawing's label, ink mode and pen moves: a list of strokes, each a list of (x, y) in
    the pad's own fraction (0-1) coordinates."""
    rng = rng_for(index)
    label = index % 10
    dark = bool(rng.random() < DARK_INK_SHARE)
    paths = pen_paths(pen_geometry(label, rng), rng)
    height = float(rng.uniform(0.4, 0.85))
    points = np.vstack(paths) * height
    lo, hi = points.min(axis=0), points.max(axis=0)
    # the pad's margin keeps the round pen (22 of 280 px) inside the pad
    margin = 0.05
    room = np.maximum(0.0, (1 - 2 * margin) - (hi - lo))
    offset = margin - lo + rng.uniform(0.0, 1.0, 2) * room
    strokes = [[(float(x), float(y)) for x, y in path * height + offset] for path in paths]
    return {"index": index, "label": label, "ink": "dark-on-light" if dark else "light-on-black",
            "strokes": strokes}  # fmt: skip


def _serve(route: Any) -> None:
    """The page's static files from ``service/static``; every API call a 503."""
    path = route.request.url[len(ORIGIN) :].split("?")[0]
    if path in ("/", "/index.html"):
        path = "/static/index.html"
    if path.startswith("/static/"):
        file = STATIC / path[len("/static/") :]
        if file.is_file():
            kind = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
            route.fulfill(status=200, body=file.read_bytes(), content_type=kind)
            return
    route.fulfill(status=503, body='{"error": "offline"}', content_type="application/json")


def draw_all(plans: list[dict[str, Any]]) -> list[bytes]:
    """Replay every plan on the demo page's pad; the PNG bytes the page would upload."""
    from playwright.sync_api import sync_playwright

    out = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.route(f"{ORIGIN}/**", _serve)
            page.goto(f"{ORIGIN}/")
            # without a server no model is chosen, so the image panel stays hidden: show it
            page.evaluate("document.getElementById('image-panel').hidden = false")
            dark_ink = False
            for p in plans:
                if (p["ink"] == "dark-on-light") != dark_ink:
                    page.click("#ink")  # toggles the ink and clears the pad
                    dark_ink = not dark_ink
                else:
                    page.click("#clear")
                box = page.locator("#pad").bounding_box()
                assert box is not None
                for stroke in p["strokes"]:
                    xy = [(box["x"] + x * box["width"], box["y"] + y * box["height"])
                          for x, y in stroke]  # fmt: skip
                    page.mouse.move(*xy[0])
                    page.mouse.down()
                    for point in xy[1::3]:  # every third smoothed point: a mouse's sampling
                        page.mouse.move(*point, steps=2)
                    page.mouse.move(*xy[-1])
                    page.mouse.up()
                url = page.evaluate("document.getElementById('pad').toDataURL('image/png')")
                out.append(base64.b64decode(url.split(",", 1)[1]))
        finally:
            browser.close()
    return out


def grey_pixels(png: bytes) -> np.ndarray:
    """The pad's pixels as one grey channel; refuses a drawing that is not opaque grey."""
    rgba = np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))
    grey = rgba[..., 0]
    if not ((rgba[..., 1] == grey).all() and (rgba[..., 2] == grey).all()):
        raise ValueError("the pad holds colour: its pixels cannot be kept as grey")
    if not (rgba[..., 3] == 255).all():
        raise ValueError("the pad is not opaque: its pixels cannot be kept as grey")
    return np.ascontiguousarray(grey)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=COUNT)
    parser.add_argument("--out", type=Path, default=CANVAS_DIR)
    args = parser.parse_args(argv)
    if not CHROMIUM.exists():
        print(f"{CHROMIUM} is missing: apt-get install -y chromium", file=sys.stderr)
        return 1
    plans = [plan_drawing(i) for i in range(args.count)]
    images = draw_all(plans)
    args.out.mkdir(parents=True, exist_ok=True)
    for old in args.out.glob("canvas-*.png"):
        old.unlink()
    entries = []
    for p, data in zip(plans, images, strict=True):
        name = f"canvas-{p['index']:05d}.png"
        grey = grey_pixels(data)
        Image.fromarray(grey).save(args.out / name, "PNG", optimize=True)
        entries.append({"file": name, "index": p["index"], "label": p["label"], "ink": p["ink"],
                        "pixels_sha256": hashlib.sha256(grey.tobytes()).hexdigest()})  # fmt: skip
    (args.out / "drawings.json").write_text(json.dumps(entries, indent=1) + "\n")
    print(f"{len(entries)} drawings in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
