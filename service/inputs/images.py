"""Decode uploaded PNG, JPEG and WebP files into MNIST-style 28x28 arrays.

Safety first, in this order: the media type, the file's magic bytes (the formats in
:data:`service.codecs.magic.ACCEPTED_FORMATS` only; Pillow may open nothing else), the pixel count
read from the file header *before* any pixel is decoded, then Pillow's own decompression-bomb
check, then the decode. Every failure is a client error: 415 for another format, 413 for too many
pixels, 422 for a file that does not decode.

The preprocessing (:func:`preprocess_pil`, in :mod:`service.inputs.preprocess`) turns a photo of
a digit on paper, or a digit drawn in any paint program, into what the models were trained on: a
light digit on a black background, fitted into a 20x20 box and centred by its centre of mass in
the 28x28 frame (the MNIST recipe); ``fit="item"`` follows Fashion-MNIST's recipe instead.
"""

from __future__ import annotations

import contextlib
import io
import math
import signal
import struct
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import TypeVar

import numpy as np
from PIL import Image, ImageOps

from service.codecs import png
from service.codecs.magic import (
    ACCEPTED_FORMATS,
    ACCEPTED_NAMES,
    EXPORT_HINTS,
    JPEG_MAGIC,
    MEDIA_TYPES,
    PNG_MAGIC,
    image_format,
)
from service.errors import InvalidInput, PayloadTooLarge, ServeError, UnsupportedMediaType
from service.inputs.numbers import (
    CLOSE_DIGIT_PX,
    CLOSE_MARGIN,
    Reading,
    SmallNumber,
    number_side,
    readings_pil,
)
from service.inputs.preprocess import (
    LOSSY_FORMATS,
    WORK_SIDE,
    Digit,
    Fit,
    NoInkFound,
    preprocess_pil,
)

__all__ = [
    "ACCEPTED_IMAGE_TYPES",
    "Fit",
    "decode_digits",
    "decode_image",
    "decode_readings",
    "decode_worker",
    "image_size",
    "part_type",
    "preprocess_pil",
]

ACCEPTED_IMAGE_TYPES = tuple(MEDIA_TYPES.values())
_TYPE_ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg", "image/x-png": "image/png"}
_UNTYPED = ("application/octet-stream",)  # the bytes decide
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}

_EXIF_ORIENTATION = 0x0112
# A decoder library's words for a damaged file that say nothing to a user, in theirs.
_DECODER_WORDS = {"could not create decoder object": "the file is cut short or damaged"}
MAX_SIDE = 16_384  # no camera or screen makes a longer side; a 100000x1 "image" is an attack
WEBP_CHUNKS = 64  # real files put their image within a few chunks; more is padding or an attack
# A digit picture found blank whose longer side is above FINE_FROM (a phone photo, reduced 4x
# or more to the working side) is read again at FINE_SIDE
FINE_FROM = 4 * WORK_SIDE
FINE_SIDE = 2 * WORK_SIDE


# ---------------------------------------------------------------- container checks


def _media_type(content_type: str | None) -> str | None:
    """The declared media type, normalised; None when the bytes must decide."""
    if content_type is None:
        return None
    media = content_type.split(";", 1)[0].strip().lower()
    media = _TYPE_ALIASES.get(media, media)
    if media in ("", *_UNTYPED):
        return None
    if media not in ACCEPTED_IMAGE_TYPES:
        *others, last = ACCEPTED_IMAGE_TYPES
        raise UnsupportedMediaType(
            f"unsupported image type {media!r}: send {', '.join(others)} or {last}"
        )
    return media


def part_type(data: bytes, declared: str | None) -> str | None:
    """The media type to check a multipart part's picture by: none (the bytes decide) when they
    are a file of a format the service decodes, else the declared one. A client names a part's
    type from its file name (curl sends a PNG called ``digit.gif`` as ``image/gif``); a raw
    body's ``Content-Type`` is the client's own statement, and is checked."""
    return None if image_format(data) in ACCEPTED_FORMATS else declared


def _sniff(data: bytes) -> str:
    """An accepted format ('PNG', 'JPEG', ...) from the magic bytes; 415 for another known
    format, 422 otherwise."""
    fmt = image_format(data)
    if fmt in ACCEPTED_FORMATS:
        return fmt
    if fmt is not None:
        hint = f" ({EXPORT_HINTS[fmt]})" if fmt in EXPORT_HINTS else ""
        raise UnsupportedMediaType(
            f"{fmt} images are not supported: send a {ACCEPTED_NAMES} file{hint}"
        )
    raise InvalidInput(f"the image cannot be decoded: the data is not a {ACCEPTED_NAMES} file")


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from the first SOF marker, walking the segments; None if not found."""
    pos, end = 2, len(data)
    while pos + 4 <= end:
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # segments without a length
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if marker in _JPEG_SOF and pos + 9 <= end:
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return width, height
        if marker in (0xD9, 0xDA) or length < 2:  # end of image, start of scan, corrupt
            return None
        pos += 2 + length
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a WebP file's first chunk (VP8X canvas, VP8 frame or VP8L header)."""
    chunk = data[12:16]
    if chunk == b"VP8X" and len(data) >= 30:
        width = 1 + int.from_bytes(data[24:27], "little")
        height = 1 + int.from_bytes(data[27:30], "little")
        return width, height
    if chunk == b"VP8 " and len(data) >= 30 and data[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25 and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    return None


def compressed_with_loss(data: bytes, fmt: str) -> bool:
    """Whether the file's pixels went through lossy compression (ringing near edges): a JPEG
    always, a WebP when its image is a ``VP8`` chunk rather than a lossless ``VP8L`` one (an
    animation's first frame decides), a PNG never. Reads at most ``WEBP_CHUNKS`` chunks inside
    the RIFF size the file declares; a file that says nothing sooner counts as lossy."""
    if fmt != "WEBP":
        return fmt in LOSSY_FORMATS
    end = min(len(data), 8 + int.from_bytes(data[4:8], "little"))
    pos = 12
    for _ in range(WEBP_CHUNKS):
        if pos + 8 > end:
            break
        chunk = data[pos : pos + 4]
        if chunk in (b"VP8 ", b"VP8L"):
            return chunk == b"VP8 "
        if chunk == b"ANMF":  # a frame: 16 bytes of position and timing, then its chunks
            pos += 8 + 16
            continue
        size = int.from_bytes(data[pos + 4 : pos + 8], "little")
        pos += 8 + size + (size & 1)
    return True


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) declared in a PNG, JPEG or WebP header, read without decoding; None if
    unknown (then Pillow's size, read when it opens the file, is checked before any pixel is
    decoded)."""
    if data.startswith(PNG_MAGIC) and len(data) >= 24 and data[12:16] == b"IHDR":
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    if data.startswith(JPEG_MAGIC):
        return _jpeg_size(data)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _webp_size(data)
    return None


def _check_pixels(size: tuple[int, int], max_pixels: int) -> None:
    width, height = size
    if max(width, height) > MAX_SIDE:
        raise PayloadTooLarge(
            f"the image is {width}x{height} pixels; each side may be at most {MAX_SIDE} pixels"
        )
    if width * height > max_pixels:
        raise PayloadTooLarge(
            f"the image is {width}x{height} = {width * height} pixels; "
            f"the limit is {max_pixels} pixels"
        )


def _grey_jpeg(data: bytes) -> bool:
    """Whether a JPEG holds one channel (from its header: no pixel is decoded)."""
    with Image.open(io.BytesIO(data), formats=["JPEG"]) as img:
        return img.mode == "L"


_Result = TypeVar("_Result")  # what a picture is read as: one digit's input, or a number's digits


def _read(
    data: bytes,
    fmt: str,
    max_pixels: int,
    read: Callable[[Image.Image, bool], _Result],
    *,
    numbers: bool = False,
    fit: Fit = "digit",
    side: int | None = None,
) -> tuple[_Result, Image.Image]:
    """``read(picture, colour_only)`` of the decoded picture, and the picture it read.

    A digit's JPEG is decoded straight to grey, where ink of a light colour (a yellow pen) may
    not show: when that finds no ink, a colour JPEG is decoded again in colour and read in its
    colour channels alone (``colour_only``); a grey one, or a picture of an item, is not. When
    its grey holds only a number too small to read (:class:`SmallNumber`) and its colours
    nothing, that is raised, for the caller to look closer. ``side``: the
    least longer side a JPEG is decoded at (:func:`_open`).
    """
    img = _open(data, fmt, max_pixels, numbers=numbers, fit=fit, side=side)
    try:
        return read(img, False), img
    except NoInkFound as missing:
        if fmt != "JPEG" or fit != "digit" or _grey_jpeg(data):
            raise
        small = missing if isinstance(missing, SmallNumber) else None
    img = _open(data, fmt, max_pixels, numbers=numbers, fit=fit, colour=True, side=side)
    try:  # marks too small to read in grey may stand beside a number in a light colour
        return read(img, True), img
    except NoInkFound:
        if small is None:
            raise
        raise small from None


def _open(
    data: bytes,
    fmt: str,
    max_pixels: int,
    *,
    numbers: bool = False,
    fit: Fit = "digit",
    colour: bool = False,
    side: int | None = None,
) -> Image.Image:
    """Open, size-check, orient and fully decode; every decoder failure becomes a 4xx.
    ``colour`` keeps a digit's JPEG in colour (by default it is decoded straight to grey);
    ``side`` is the least longer side a JPEG is decoded at (by default the working side)."""
    try:
        img: Image.Image = Image.open(io.BytesIO(data), formats=[fmt])
        _check_pixels(img.size, max_pixels)
        if fmt == "PNG" and (inflated := png.stored(data)) is not None:
            # the same file with its image data inflated by a faster inflater than Pillow's
            img = Image.open(io.BytesIO(inflated), formats=[fmt])
        if fmt == "JPEG":
            # libjpeg scales a large photo down 2-8x while decoding, and for a digit decodes
            # straight to grey (an item is told from its background by colour)
            if side is None:
                side = number_side(img.size) if numbers else WORK_SIDE
            scale = min(1.0, side / max(img.size))
            mode = "L" if fit == "digit" and not colour else "RGB"
            img.draft(mode, (math.ceil(img.width * scale), math.ceil(img.height * scale)))
        img.load()
        with contextlib.suppress(Exception):  # a corrupt EXIF block only loses the orientation
            if img.getexif().get(_EXIF_ORIENTATION, 1) != 1:
                img = ImageOps.exif_transpose(img) or img
        return img
    except ServeError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise PayloadTooLarge(f"the image has too many pixels: {exc}") from None
    except MemoryError:
        raise PayloadTooLarge("the image is too large to decode") from None
    except Image.UnidentifiedImageError:
        raise InvalidInput(f"the {fmt} image cannot be decoded: not a valid {fmt} file") from None
    except Exception as exc:  # Pillow raises many types for corrupt files
        reason = str(exc)[:200] or type(exc).__name__
        reason = _DECODER_WORDS.get(reason, reason)
        raise InvalidInput(f"the {fmt} image cannot be decoded: {reason}") from None


def _checked(
    data: bytes, content_type: str | None, max_pixels: int
) -> tuple[str, tuple[int, int] | None]:
    """The checks every picture passes before it is decoded: its declared media type, some
    bytes, a known format, and its size from the header. Returns the format and that size. A type
    refused whose bytes are a format the service names (an iPhone's ``image/heic``) is refused
    by that name, with the way to send it instead."""
    try:
        _media_type(content_type)
    except UnsupportedMediaType:
        if image_format(data) not in (None, *ACCEPTED_FORMATS):
            _sniff(data)
        raise
    if not data:
        raise InvalidInput("the image is empty (0 bytes)")
    fmt = _sniff(data)
    declared = image_size(data)
    if declared is not None:
        _check_pixels(declared, max_pixels)
    return fmt, declared


def decode_image(
    data: bytes, *, max_pixels: int, content_type: str | None = None, fit: Fit = "digit"
) -> np.ndarray:
    """PNG, JPEG or WebP bytes -> float32 (28, 28) in [0, 1], light on black, as the data sets
    are.

    ``fit`` is ``"digit"`` (MNIST: 20x20 box, centre of mass) or ``"item"`` (Fashion-MNIST: longer
    side 28, centred); see :mod:`service.inputs.preprocess`. The version's task chooses it.

    ``content_type`` is the declared media type (parameters ignored; ``None`` or
    ``application/octet-stream`` let the bytes decide). Another type is 415, as are bytes that are
    another image format; more than ``max_pixels`` pixels, or a side over 16384 pixels, is 413,
    checked from the file header before decoding; bytes that do not decode are 422. A PNG sent
    as ``image/jpeg`` (or the reverse) is decoded as what it is.
    """
    fmt, declared = _checked(data, content_type, max_pixels)
    lossy = compressed_with_loss(data, fmt)
    try:
        image, _ = _read(
            data,
            fmt,
            max_pixels,
            lambda img, colour_only: preprocess_pil(
                img, fit=fit, lossy=lossy, colour_only=colour_only
            ),
            fit=fit,
        )
    except NoInkFound:
        # A fine pen's strokes in a large photo (a ballpoint digit a tenth of a phone photo's
        # height) are narrower than a pixel at the working size, and averaged into the paper
        # there: such a picture is read once more at twice that size, where they keep their
        # contrast. Pictures found blank pay for it, no other.
        if fit != "digit" or declared is None or max(declared) <= FINE_FROM:
            raise
        img = _open(data, fmt, max_pixels, side=FINE_SIDE)
        image = preprocess_pil(img, fit=fit, lossy=lossy, work_side=FINE_SIDE, fine=True)
    return image


def decode_digits(data: bytes, *, max_pixels: int, content_type: str | None = None) -> list[Digit]:
    """A picture of a number -> its digits left to right, each framed as :func:`decode_image`
    frames one digit, with its box ``(x, y, width, height)`` in the file's pixels (after its
    EXIF orientation). The checks and errors are :func:`decode_image`'s; no digit is 422."""
    readings = decode_readings(data, max_pixels=max_pixels, content_type=content_type, others=False)
    return [r.digit for r in readings]


def decode_readings(
    data: bytes, *, max_pixels: int, content_type: str | None = None, others: bool = True
) -> list[Reading]:
    """:func:`decode_digits`' digits as readings, then (``others``) the other ways to split
    the number's touching digits (:func:`service.inputs.numbers.readings_pil`), boxes in the
    file's pixels."""
    fmt, declared = _checked(data, content_type, max_pixels)
    lossy = compressed_with_loss(data, fmt)
    try:
        readings, img = _read(
            data,
            fmt,
            max_pixels,
            lambda img, colour_only: readings_pil(
                img, lossy=lossy, colour_only=colour_only, others=others, small=True
            ),
            numbers=True,
        )
    except SmallNumber as small:
        readings, img = _closer(data, fmt, max_pixels, small, lossy=lossy, others=others)
    if declared is None:
        return readings
    # A JPEG may have been decoded at 1/2 to 1/8 scale: boxes go back to the file's pixels,
    # whose sides swap when the EXIF orientation turned the picture.
    width, height = declared
    if (img.width > img.height) != (width > height) and img.width != img.height:
        width, height = height, width
    sx, sy = width / img.width, height / img.height
    if sx == sy == 1.0:
        return readings
    return [
        r._replace(
            digit=Digit(r.digit.image, (round(x * sx), round(y * sy), round(w * sx), round(h * sy)))
        )
        for r in readings
        for x, y, w, h in [r.digit.box]
    ]


def _closer(
    data: bytes, fmt: str, max_pixels: int, small: SmallNumber, *, lossy: bool, others: bool
) -> tuple[list[Reading], Image.Image]:
    """A number too small in its photo to read at working size (:class:`SmallNumber`), read
    again from the file: decoded large enough for a digit to be :data:`CLOSE_DIGIT_PX` tall
    (a JPEG; other files are decoded whole anyway), cropped around the number with a margin of
    :data:`CLOSE_MARGIN` digits' heights, and read as a picture of its own (``closer``). The
    readings' boxes are in the decoded picture's pixels, which is returned with them."""
    left, top, right, bottom = small.box
    size = image_size(data)
    if size is not None:  # the longer side at which a digit is CLOSE_DIGIT_PX tall
        wanted = CLOSE_DIGIT_PX / max(small.height * min(size), 1e-6) * max(size)
        side = math.ceil(min(max(size), wanted))
    else:
        side = MAX_SIDE

    def read(img: Image.Image, colour_only: bool) -> list[Reading]:
        width, height = img.size
        margin = CLOSE_MARGIN * small.height * height
        x0, x1 = (
            max(0, math.floor(left * width - margin)),
            min(width, math.ceil(right * width + margin)),
        )
        y0, y1 = (
            max(0, math.floor(top * height - margin)),
            min(height, math.ceil(bottom * height + margin)),
        )
        crop = img.crop((x0, y0, x1, y1))
        readings = readings_pil(
            crop, lossy=lossy, colour_only=colour_only, others=others, closer=True
        )
        return [
            r._replace(digit=Digit(r.digit.image, (x + x0, y + y0, w, h)))
            for r in readings
            for x, y, w, h in [r.digit.box]
        ]

    return _read(data, fmt, max_pixels, read, numbers=True, side=side)


def decode_worker(conn: Connection, *, own_process: bool = True) -> None:
    """The loop of a decoding process (:class:`service.api.uploads.DecodeWorkers`): announces
    itself ready, then answers each ``(data, content_type, max_pixels, fit)`` with ``(True,
    image)`` or ``(False, error)``, until the parent closes its end. Only this module and its
    pure imports load here, so a worker starts in a fraction of a second and holds no model.
    ``own_process=False`` runs the loop in a thread (tests)."""
    if own_process:  # Ctrl-C or a supervisor's SIGTERM to the whole process group stops the
        # server, which answers what it accepted (decoded here) and then stops its workers;
        # SIGHUP is a rescan the server lives through, and its workers with it
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        conn.send((True, None))
    except OSError:  # the server stopped its workers while this one was starting
        return
    while True:
        try:
            data, content_type, max_pixels, fit = conn.recv()
        except (EOFError, OSError):
            return
        answer: tuple[bool, object]
        try:
            image = decode_image(data, max_pixels=max_pixels, content_type=content_type, fit=fit)
            answer = (True, image)
        except ServeError as exc:
            answer = (False, exc)
        except Exception as exc:  # a bug: the parent answers 500 and logs what it was
            answer = (False, RuntimeError(f"decoding failed: {exc!r}\n{traceback.format_exc()}"))
        try:
            conn.send(answer)
        except OSError:  # the server has gone (or stopped its workers) meanwhile
            return
