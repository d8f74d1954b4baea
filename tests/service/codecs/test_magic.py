"""image_format: an ISO base media file named by its ftyp box's brands."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from service.codecs.magic import image_format
from service.errors import UnsupportedMediaType
from service.inputs.images import decode_image
from tests.helpers.inputs import encode

_FILLER = [b"miaf", b"MA1B", b"iso8", b"iso9", b"isoa", b"iso7", b"iso6", b"iso5", b"iso4"]


def _with_brands(data: bytes, major: bytes, brands: list[bytes]) -> bytes:
    """A Pillow AVIF with another ``ftyp`` box (its one extent's offset moved to match)."""
    ftyp = int.from_bytes(data[:4], "big")
    box = struct.pack(">I", 16 + 4 * len(brands)) + b"ftyp" + major + bytes(4) + b"".join(brands)
    out = bytearray(box + data[ftyp:])
    iloc = out.index(b"iloc") - 4
    assert out[iloc + 12 : iloc + 14] == b"\x44\x00" and out[iloc + 20 : iloc + 22] == b"\0\1"
    offset = int.from_bytes(out[iloc + 22 : iloc + 26], "big") + len(box) - ftyp
    out[iloc + 22 : iloc + 26] = offset.to_bytes(4, "big")
    return bytes(out)


def test_an_avif_named_late_among_many_compatible_brands_is_an_avif() -> None:
    """The 13th compatible brand of a ``mif1`` file was past the 64 bytes read: an AVIF was
    named 'HEIF', and the way to send it instead was not given."""
    pixels = np.full((40, 60), 255, np.uint8)
    pixels[8:32, 27:33] = 0
    original = encode(pixels, "AVIF", quality=90)
    data = _with_brands(original, b"mif1", [b"mif1", *_FILLER, b"iso3", b"iso2", b"avif"])
    assert int.from_bytes(data[:4], "big") > 64 and image_format(data) == "AVIF"
    with pytest.raises(UnsupportedMediaType, match="AVIF images are not supported"):
        decode_image(data, max_pixels=1_000_000)


@pytest.mark.parametrize(
    ("brands", "size", "name"),
    [
        ([b"mif1", b"heic"], None, "HEIC"),
        ([b"mif1", b"avif"], 20, "HEIF"),  # the box ends before its brand
        ([b"mif1", b"avif"], 0, "HEIF"),
        ([b"mif1", b"avif"], 1 << 31, "AVIF"),  # a box longer than the data: the data's end
        ([b"mif1"] * 1024 + [b"avif"], None, "HEIF"),  # past the 4 KiB read
    ],
)
def test_compatible_brands_are_read_within_the_box(
    brands: list[bytes], size: int | None, name: str
) -> None:
    size = 16 + 4 * len(brands) if size is None else size
    data = struct.pack(">I", size) + b"ftypmif1" + bytes(4) + b"".join(brands)
    assert image_format(data) == name
