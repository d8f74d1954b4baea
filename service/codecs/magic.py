"""Which image format a body holds, from its first bytes: one table for the image decoder (what
it accepts, what it names and refuses) and for the JSON parser's hint when an image was sent as
JSON."""

from __future__ import annotations

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"
# What the service decodes: each format, its media type and its name in messages
_ACCEPTED = (
    ("PNG", "image/png", "PNG"),
    ("JPEG", "image/jpeg", "JPEG"),
    ("WEBP", "image/webp", "WebP"),
)
ACCEPTED_FORMATS = tuple(fmt for fmt, _, _ in _ACCEPTED)
MEDIA_TYPES = {fmt: media for fmt, media, _ in _ACCEPTED}
_names = [name for _, _, name in _ACCEPTED]
ACCEPTED_NAMES = f"{', '.join(_names[:-1])} or {_names[-1]}"  # "PNG, JPEG or WebP"
_OTHER_MAGIC = {b"GIF87a": "GIF", b"GIF89a": "GIF", b"BM": "BMP", b"II*\x00": "TIFF",
                b"MM\x00*": "TIFF", b"\x00\x00\x01\x00": "ICO", b"8BPS": "PSD",
                b"\xff\x0a": "JPEG XL", b"\x00\x00\x00\x0cJXL \r\n\x87\n": "JPEG XL",
                b"%PDF-": "PDF"}  # fmt: skip
# How to get a refused picture into a format the service reads, where the way is not plain
EXPORT_HINTS = {
    "HEIC": "an iPhone's photo: share it as JPEG, or set Settings > Camera > Formats to "
    "Most Compatible",
    "HEIF": "share or export the photo as JPEG",
    "SVG": "a vector drawing: export it as PNG",
    "PDF": "a scan or a document: export the page as PNG or JPEG",
    "AVIF": "a picture saved from the web: save it as PNG or JPEG, or take a screenshot of it",
}
# ISO base media files (``ftyp`` box at byte 4) by their brand: what phones save photos as, and
# AVIF, what browsers save many web pictures as. AVIF is not decoded: libavif decodes the AV1
# frame at the size the AV1 data gives, whatever size the file declares (a 4 KB file declaring
# 28x28 pixels decodes 16384x16384), so its size cannot be checked before it is decoded without
# parsing the AV1 bitstream.
_BRANDS = dict.fromkeys((b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis"), "HEIC")
_BRANDS |= {b"avif": "AVIF", b"avis": "AVIF"}
_GENERIC_BRANDS = (b"mif1", b"msf1")  # HEIF's structure only: the compatible brands say which
FTYP_READ = 4096  # the bytes of an ``ftyp`` box whose compatible brands are read (1020 brands)


def image_format(data: bytes) -> str | None:
    """'PNG', 'JPEG', 'WEBP', another known image format's name ('GIF', 'HEIC', 'AVIF', ...), or
    None."""
    if data.startswith(PNG_MAGIC):
        return "PNG"
    if data.startswith(JPEG_MAGIC):
        return "JPEG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[4:8] == b"ftyp":
        return _iso_brand(data)
    head = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"<svg") or (head.startswith(b"<?xml") and b"<svg" in head):
        return "SVG"
    return next((name for magic, name in _OTHER_MAGIC.items() if data.startswith(magic)), None)


def _iso_brand(data: bytes) -> str | None:
    """An ISO base media file's image format: by its major brand, else (a major brand of HEIF's
    structure only, ``mif1``) by the first telling one among the compatible brands the ``ftyp``
    box lists; a generic file none of them names is 'HEIF'."""
    major = data[8:12]
    if major in _BRANDS:
        return _BRANDS[major]
    if major not in _GENERIC_BRANDS:
        return None
    end = min(int.from_bytes(data[:4], "big"), len(data), FTYP_READ)
    for pos in range(16, end - 3, 4):
        if (brand := data[pos : pos + 4]) in _BRANDS:
            return _BRANDS[brand]
    return "HEIF"
