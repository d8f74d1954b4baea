"""Whether the service's upload preprocessing still gives the same outputs on the photo set.

``python -m benchmarks.photos.preprocess_identity --save BASE.npz`` runs every picture of the
photo set (``benchmarks/photos/.cache``) through the service's own upload path
(:func:`service.inputs.images.decode_image`, with the framing the manifest gives it; pictures
without one, out-of-distribution ones and blank pages, with both framings) and through
:func:`service.inputs.images.decode_digits` for the pictures of numbers, and saves every 28x28
output or its "no ink found" outcome. ``--compare BASE.npz`` runs the same again and reports the
largest absolute difference and every picture whose outcome changed between ink and no ink.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from benchmarks.photos.evaluate import load_manifest
from benchmarks.photos.generate import DEFAULT_OUT
from service.errors import ServeError
from service.inputs.images import decode_digits, decode_image

MAX_PIXELS = 50_000_000  # above any picture of the set


def _cases(cache: Path) -> list[tuple[str, str, bytes]]:
    """(key, how, file bytes) for every run: ``how`` is a framing, or "number"."""
    cases = []
    for row in load_manifest(cache):
        data = (cache / row["file"]).read_bytes()
        framings = [row["framing"]] if row.get("framing") else ["digit", "item"]
        if row["subset"] == "multi":
            framings.append("number")
        cases += [(f"{row['file']}|{how}", how, data) for how in framings]
    return cases


def _run(how: str, data: bytes) -> np.ndarray | None:
    """The outputs (n, 28, 28) of one picture, or None when no ink was found."""
    try:
        if how == "number":
            return np.stack([d.image for d in decode_digits(data, max_pixels=MAX_PIXELS)])
        return decode_image(data, max_pixels=MAX_PIXELS, fit=how)[None]  # type: ignore[arg-type]
    except ServeError:
        return None


def outputs(cache: Path = DEFAULT_OUT) -> dict[str, np.ndarray]:
    """Key -> outputs; an empty (0, 28, 28) array for "no ink found"."""
    out = {}
    for key, how, data in _cases(cache):
        x = _run(how, data)
        out[key] = np.zeros((0, 28, 28), np.float32) if x is None else x.astype(np.float32)
    return out


def compare(base: dict[str, np.ndarray], now: dict[str, np.ndarray]) -> tuple[float, list[str]]:
    """The largest absolute difference and the keys whose outcome (or digit count) changed."""
    worst, changed = 0.0, []
    for key in sorted(set(base) | set(now)):
        a, b = base.get(key), now.get(key)
        if a is None or b is None or a.shape != b.shape:
            changed.append(key)
        elif a.size:
            worst = max(worst, float(np.abs(a - b).max()))
    return worst, changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--save", type=Path, help="write the outputs here")
    group.add_argument("--compare", type=Path, help="compare with outputs saved before")
    parser.add_argument("--tolerance", type=float, default=0.0)
    args = parser.parse_args(argv)
    now = outputs()
    if args.save:
        np.savez_compressed(args.save, **now)
        print(f"saved {len(now)} outputs to {args.save}")
        return 0
    with np.load(args.compare) as saved:
        base = {k: saved[k] for k in saved.files}
    worst, changed = compare(base, now)
    blank = sum(1 for v in now.values() if not v.size)
    print(f"compared {len(now)} outputs ({blank} no ink): max abs diff {worst:.3g}, "
          f"{len(changed)} changed outcome")  # fmt: skip
    for key in changed[:20]:
        print(f"  changed: {key}")
    return 0 if worst <= args.tolerance and not changed else 1


if __name__ == "__main__":
    sys.exit(main())
