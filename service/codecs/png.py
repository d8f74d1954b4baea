"""A PNG file with its image data inflated ahead of Pillow, by a faster inflater.

Pillow spends most of a PNG's decoding inflating its ``IDAT`` stream with zlib; ISA-L (the
``isal`` package) inflates the same stream about three times as fast. :func:`stored` inflates the
stream with it and hands back the same file with that stream stored uncompressed (deflate's stored
blocks), which Pillow reads at the cost of a copy: every other chunk, the filters, the
unfiltering and so the pixels are the file's own. Only a plain file whose stream inflates cleanly
to exactly the size its header gives is rewritten; any other (interlaced, animated, truncated,
corrupt, with data past the stream's end, padded with many chunks, or a stream far longer than
its scanlines) is left to Pillow as it is,
errors and all; but for one kind: ISA-L inflates a dynamic block whose Huffman code is
incomplete, which zlib refuses, so such a crafted file is read where Pillow alone refused it.

The caller checks the picture's size first, and a file holding more than :data:`MAX_INFLATED`
bytes of scanlines is left to Pillow, which never holds them all at once.
"""

from __future__ import annotations

import struct

from service.codecs.magic import PNG_MAGIC

try:
    from isal import isal_zlib
except ImportError:  # not installed: Pillow inflates as before
    isal_zlib = None  # type: ignore[assignment]

__all__ = ["stored"]

_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # colour type -> samples per pixel
_STORED_BLOCK = 0xFFFF  # the most bytes one stored deflate block holds
# Scanlines held twice at most (inflated, and in the file handed on): a larger image is left to
# Pillow, which inflates it as it decodes, without either copy
MAX_INFLATED = 32 * 1024 * 1024
# A file of more chunks than this besides its image data is left to Pillow: walking them here,
# and Pillow again in the rewritten file, would cost more than the faster inflate saves
MAX_CHUNKS = 64
# A deflate stream is at most this much longer than what it inflates to (stored blocks add 5
# bytes in 65,535; fixed Huffman codes, 9 bits for some bytes, an eighth)
_MAX_STREAM_GROWTH = 1.2
MAX_IDAT = 8192  # image data chunks: at libpng's 8 KB each, more than MAX_INFLATED compresses to


def _raw_size(ihdr: bytes) -> int | None:
    """The bytes of a plain (not interlaced) image's filtered scanlines, from its header."""
    if len(ihdr) != 13:
        return None
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", ihdr)
    channels = _CHANNELS.get(colour)
    if channels is None or interlace != 0 or depth not in (1, 2, 4, 8, 16):
        return None
    return height * (1 + (width * channels * depth + 7) // 8)


def _idat_run(data: bytes) -> tuple[int, int, list[memoryview], int] | None:
    """Where the file's one run of ``IDAT`` chunks starts and ends, their bodies, and the size
    of the scanlines they hold; None for a file to leave to Pillow."""
    view = memoryview(data)
    pos, end = len(PNG_MAGIC), len(data)
    first = last = -1
    bodies: list[memoryview] = []
    expected = None
    others = 0
    while pos + 12 <= end:
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        after = pos + 12 + length
        if after > end:
            return None
        if kind == b"IHDR" and pos == len(PNG_MAGIC):
            expected = _raw_size(data[pos + 8 : pos + 8 + length])
        elif kind == b"IDAT":
            if last not in (-1, pos):  # image data in two runs: not a file's usual layout
                return None
            first = pos if first < 0 else first
            last = after
            bodies.append(view[pos + 8 : pos + 8 + length])
            if len(bodies) > MAX_IDAT:
                return None
        elif kind in (b"acTL", b"fdAT"):  # an animation: Pillow reads its frames
            return None
        elif kind == b"IEND":
            break
        else:
            others += 1
            if others > MAX_CHUNKS:
                return None
        pos = after
    if not expected or expected > MAX_INFLATED or first < 0:
        return None
    return first, last, bodies, expected


def _zlib_accepts_window(cmf: int, size: int) -> bool:
    """Whether zlib, inflating ``size`` bytes into Pillow's row buffers, accepts the window the
    stream's header byte ``cmf`` declares wherever ISA-L does: ISA-L keeps 32 KiB of history
    whatever the header says, zlib rejects a window over 32 KiB and, with a smaller one, a
    distance beyond it, which no distance can be when the whole output fits in it."""
    window = cmf >> 4
    return window == 7 or (window < 7 and size <= 1 << (window + 8))


def stored(data: bytes) -> bytes | None:
    """The PNG file ``data`` with its image data stored uncompressed, or None when ISA-L is not
    installed or the file is not one to rewrite (see the module doc)."""
    if isal_zlib is None:
        return None
    run = _idat_run(data)
    if run is None:
        return None
    first, last, bodies, expected = run
    stream = bodies[0] if len(bodies) == 1 else b"".join(bodies)
    if not stream or not _zlib_accepts_window(stream[0], expected):
        return None
    if len(stream) > _MAX_STREAM_GROWTH * expected + 1024:
        # longer than any encoder's stream of those scanlines: padded, for example with empty
        # blocks, which ISA-L inflates fifty times slower than zlib (a CPU cost per upload)
        return None
    inflater = isal_zlib.decompressobj()
    try:
        raw = inflater.decompress(stream, expected + 1)
    except Exception:  # isal_zlib.error: a corrupt stream
        return None
    if len(raw) != expected or not inflater.eof or inflater.unused_data:
        return None
    scanlines = memoryview(raw)
    body: list[bytes | memoryview] = [b"\x78\x01"]  # zlib: deflate, 32K window, no dictionary
    for start in range(0, expected, _STORED_BLOCK):
        block = scanlines[start : start + _STORED_BLOCK]
        final = int(start + _STORED_BLOCK >= expected)
        body += [struct.pack("<BHH", final, len(block), len(block) ^ 0xFFFF), block]
    body.append(struct.pack(">I", isal_zlib.adler32(raw)))
    crc = isal_zlib.crc32(b"IDAT")
    for part in body:
        crc = isal_zlib.crc32(part, crc)
    size = sum(len(part) for part in body)
    # one copy of the scanlines, into the file Pillow reads
    return b"".join(
        [data[:first], struct.pack(">I", size), b"IDAT", *body, struct.pack(">I", crc), data[last:]]
    )
