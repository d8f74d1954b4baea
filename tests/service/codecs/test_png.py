"""A PNG inflated ahead of Pillow decodes to the same picture, and only a plain, whole file is
rewritten."""

from __future__ import annotations

import io
import zlib

import numpy as np
import pytest
from PIL import Image

from service.codecs import png

pytest.importorskip("isal")


def _png(img: Image.Image, **options: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG", **options)
    return buf.getvalue()


def _decoded(data: bytes) -> tuple[str, tuple[int, int], bytes, dict[str, object]]:
    with Image.open(io.BytesIO(data)) as img:
        img.load()
        return img.mode, img.size, img.tobytes(), dict(img.info)


def _pictures() -> list[Image.Image]:
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (90, 70, 4), dtype=np.uint8)
    grey = Image.fromarray(noise[..., 0])
    return [
        grey,
        Image.fromarray(noise[..., :3]),
        Image.fromarray(noise),
        Image.fromarray(noise[..., :2], "LA"),
        grey.convert("1"),
        grey.convert("P"),
        Image.fromarray(noise[..., 0].astype(np.uint16) * 257).convert("I;16"),
        Image.fromarray(rng.integers(0, 256, (400, 300, 3), dtype=np.uint8)),  # stored blocks > 1
    ]


@pytest.mark.parametrize("index", range(8))
@pytest.mark.parametrize("options", [{}, {"compress_level": 0}, {"optimize": True}])
def test_same_picture(index: int, options: dict[str, object]) -> None:
    data = _png(_pictures()[index], **options)
    inflated = png.stored(data)
    assert inflated is not None
    assert _decoded(inflated) == _decoded(data)


def test_chunks_around_the_image_data_are_kept() -> None:
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("comment", "a digit", zip=True)
    img = Image.fromarray(np.arange(256, dtype=np.uint8).reshape(16, 16))
    data = _png(img, pnginfo=info, transparency=0)
    inflated = png.stored(data)
    assert inflated is not None
    assert _decoded(inflated) == _decoded(data)


def test_image_data_in_several_chunks() -> None:
    data = _png(Image.fromarray(np.arange(4096, dtype=np.uint16).reshape(64, 64).astype(np.uint8)))
    head, rest = data[:33], data[33:]
    (length,) = np.frombuffer(rest[:4], ">u4")
    body, tail = rest[8 : 8 + length], rest[12 + length :]

    def chunk(part: bytes) -> bytes:
        crc = zlib.crc32(b"IDAT" + part)
        return len(part).to_bytes(4, "big") + b"IDAT" + part + crc.to_bytes(4, "big")

    split = head + chunk(body[:10]) + chunk(body[10:]) + tail
    inflated = png.stored(split)
    assert inflated is not None
    assert _decoded(inflated) == _decoded(data)


def test_a_broken_file_is_left_to_pillow() -> None:
    data = _png(Image.fromarray(np.random.default_rng(1).integers(0, 256, (40, 40), np.uint8)))
    for cut in range(8, len(data) - 12, 7):  # cut inside the header or the image data
        assert png.stored(data[:cut]) is None
    corrupt = bytearray(data)
    corrupt[len(data) // 2] ^= 0xFF
    assert png.stored(bytes(corrupt)) is None
    assert png.stored(b"not a png") is None


def test_interlaced_is_left_to_pillow() -> None:
    data = bytearray(_png(Image.new("L", (8, 8), 128)))
    data[28] = 1  # the header's interlace method
    assert png.stored(bytes(data)) is None


def test_a_large_image_is_left_to_pillow(monkeypatch: pytest.MonkeyPatch) -> None:
    data = _png(Image.new("L", (100, 100), 200))
    assert png.stored(data) is not None
    monkeypatch.setattr(png, "MAX_INFLATED", 100 * 101 - 1)  # one byte short of its scanlines
    assert png.stored(data) is None


def _with_window(data: bytes, window: int) -> bytes:
    """The file with its zlib header declaring a window of 2 ** (window + 8) bytes."""
    start = data.index(b"IDAT") + 4
    cmf = window << 4 | 8
    flg = data[start + 1] & 0xE0
    flg |= (31 - (cmf * 256 + flg) % 31) % 31
    return data[:start] + bytes([cmf, flg]) + data[start + 2 :]


def test_a_window_zlib_would_refuse_is_left_to_pillow() -> None:
    img = Image.fromarray(np.random.default_rng(2).integers(0, 256, (60, 60), np.uint8))
    data = _png(img)
    assert png.stored(_with_window(data, 8)) is None  # over 32 KiB: zlib's "invalid window size"
    assert png.stored(_with_window(data, 3)) is None  # 2 KiB: the scanlines do not fit in it
    small = _png(Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8)))
    assert png.stored(_with_window(small, 1)) is not None  # 512 bytes: all of its 72 bytes fit


def test_a_file_padded_with_many_chunks_is_left_to_pillow() -> None:
    data = _png(Image.new("L", (8, 8), 128))

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return len(body).to_bytes(4, "big") + kind + body + crc.to_bytes(4, "big")

    few = data[:33] + chunk(b"tEXt", b"k\x00v") * png.MAX_CHUNKS + data[33:]
    many = data[:33] + chunk(b"tEXt", b"k\x00v") * (png.MAX_CHUNKS + 1) + data[33:]
    assert png.stored(few) is not None
    assert png.stored(many) is None  # walked twice, it would cost more than it saves
    assert _decoded(many)[:3] == _decoded(data)[:3]


def test_image_data_padded_with_empty_blocks_is_left_to_pillow() -> None:
    """Empty deflate blocks inflate to nothing, and ISA-L takes some fifty times zlib's time
    over them: a small picture with a megabyte of them would cost a second of CPU."""
    img = Image.fromarray(np.random.default_rng(3).integers(0, 256, (28, 28), np.uint8))
    data = _png(img)
    scanlines = b"".join(b"\x00" + img.tobytes()[row * 28 : (row + 1) * 28] for row in range(28))
    packer = zlib.compressobj(wbits=-15)
    raw = packer.compress(scanlines) + packer.flush()

    def padded(blocks: int) -> bytes:
        empty = b"\x00\x00\x00\xff\xff" * blocks  # stored, not final, no bytes
        stream = b"\x78\x01" + empty + raw + zlib.adler32(scanlines).to_bytes(4, "big")
        body = b"IDAT" + stream
        idat = len(stream).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")
        start = data.index(b"IDAT") - 4
        end = start + 12 + int.from_bytes(data[start : start + 4], "big")
        return data[:start] + idat + data[end:]

    assert png.stored(padded(2)) is not None  # a few: still rewritten, the same pixels
    assert _decoded(png.stored(padded(2)) or b"")[:3] == _decoded(data)[:3]
    bomb = padded(200_000)  # 1 MB of empty blocks
    assert png.stored(bomb) is None
    assert _decoded(bomb)[:3] == _decoded(data)[:3]  # Pillow reads it as it is
