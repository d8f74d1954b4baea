"""decode_image: container safety (type, format, pixel limit, bombs) and every error."""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from collections.abc import Callable

import numpy as np
import pytest
from PIL import Image

from service.errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType
from service.inputs.images import compressed_with_loss, decode_image, image_size
from service.inputs.preprocess import NoInkFound
from tests.helpers.inputs import encode

LIMIT = 4_000_000
ToBytes = Callable[..., bytes]


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares width x height: a decompression-bomb shape."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))  # fmt: skip


def jpeg_declaring(to_bytes: ToBytes, width: int, height: int) -> bytes:
    """A small real JPEG with its SOF0 size fields patched."""
    data = bytearray(to_bytes(np.zeros((8, 8), np.uint8), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


@pytest.fixture
def digit_png(to_bytes: ToBytes) -> bytes:
    a = np.zeros((28, 28), np.uint8)
    a[6:22, 12:16] = 255
    return to_bytes(a)


@pytest.mark.parametrize(
    "content_type",
    [None, "image/png", "IMAGE/PNG; charset=binary", "application/octet-stream", "image/jpeg",
     "image/jpg", ""],
)  # fmt: skip
def test_accepted_content_types(digit_png: bytes, content_type: str | None) -> None:
    out = decode_image(digit_png, max_pixels=LIMIT, content_type=content_type)
    assert out.shape == (28, 28) and out.dtype == np.float32


@pytest.mark.parametrize(
    "content_type", ["text/plain", "image/gif", "application/json", "image/heic", "multipart/x"]
)
def test_unsupported_content_type_is_415(digit_png: bytes, content_type: str) -> None:
    with pytest.raises(UnsupportedMediaType, match="unsupported image type") as info:
        decode_image(digit_png, max_pixels=LIMIT, content_type=content_type)
    assert (
        info.value.status_code == 415
        and "send image/png, image/jpeg or image/webp" in info.value.message
    )


@pytest.mark.parametrize("fmt", ["GIF", "BMP", "TIFF"])
def test_other_image_formats_are_415_even_when_declared_png(to_bytes: ToBytes, fmt: str) -> None:
    try:
        data = to_bytes(np.zeros((8, 8, 3), np.uint8), fmt)
    except (OSError, KeyError):
        pytest.skip(f"Pillow cannot write {fmt} here")
    with pytest.raises(UnsupportedMediaType, match=f"{fmt} images are not supported"):
        decode_image(data, max_pixels=LIMIT, content_type="image/png")


@pytest.mark.parametrize(
    ("data", "name"),
    [
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", "HEIC"),  # an iPhone photo
        # HEIF's generic brand first: the compatible brands say what it holds
        (b"\x00\x00\x00\x18ftypmif1\x00\x00\x00\x00mif1heic", "HEIC"),
        (b"\x00\x00\x00\x18ftypmif1\x00\x00\x00\x00mif1miaf", "HEIF"),
        (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>', "SVG"),
        (b"\xef\xbb\xbf  <svg width='28'></svg>", "SVG"),
        (b"\xff\x0a\xfa\x7f", "JPEG XL"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "PDF"),  # a scanned page
    ],
)
def test_phone_and_vector_formats_are_named_and_415(data: bytes, name: str) -> None:
    for declared in (None, "image/png"):
        with pytest.raises(UnsupportedMediaType, match=f"{name} images are not supported"):
            decode_image(data, max_pixels=LIMIT, content_type=declared)


@pytest.mark.parametrize(
    ("data", "hint"),
    [
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", "share it as JPEG"),
        (b"<svg width='28'></svg>", "export it as PNG"),
        (b"%PDF-1.4\n", "export the page as PNG or JPEG"),
    ],
)
def test_a_refused_format_says_how_to_send_it(data: bytes, hint: str) -> None:
    """Whatever type the client declared for it (curl names a part's type from its file name)."""
    for declared in (None, "image/heic", "application/pdf", "image/svg+xml", "image/png"):
        with pytest.raises(UnsupportedMediaType, match=hint):
            decode_image(data, max_pixels=LIMIT, content_type=declared)


@pytest.mark.parametrize(
    ("data", "match"),
    [(b"", "empty"), (b"hello, world", "not a PNG, JPEG or WebP"),
     (b"<?xml version='1.0'?><html/>", "not a PNG, JPEG or WebP"),
     (b"\x89PNG\r\n\x1a\n", "PNG image"),
     (b"\x89PNG\r\n\x1a\n" + bytes(100), "cannot be decoded"),
     (b"\xff\xd8\xff" + bytes(50), "JPEG")],
)  # fmt: skip
def test_undecodable_bytes_are_422(data: bytes, match: str) -> None:
    with pytest.raises(InvalidInput, match=match) as info:
        decode_image(data, max_pixels=LIMIT)
    assert info.value.status_code == 422


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_file_is_422(to_bytes: ToBytes, fmt: str) -> None:
    noise = np.random.default_rng(1).integers(0, 256, (64, 64), dtype=np.uint8)
    data = to_bytes(noise, fmt)
    with pytest.raises(InvalidInput, match=f"the {fmt} image cannot be decoded"):
        decode_image(data[: len(data) // 2], max_pixels=LIMIT)


def test_pixel_limit_is_413_with_the_numbers(to_bytes: ToBytes) -> None:
    pixels = np.zeros((100, 120), np.uint8)
    pixels[20:80, 55:62] = 255  # a stroke: something to read
    data = to_bytes(pixels)
    assert decode_image(data, max_pixels=12_000).shape == (28, 28)
    with pytest.raises(PayloadTooLarge) as info:
        decode_image(data, max_pixels=11_999)
    assert info.value.status_code == 413
    assert info.value.message == ("the image is 120x100 = 12000 pixels; the limit is 11999 pixels")


@pytest.mark.parametrize(("width", "height"), [(100_000, 1), (1, 20_000)])
def test_extreme_sides_are_413_whatever_the_pixel_count(width: int, height: int) -> None:
    with pytest.raises(PayloadTooLarge, match="each side may be at most 16384 pixels"):
        decode_image(png_declaring(width, height), max_pixels=10**9)


def test_header_size_is_read_without_decoding(to_bytes: ToBytes) -> None:
    assert image_size(png_declaring(20000, 30000)) == (20000, 30000)
    assert image_size(jpeg_declaring(to_bytes, 640, 480)) == (640, 480)
    assert image_size(to_bytes(np.zeros((5, 7, 3), np.uint8), "JPEG")) == (7, 5)
    assert image_size(b"GIF89a") is None


@pytest.mark.parametrize("kind", ["png", "jpeg"])
def test_decompression_bomb_is_413_before_decoding(to_bytes: ToBytes, kind: str) -> None:
    data = png_declaring(20000, 20000) if kind == "png" else jpeg_declaring(to_bytes, 60000, 60000)
    assert len(data) < 1000
    with pytest.raises(PayloadTooLarge, match="pixels"):
        decode_image(data, max_pixels=LIMIT)


@pytest.mark.parametrize("lossless", [False, True])
def test_webp_is_read_like_png_and_jpeg(to_bytes: ToBytes, lossless: bool) -> None:
    pixels = np.full((90, 120), 255, np.uint8)
    pixels[20:70, 55:65] = 0  # a dark vertical stroke on white paper
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "WEBP", lossless=lossless, quality=90)
    data = buffer.getvalue()
    assert image_size(data) == (120, 90)
    out = decode_image(data, max_pixels=LIMIT, content_type="image/webp")
    png = decode_image(to_bytes(pixels), max_pixels=LIMIT)
    assert out.shape == (28, 28) and out.max() > 0.5
    assert np.abs(out - png).mean() < 0.05  # the same stroke, framed the same way
    with pytest.raises(PayloadTooLarge, match="120x90"):
        decode_image(data, max_pixels=120 * 90 - 1)


def test_avif_is_refused_before_it_is_decoded() -> None:
    """libavif decodes the AV1 frame at the size the AV1 data gives, whatever size the file
    declares: this file of a few KB declares 28x28 pixels and holds a 2048x2048 frame. AVIF is
    refused (415) by its magic bytes, with the way to send the picture instead."""
    data = bytearray(encode(np.full((2048, 2048, 3), 255, np.uint8), "AVIF", speed=10))
    at = data.find(b"ispe")
    data[at + 8 : at + 16] = struct.pack(">II", 28, 28)
    assert len(data) < 16_384 and Image.open(io.BytesIO(bytes(data))).size == (28, 28)
    for declared in (None, "image/avif", "image/png"):
        with pytest.raises(UnsupportedMediaType, match="AVIF images are not supported") as info:
            decode_image(bytes(data), max_pixels=LIMIT, content_type=declared)
        assert "save it as PNG or JPEG" in info.value.message


def test_a_damaged_webp_is_said_to_be_damaged_in_plain_words() -> None:
    data = _webp(Image.fromarray(np.full((64, 64), 200, np.uint8)), quality=90)
    for damaged in (data[:40], data[:-10]):
        with pytest.raises(InvalidInput) as info:
            decode_image(damaged, max_pixels=LIMIT)
        assert info.value.message == (
            "the WEBP image cannot be decoded: the file is cut short or damaged"
        )


def _webp(img: Image.Image, **options: object) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, "WEBP", **options)
    return buffer.getvalue()


def test_lossless_webp_is_not_taken_for_lossy() -> None:
    grey, rgba = Image.new("L", (40, 30), 200), Image.new("RGBA", (40, 30), (9, 9, 9, 128))
    frames = [Image.new("RGB", (40, 30), c) for c in ((0, 0, 0), (250, 250, 250))]
    assert compressed_with_loss(_webp(grey, quality=90), "WEBP")  # a VP8 chunk
    assert compressed_with_loss(_webp(rgba, quality=90), "WEBP")  # VP8X, ALPH, then VP8
    assert not compressed_with_loss(_webp(grey, lossless=True), "WEBP")  # VP8L
    assert not compressed_with_loss(_webp(rgba, lossless=True), "WEBP")
    animated = _webp(frames[0], save_all=True, append_images=frames[1:], lossless=True)
    assert not compressed_with_loss(animated, "WEBP")  # VP8X, ANIM, then frames holding VP8L
    assert compressed_with_loss(b"", "JPEG") and not compressed_with_loss(b"", "PNG")


def _riff(*chunks: tuple[bytes, bytes], declared: int | None = None) -> bytes:
    body = b"WEBP" + b"".join(
        kind + len(data).to_bytes(4, "little") + data + b"\0" * (len(data) & 1)
        for kind, data in chunks
    )
    return b"RIFF" + (declared if declared is not None else len(body)).to_bytes(4, "little") + body


def test_the_webp_chunk_walk_is_bounded_and_never_fails() -> None:
    lossless = (b"VP8L", b"\x2f" + bytes(9))
    assert not compressed_with_loss(_riff((b"ICCP", b"odd"), lossless), "WEBP")  # padded chunk
    # the image chunk past many others, or past the RIFF size the file declares: lossy, as
    # a file that says nothing
    assert compressed_with_loss(_riff(*[(b"XTRA", b"")] * 100, lossless), "WEBP")
    assert compressed_with_loss(_riff((b"ICCP", b"ab"), lossless, declared=14), "WEBP")
    whole = _riff(lossless)
    for cut in range(len(whole)):  # truncated anywhere: lossless once its chunk's name is in
        assert compressed_with_loss(whole[:cut], "WEBP") == (cut < 20)
    assert compressed_with_loss(_riff((b"ANMF", bytes(4))), "WEBP")


def test_a_lossless_webp_garment_is_framed_exactly_as_its_png(to_bytes: ToBytes) -> None:
    # a garment's faint levels near the ground are dropped only from lossy files, whose
    # ringing they may be; a lossless WebP holds the PNG's very pixels
    pixels = np.zeros((60, 60), np.uint8)
    pixels[8:52, 15:45] = np.linspace(4, 200, 44, dtype=np.uint8)[:, None]  # faint to bright
    data = _webp(Image.fromarray(pixels), lossless=True)
    out = decode_image(data, max_pixels=LIMIT, fit="item")
    png = decode_image(to_bytes(pixels), max_pixels=LIMIT, fit="item")
    assert np.array_equal(out, png)


def test_webp_header_size_is_read_without_decoding() -> None:
    # VP8X: canvas width and height minus one, 24-bit little-endian each
    vp8x = b"RIFF" + (30).to_bytes(4, "little") + b"WEBPVP8X" + bytes(8)
    vp8x += (19_999).to_bytes(3, "little") + (29_999).to_bytes(3, "little")
    assert image_size(vp8x) == (20_000, 30_000)
    with pytest.raises(PayloadTooLarge, match="each side may be at most 16384 pixels"):
        decode_image(vp8x, max_pixels=10**10)


def test_pillow_bomb_error_becomes_413_when_our_limit_is_higher() -> None:
    # 225 M pixels passes a 10 G limit but trips Pillow's own check (2 x 89 M) in Image.open
    with pytest.raises(PayloadTooLarge, match="too many pixels"):
        decode_image(png_declaring(15000, 15000), max_pixels=10**10)


def test_pillow_bomb_limits_map_to_413(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with warnings.catch_warnings():  # a deployment running with -W error
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with pytest.raises(PayloadTooLarge):
            decode_image(png_declaring(40, 40), max_pixels=10**6)  # 1600 > 1000: Pillow warns
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(PayloadTooLarge):
        decode_image(png_declaring(20, 20), max_pixels=10**6)  # 400 > 2 x 100: Pillow's error


def test_declared_type_may_differ_from_the_bytes(digit_png: bytes) -> None:
    out = decode_image(digit_png, max_pixels=LIMIT, content_type="image/jpeg")
    assert out.max() == pytest.approx(1.0)


def _pen_on_paper(ink: tuple[int, int, int], paper: tuple[int, int, int]) -> Image.Image:
    """A stroke in ``ink`` on ``paper``, with a little grain."""
    rng = np.random.default_rng(5)
    pixels = np.empty((160, 120, 3), np.float32)
    pixels[:] = paper
    pixels[30:130, 55:63] = ink
    pixels += rng.normal(0, 2, (160, 120, 1))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
@pytest.mark.parametrize("ink", [(250, 235, 60), (170, 240, 150), (170, 230, 250)])
def test_ink_of_a_light_colour_is_found_in_the_colour_channels(
    to_bytes: ToBytes, fmt: str, ink: tuple[int, int, int]
) -> None:
    """A yellow, light green or light blue gel pen is about as light as white paper in grey; a JPEG
    digit decoded straight to grey is decoded again in colour."""
    photo = _pen_on_paper(ink, (248, 246, 240))
    out = decode_image(to_bytes(photo, fmt, quality=90), max_pixels=LIMIT)
    dark = decode_image(to_bytes(_pen_on_paper((20, 20, 20), (248, 246, 240))), max_pixels=LIMIT)
    assert np.abs(out - dark).mean() < 0.06


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_colour_noise_and_blank_colour_pages_are_still_no_digit(
    to_bytes: ToBytes, fmt: str
) -> None:
    rng = np.random.default_rng(9)
    noise = rng.integers(0, 256, (200, 150, 3), dtype=np.uint8)  # every channel dark somewhere
    blank = _pen_on_paper((248, 246, 240), (248, 246, 240))
    for picture in (Image.fromarray(noise, "RGB"), blank):
        with pytest.raises(NoInkFound):
            decode_image(to_bytes(picture, fmt, quality=90), max_pixels=LIMIT)
