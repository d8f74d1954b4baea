"""Which image format a body holds, from its first bytes: one table for the image decoder (what
it accepts, what it names and refuses) and for the JSON parser's hint when an image was sent as
JSON."""

from __future__ import annotations

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"
ACCEPTED_FORMATS = ("PNG", "JPEG", "WEBP")  # what the service decodes
_OTHER_MAGIC = {b"GIF87a": "GIF", b"GIF89a": "GIF", b"BM": "BMP", b"II*\x00": "TIFF",
                b"MM\x00*": "TIFF", b"\x00\x00\x01\x00": "ICO", b"8BPS": "PSD",
                b"\xff\x0a": "JPEG XL", b"\x00\x00\x00\x0cJXL \r\n\x87\n": "JPEG XL"}  # fmt: skip
# ISO base media files (``ftyp`` box at byte 4) by their major brand: what phones save photos as
_BRANDS = dict.fromkeys((b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis"), "HEIC")
_BRANDS |= {b"mif1": "HEIF", b"msf1": "HEIF", b"avif": "AVIF", b"avis": "AVIF"}


def image_format(data: bytes) -> str | None:
    """'PNG', 'JPEG', 'WEBP', another known image format's name ('GIF', 'BMP', ...), or None."""
    if data.startswith(PNG_MAGIC):
        return "PNG"
    if data.startswith(JPEG_MAGIC):
        return "JPEG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[4:8] == b"ftyp" and data[8:12] in _BRANDS:
        return _BRANDS[data[8:12]]
    head = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"<svg") or (head.startswith(b"<?xml") and b"<svg" in head):
        return "SVG"
    return next((name for magic, name in _OTHER_MAGIC.items() if data.startswith(magic)), None)
