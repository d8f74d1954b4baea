"""What a user gets for a picture that is no digit (or no garment), over real HTTP.

``python -m benchmarks.photos.nondigits --url http://127.0.0.1:8000 [--seed N] [--per-kind N]``

Pictures users send to the mnist model that hold no digit, photographed or drawn with the photo
set's machinery (:mod:`benchmarks.photos.generate`: its papers, lights, inks, camera, encodings
and handwriting fonts, plus printed DejaVu faces): letters (clear ones such as A, B, k, x, e, and
apart from them the ones shaped like a digit, O, l, S, Z, ...), symbols (+, ?, #, @, %, =,
arrows), doodles (a smiley, a star, a heart), signature scribbles, words, small sketches of an
object, and garment photos. Beside them, as many ordinary digit photos from the same machinery.
The fashion_mnist model gets digit photos (not its own) and garment photos (its own).

Each picture is posted as the raw body to ``/models/<name>/predict`` (the default version) and
its answer sorted: refused (422: nothing found, several marks side by side, or another reason),
answered and flagged out of distribution, answered unflagged with top probability >= 0.9 (a
confident wrong answer for a non-digit), or answered unflagged and less sure. The OOD score's
AUROC is taken on the answered pictures (non-digits against digits). Everything is drawn from
``--seed``; another seed is a fresh draw. Writes ``benchmarks/results/nondigits.{md,json}``
(``--out`` to change the stem).
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from benchmarks.photos import generate as gen
from benchmarks.photos.ood_metrics import auroc

RESULTS = Path(__file__).resolve().parents[1] / "results"
PRINTED = (  # relative to /usr/share/fonts: printed faces beside the handwriting ones
    "truetype/dejavu/DejaVuSans.ttf",
    "truetype/dejavu/DejaVuSans-Bold.ttf",
    "truetype/dejavu/DejaVuSerif.ttf",
    "truetype/dejavu/DejaVuSansMono.ttf",
)
CLEAR_LETTERS = "ABEKMRWaehkx"
DIGIT_LIKE_LETTERS = "OolISsZzgqb"  # 0 1 1 1 5 5 2 2 9 9 6: reading them as digits is fair
SYMBOLS = "+?#@%=&*"
ARROWS = "→←↑↗"
WORDS = ("hello", "yes", "Hi", "cat", "OK", "abc", "hey", "no")
DOODLES = ("smiley", "star", "heart")
SKETCHES = ("house", "sun", "tree", "cup", "fish", "flower")
POOLS: dict[str, Sequence[str]] = {
    "letter": CLEAR_LETTERS,
    "letter-digit-like": DIGIT_LIKE_LETTERS,
    "symbol": SYMBOLS + ARROWS,
    "word": WORDS,
    "doodle": DOODLES,
    "signature": ("signature",),
    "sketch": SKETCHES,
}
TYPED_KINDS = ("letter", "letter-digit-like", "symbol", "word")  # typed in a font; others drawn
# kinds sent to mnist that hold no digit ("letter-digit-like" is reported apart, not as a miss);
# a kind's position seeds its pictures, so new kinds go at the end
NON_DIGIT_KINDS = (
    "letter",
    "letter-digit-like",
    "symbol",
    "doodle",
    "signature",
    "word",
    "sketch",
    "garment",
)
SHARES = {
    "letter": 0.25,
    "letter-digit-like": 0.125,
    "symbol": 0.15,
    "doodle": 0.1,
    "signature": 0.075,
    "word": 0.075,
    "sketch": 0.1,
    "garment": 0.125,
}
OFFSET = 200_000  # generate's digit and garment pictures are drawn from this index on
CONFIDENT = 0.9


# ------------------------------------------------------------------ ink masks


def _fonts() -> tuple[list[Path], list[Path]]:
    hand = gen.available_fonts()
    printed = [gen.FONT_ROOT / rel for rel in PRINTED if (gen.FONT_ROOT / rel).is_file()]
    return hand, printed


def _has_glyph(face: ImageFont.FreeTypeFont, text: str) -> bool:
    """False when the face draws its "missing glyph" box for ``text``."""

    def ink(ch: str) -> bytes:
        return bytes(face.getmask(ch))

    missing = ink("\uffff")
    return all(ink(ch) != missing for ch in text if not ch.isspace())


def text_mask(
    text: str, fonts: list[Path], rng: np.random.Generator, tags: list[str]
) -> np.ndarray:
    """``text`` typed in one of ``fonts`` that has its glyphs, at canvas scale, pen width varied."""
    order = rng.permutation(len(fonts))
    size = int(rng.integers(120, 180)) if len(text) == 1 else int(rng.integers(50, 80))
    for i in order:
        face = ImageFont.truetype(str(fonts[int(i)]), size)
        if _has_glyph(face, text):
            tags.append(f"font:{fonts[int(i)].stem}")
            break
    else:
        face = ImageFont.truetype(str(gen.FONT_ROOT / PRINTED[0]), size)
        tags.append("font:DejaVuSans")
    width = gen.CANVAS * 2 if len(text) > 1 else gen.CANVAS + 64
    img = Image.new("L", (width, gen.CANVAS + 64), 0)
    draw = ImageDraw.Draw(img)
    left, top, right, bottom = draw.textbbox((0, 0), text, font=face)
    draw.text(
        ((img.width - right - left) / 2, (img.height - bottom - top) / 2), text, fill=255, font=face
    )
    return gen._trim(gen._pen_width(gen._f(img), rng, tags))


def _ellipse(
    cx: float, cy: float, rx: float, ry: float, a0: float, a1: float, n: int = 24
) -> list[tuple[float, float]]:
    t = np.linspace(math.radians(a0), math.radians(a1), n)
    return [(cx + rx * math.cos(a), cy + ry * math.sin(a)) for a in t]


def _shape(kind: str, rng: np.random.Generator) -> list[list[tuple[float, float]]]:
    """Strokes (unit box, x right, y down) of a doodle, signature or sketch."""
    u = rng.uniform
    if kind == "smiley":
        strokes = [_ellipse(0.5, 0.5, 0.45, 0.45, 0, 360, 32)]
        for x in (0.35, 0.65):
            strokes.append([(x, 0.33), (x, 0.42)])
        strokes.append(_ellipse(0.5, 0.55, 0.22, u(0.1, 0.2), 20, 160, 12))
        return strokes
    if kind == "star":
        pts = [
            (
                0.5 + 0.48 * math.sin(math.radians(144 * k)),
                0.52 - 0.48 * math.cos(math.radians(144 * k)),
            )
            for k in range(6)
        ]
        return [pts]
    if kind == "heart":
        t = np.linspace(0, 2 * math.pi, 40)
        hx = 16 * np.sin(t) ** 3
        hy = 13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t)
        return [[(0.5 + float(a) / 34, 0.45 - float(b) / 34) for a, b in zip(hx, hy, strict=True)]]
    if kind == "signature":
        n = int(rng.integers(8, 15))
        xs = np.sort(rng.uniform(0, 3.0, n))
        ys = 0.5 + rng.normal(0, 0.25, n)
        strokes = [list(zip(xs.tolist(), ys.tolist(), strict=True))]
        if rng.random() < 0.5:  # the underline
            strokes.append([(float(u(-0.1, 0.3)), 0.95), (float(u(2.4, 3.1)), float(u(0.8, 1.0)))])
        return strokes
    if kind == "house":
        return [
            [(0.15, 0.45), (0.15, 0.95), (0.85, 0.95), (0.85, 0.45), (0.15, 0.45)],
            [(0.08, 0.5), (0.5, 0.08), (0.92, 0.5)],
            [(0.42, 0.95), (0.42, 0.7), (0.58, 0.7), (0.58, 0.95)],
        ]
    if kind == "sun":
        strokes = [_ellipse(0.5, 0.5, 0.22, 0.22, 0, 360, 24)]
        for k in range(int(rng.integers(6, 11))):
            a = 2 * math.pi * k / 8 + u(-0.1, 0.1)
            strokes.append(
                [
                    (0.5 + 0.3 * math.cos(a), 0.5 + 0.3 * math.sin(a)),
                    (0.5 + 0.48 * math.cos(a), 0.5 + 0.48 * math.sin(a)),
                ]
            )
        return strokes
    if kind == "tree":
        return [
            [(0.45, 0.97), (0.45, 0.6)],
            [(0.57, 0.97), (0.57, 0.6)],
            _ellipse(0.51, 0.35, 0.4, 0.3, 0, 360, 28),
        ]
    if kind == "cup":
        return [
            [(0.15, 0.2), (0.2, 0.85), (0.3, 0.95), (0.6, 0.95), (0.7, 0.85), (0.75, 0.2)],
            [(0.15, 0.2), (0.75, 0.2)],
            _ellipse(0.78, 0.52, 0.16, 0.18, -80, 80, 10),
        ]
    if kind == "fish":
        return [
            _ellipse(0.42, 0.5, 0.32, 0.2, 0, 360, 28),
            [(0.74, 0.5), (0.97, 0.3), (0.97, 0.7), (0.74, 0.5)],
            [(0.25, 0.45), (0.26, 0.47)],
        ]
    # flower
    strokes = [_ellipse(0.5, 0.32, 0.08, 0.08, 0, 360, 12), [(0.5, 0.42), (0.52, 0.97)]]
    for k in range(5):
        a = 2 * math.pi * k / 5
        strokes.append(
            _ellipse(0.5 + 0.17 * math.cos(a), 0.32 + 0.17 * math.sin(a), 0.09, 0.09, 0, 360, 12)
        )
    return strokes


def stroke_mask(kind: str, rng: np.random.Generator, tags: list[str]) -> np.ndarray:
    """A hand-drawn ``kind``: its strokes jittered, slanted, rotated and smoothed, drawn with a
    round pen as the photo set's pen digits are."""
    strokes = _shape(kind, rng)
    span = max(max(x for x, _ in s) for s in strokes) - min(min(x for x, _ in s) for s in strokes)
    height = 180.0 if span <= 1.2 else 70.0  # a signature is long and low
    slant = float(rng.uniform(-0.25, 0.15))
    a = math.radians(float(rng.uniform(-10, 10)))
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    width_frac = float(rng.choice([rng.uniform(0.02, 0.05), rng.uniform(0.05, 0.09)]))
    pen = max(2, round(width_frac * 180.0))
    tags.append("pen-fine" if width_frac < 0.05 else "pen")
    size = (round(height * (span + 0.6)) + 96, round(height * 1.6) + 96)
    img = Image.new("L", size, 0)
    draw = ImageDraw.Draw(img)
    for stroke in strokes:
        pts = np.array(stroke, np.float64) + rng.normal(0.0, 0.02, (len(stroke), 2))
        pts[:, 0] = pts[:, 0] - span / 2 - slant * (pts[:, 1] - 0.5)
        pts[:, 1] = pts[:, 1] - 0.5
        path = gen._catmull_rom(pts @ rot.T, per_segment=4) * height
        xy = [(float(x) + size[0] / 2, float(y) + size[1] / 2) for x, y in path]
        draw.line(xy, fill=255, width=pen, joint="curve")
        r = pen / 2
        for x, y in (xy[0], xy[-1]):
            draw.ellipse((x - r, y - r, x + r, y + r), fill=255)
    return gen._trim(gen._f(img))


# ------------------------------------------------------------------ pictures


def photograph(
    mask: np.ndarray, rng: np.random.Generator, key: str, tags: list[str]
) -> tuple[bytes, str]:
    """``mask`` photographed or drawn as the photo set's digits are (its ``digit_picture``):
    scene, paper, ink, placement, light, camera and file format."""
    h8 = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16)
    size_class = "phone" if h8 % 50 == 7 else "icon" if h8 % 5 == 0 else "300px"
    out = gen._size(size_class, rng)
    scene = gen._scene(rng) if size_class != "phone" else gen._scene(rng, 0.0)
    tags.append(f"scene:{scene}")
    if scene == "drawing":
        img = gen._drawing(mask, out, rng, tags)
        return gen.encode(img, size_class, rng, tags)
    rw, rh = gen._render_size(out)
    h, w = round(rh * 1.15), round(rw * 1.15)
    page = gen.paper(rng, h, w, scene)
    frac = float(rng.uniform(0.25, 0.75))
    m = gen._resize_mask(mask, round(frac * min(rh, rw) * (rh / min(rh, rw)) ** 0.5))
    if m.shape[1] > 0.9 * rw:
        m = gen._resize_mask(m, max(1, round(m.shape[0] * 0.9 * rw / m.shape[1])))
    top = round((h - rh) / 2 + rng.uniform(0.03, 0.97) * max(1, rh - m.shape[0]))
    left = round((w - rw) / 2 + rng.uniform(0.03, 0.97) * max(1, rw - m.shape[1]))
    colour, alpha = gen.ink_colour(rng, tags)
    if "pencil" in tags:
        m = m * np.clip(rng.normal(1.0, 0.25, m.shape), 0.3, 1.0).astype(np.float32)
    gen.place(page, m, top, left, colour, alpha)
    page *= gen.light(rng, h, w, scene)[..., None]
    img = gen.camera(page, rng, tags, out_size=out, grey=rng.random() < 0.1)
    return gen.encode(img, size_class, rng, tags)


def counts(total: int) -> dict[str, int]:
    """Pictures per non-digit kind for ``total`` of them (rounded, at least one each)."""
    return {kind: max(1, round(total * share)) for kind, share in SHARES.items()}


def non_digit(
    kind: str,
    index: int,
    seed: int,
    fonts: tuple[list[Path], list[Path]],
    fashion: tuple[np.ndarray, np.ndarray],
) -> dict[str, Any]:
    """One picture of ``kind`` (seeded by ``seed``, the kind and ``index``) as ``{"data",
    "kind", "what", "tags"}``."""
    rng = np.random.default_rng([seed, NON_DIGIT_KINDS.index(kind), index])
    if kind == "garment":
        pic = gen.fashion_picture(OFFSET + seed * 10_000 + index, fashion)
        assert pic.image is not None
        data, _ = gen.encode(pic.image, pic.size_class, rng, [])
        return {"data": data, "kind": kind, "what": f"garment {pic.label}", "tags": pic.tags}
    hand, printed = fonts
    tags: list[str] = []
    pool = POOLS[kind]
    what = str(pool[int(rng.integers(0, len(pool)))])
    if kind in TYPED_KINDS:
        typed = rng.random() < 0.3 or what in ARROWS
        tags.append("printed" if typed else "handwriting")
        mask = text_mask(what, printed if typed else hand, rng, tags)
    else:
        mask = stroke_mask(what, rng, tags)
    data, _ = photograph(mask, rng, f"{seed}:{kind}:{index}", tags)
    return {"data": data, "kind": kind, "what": what, "tags": tags}


def own(
    name: str,
    index: int,
    seed: int,
    fonts: list[Path],
    mnist: tuple[np.ndarray, np.ndarray],
    fashion: tuple[np.ndarray, np.ndarray],
) -> dict[str, Any]:
    """An ordinary digit (or garment) photo from the photo set's own generator, at indices the
    set does not use."""
    i = OFFSET + seed * 10_000 + index
    pic = gen.digit_picture(i, mnist, fonts) if name == "mnist" else gen.fashion_picture(i, fashion)
    assert pic.image is not None
    data, _ = gen.encode(pic.image, pic.size_class, gen.rng_for(pic.subset, i), [])
    return {
        "data": data,
        "kind": "digit" if name == "mnist" else "garment",
        "what": str(pic.label),
        "tags": [pic.source, f"scene:{pic.scene}"],
    }


TestSets = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def draw(seed: int, total: int, data: TestSets | None = None) -> dict[str, list[dict[str, Any]]]:
    """The pictures each model gets: ``{"mnist": [...], "fashion_mnist": [...]}``, each item
    with ``inside`` (the model's own kind of picture) true or false. ``total`` non-digits go to
    mnist with as many digits; a quarter of that many digits and garments each to fashion_mnist.
    ``data``: the (mnist, fashion_mnist) test sets, read from the cache when None."""
    mnist, fashion = data or (gen.load_test_set("mnist"), gen.load_test_set("fashion_mnist"))
    fonts = _fonts()
    sent: dict[str, list[dict[str, Any]]] = {"mnist": [], "fashion_mnist": []}
    for kind, n in counts(total).items():
        for i in range(n):
            sent["mnist"].append({**non_digit(kind, i, seed, fonts, fashion), "inside": False})
    n_own = len(sent["mnist"])
    for i in range(n_own):
        sent["mnist"].append({**own("mnist", i, seed, fonts[0], mnist, fashion), "inside": True})
    n_fashion = n_own // 4
    for i in range(n_fashion):
        digit = own("mnist", n_own + i, seed, fonts[0], mnist, fashion)
        sent["fashion_mnist"].append({**digit, "inside": False})
        sent["fashion_mnist"].append(
            {**own("fashion_mnist", i, seed, fonts[0], mnist, fashion), "inside": True}
        )
    return sent


# ------------------------------------------------------------------ over HTTP


def post(conn: http.client.HTTPConnection, name: str, data: bytes) -> dict[str, Any]:
    """One picture to the default version: status, label, top probability, score, flag."""
    conn.request(
        "POST",
        f"/models/{name}/predict?top_k=1",
        body=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    resp = conn.getresponse()
    body = json.loads(resp.read() or b"{}")
    if resp.status != 200:
        why = refusal(json.dumps(body))
        return {"status": resp.status, "refused": why, "detail": str(body)[:200]}
    p = body["predictions"][0]
    return {
        "status": 200,
        "version": body.get("version"),
        "label": p["label"],
        "top": float(p["top_k"][0]["probability"]),
        "score": p.get("ood_score"),
        "flag": p.get("out_of_distribution"),
    }


def refusal(detail: str) -> str:
    """Why a picture was refused, from the problem's text."""
    said = detail.lower()
    if "nothing stands out" in said:
        return "nothing found"
    if "several" in said or "side by side" in said:
        return "several"
    return "other"


def outcome(a: dict[str, Any]) -> str:
    if a["status"] != 200:
        return "refused: " + a["refused"]
    if a["flag"]:
        return "flagged"
    return "confident, unflagged" if a["top"] >= CONFIDENT else "unsure, unflagged"


OUTCOMES = (
    "refused: nothing found",
    "refused: several",
    "refused: other",
    "flagged",
    "confident, unflagged",
    "unsure, unflagged",
)


def shares(items: list[dict[str, Any]]) -> dict[str, Any]:
    n = len(items)
    got = {o: sum(1 for it in items if it["outcome"] == o) for o in OUTCOMES}
    answered = [it for it in items if it["answer"]["status"] == 200]
    return {"n": n, **got, "answered": len(answered), "flagged_of_answered": flag_share(answered)}


def flag_share(answered: list[dict[str, Any]]) -> float | None:
    """Share of answered pictures flagged out of distribution (None: none answered)."""
    if not answered:
        return None
    return round(sum(bool(it["answer"]["flag"]) for it in answered) / len(answered), 4)


def summarise(name: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    inside = [it for it in items if it["inside"]]
    outside = [it for it in items if not it["inside"]]
    own_scores = np.array([it["answer"]["score"] for it in inside if it["answer"]["status"] == 200])

    def area(sel: list[dict[str, Any]]) -> float | None:
        s = np.array([it["answer"]["score"] for it in sel if it["answer"]["status"] == 200])
        value = auroc(own_scores, s)
        return None if value is None else round(value, 4)

    kinds = sorted(
        {it["kind"] for it in outside},
        key=lambda k: NON_DIGIT_KINDS.index(k) if k in NON_DIGIT_KINDS else -1,
    )
    clear = [it for it in outside if it["kind"] != "letter-digit-like"]
    own_answered = [it for it in inside if it["answer"]["status"] == 200]
    return {
        "model": name,
        "version": next((it["answer"].get("version") for it in own_answered), None),
        "own": shares(inside),
        "own_flagged": flag_share(own_answered),
        "clear_non_digits": {**shares(clear), "auroc": area(clear)},
        "kinds": {
            k: {**shares(sel := [it for it in outside if it["kind"] == k]), "auroc": area(sel)}
            for k in kinds
        },
        "refused_other": sorted(
            it["answer"]["detail"] for it in items if it["outcome"] == "refused: other"
        ),
        "passed_unflagged": sorted(
            f"{it['kind']}:{it['what']}->{it['answer']['label']}"
            for it in clear
            if it["outcome"] == "confident, unflagged"
        ),
    }


def run(url: str, seed: int, total: int) -> dict[str, Any]:
    t0 = time.monotonic()
    sent = draw(seed, total)
    made = time.monotonic() - t0
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=60)
    out: dict[str, Any] = {"seed": seed, "url": url, "generated_s": round(made, 1), "models": {}}
    for name, items in sent.items():
        for it in items:
            it["answer"] = post(conn, name, it.pop("data"))
            it["outcome"] = outcome(it["answer"])
        out["models"][name] = summarise(name, items)
    conn.close()
    return out


def markdown(result: dict[str, Any]) -> str:
    lines = [f"# Non-digit pictures over HTTP (seed {result['seed']})", ""]
    for name, m in result["models"].items():
        lines += [
            f"## {name} version {m['version']}",
            "",
            "| pictures | n | 422 nothing found | 422 several | 422 other | flagged | "
            "confident unflagged | unsure unflagged | AUROC vs own |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        rows = [
            ("own (in distribution)", {**m["own"], "auroc": None}),
            ("not own (digit-like letters apart)", m["clear_non_digits"]),
            *m["kinds"].items(),
        ]
        for label, s in rows:
            au = "" if s.get("auroc") is None else f"{s['auroc']:.3f}"
            lines.append(
                f"| {label} | {s['n']} | {s['refused: nothing found']} | "
                f"{s['refused: several']} | {s['refused: other']} | {s['flagged']} | "
                f"{s['confident, unflagged']} | {s['unsure, unflagged']} | {au} |"
            )
        lines += ["", f"Own pictures flagged (of those answered): {m['own_flagged']}.", ""]
        if m["passed_unflagged"]:
            lines += ["Confident and unflagged: " + ", ".join(m["passed_unflagged"]), ""]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--total", type=int, default=320, help="non-digit pictures sent to mnist")
    ap.add_argument("--out", default=str(RESULTS / "nondigits"))
    args = ap.parse_args(argv)
    result = run(args.url, args.seed, args.total)
    Path(args.out + ".json").write_text(json.dumps(result, indent=1) + "\n")
    Path(args.out + ".md").write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
