"""Compressed request bodies: the codings a header lists, and decoding them within limits."""

from __future__ import annotations

import gzip
import random
import threading
import time
import zlib

import pytest

from service.codecs import content_coding
from service.codecs.content_coding import ACCEPT_ENCODING, Unfinished, codings_of, decode
from service.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType


@pytest.mark.parametrize(
    ("header", "codings"),
    [
        ("gzip", ["gzip"]),
        ("X-GZIP", ["gzip"]),
        (" deflate ", ["deflate"]),
        ("identity", []),
        ("", []),
        ("gzip, , identity,deflate", ["gzip", "deflate"]),
    ],
)
def test_the_codings_a_header_lists_in_the_order_applied(header: str, codings: list[str]) -> None:
    assert codings_of(header) == codings


def test_an_unknown_coding_or_too_many_are_a_415_naming_the_known_ones() -> None:
    with pytest.raises(UnsupportedMediaType) as caught:
        codings_of("gzip, br")
    assert "'br' is not supported" in caught.value.message
    assert caught.value.headers == {"Accept-Encoding": "gzip, deflate"}
    with pytest.raises(UnsupportedMediaType, match="at most 4"):
        codings_of(", ".join(["gzip"] * 5))


def test_both_415s_send_the_one_accept_encoding() -> None:
    assert ACCEPT_ENCODING == "gzip, deflate"
    for header in ("br", ", ".join(["gzip"] * 5)):
        with pytest.raises(UnsupportedMediaType) as caught:
            codings_of(header)
        assert caught.value.headers == {"Accept-Encoding": ACCEPT_ENCODING}


def test_a_step_past_the_limit_stops_without_decoding_the_rest() -> None:
    bomb = gzip.compress(bytes(200_000_000), 9)  # 200 MB in about 200 KB
    with pytest.raises(PayloadTooLarge, match="decompresses"):
        decode(bomb, ["gzip"], 1_000_000)
    assert decode(gzip.compress(bytes(1_000_000)), ["gzip"], 1_000_000) == bytes(1_000_000)


def test_past_the_cap_is_unfinished_and_within_it_is_decoded() -> None:
    data = b"x" * 5_000
    with pytest.raises(Unfinished):
        decode(gzip.compress(data), ["gzip"], 10_000, cap=4_999)
    assert decode(gzip.compress(data), ["gzip"], 10_000, cap=5_000) == data
    with pytest.raises(PayloadTooLarge):  # the limit is below the cap: a 413, not unfinished
        decode(gzip.compress(data), ["gzip"], 4_000, cap=8_000)


def test_codings_are_undone_last_first_each_within_the_limit() -> None:
    data = b'{"instances": [[1, 2]]}' * 100
    assert decode(zlib.compress(gzip.compress(data)), ["gzip", "deflate"], 10_000) == data
    with pytest.raises(BadRequest):  # the other order: deflate data read as gzip
        decode(zlib.compress(gzip.compress(data)), ["deflate", "gzip"], 10_000)


def test_a_raw_deflate_stream_that_starts_like_zlibs_header_is_still_read() -> None:
    """A stored block whose padding bits are set starts with two bytes that read as a zlib
    header (0x08 0x1d); inflaters ignore those bits, so such a raw stream is valid."""
    data = bytes(range(65, 65 + 29))
    raw = b"\x08\x1d\x00\xe2\xff" + data + b"\x01\x00\x00\xff\xff"
    assert content_coding._zlib_header(raw)
    assert decode(raw, ["deflate"], 10_000) == data


def test_gzip_members_are_read_one_after_another() -> None:
    sent = gzip.compress(b"ab") + gzip.compress(b"") + gzip.compress(b"cd")
    assert decode(sent, ["gzip"], 100) == b"abcd"
    with pytest.raises(PayloadTooLarge):  # the limit counts every member together
        decode(sent, ["gzip"], 3)


def test_more_gzip_members_than_a_tool_makes_are_refused() -> None:
    """Thousands of empty members would cost a Python step each."""
    with pytest.raises(BadRequest, match="more than 64 gzip members"):
        decode(gzip.compress(b"") * 65 + gzip.compress(b"{}"), ["gzip"], 1_000)
    assert decode(gzip.compress(b"") * 63 + gzip.compress(b"{}"), ["gzip"], 1_000) == b"{}"


def _empty_blocks(size: int) -> bytes:
    """A raw deflate stream of about ``size`` bytes of empty fixed-Huffman blocks (ten bits
    each), ending with an empty final block: it decodes to nothing."""
    four = bytes([0x02, 0x08, 0x20, 0x80, 0x00])  # four empty non-final blocks, 40 bits
    return four * (size // 5) + b"\x03\x00"


def test_a_stream_of_empty_blocks_costs_no_more_than_its_bytes() -> None:
    """A small body of empty blocks, decoded on the event loop, must take as little time as any
    other of its size (ISA-L took 240 ms for these 256 KB, 60 ms for 64 KB)."""
    raw = _empty_blocks(256 * 1024)
    sent = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff" + raw + bytes(8)  # crc32 and size of b""
    assert decode(sent, ["gzip"], 1_000_000) == b""
    assert decode(raw, ["deflate"], 1_000_000) == b""
    started = time.thread_time()  # this thread's CPU: a loaded machine does not count
    decode(sent, ["gzip"], 1_000_000)
    assert time.thread_time() - started < 0.03


def test_a_set_stop_ends_the_decoding_between_slices() -> None:
    stop = threading.Event()
    stop.set()
    with pytest.raises(content_coding.Stopped):
        decode(gzip.compress(b"{}"), ["gzip"], 1_000, stop=stop)
    assert decode(gzip.compress(b"{}"), ["gzip"], 1_000, stop=threading.Event()) == b"{}"


def test_members_and_their_ends_are_found_across_slices() -> None:
    """Input is fed a slice at a time: a member, or data after the end, beyond the first slice
    is read as when the whole body was fed at once."""
    big = random.Random(3).randbytes(400_000)  # incompressible: more than one slice of input
    sent = gzip.compress(big) + gzip.compress(b"tail") + gzip.compress(big[:10])
    assert decode(sent, ["gzip"], 10_000_000) == big + b"tail" + big[:10]
    with pytest.raises(BadRequest, match="has 3 bytes after the end of its gzip data"):
        decode(gzip.compress(big) + b"xyz", ["gzip"], 10_000_000)
    with pytest.raises(BadRequest, match="truncated"):
        decode(zlib.compress(big)[:-1000], ["deflate"], 10_000_000)
    with pytest.raises(PayloadTooLarge):
        decode(gzip.compress(big) + gzip.compress(b"x"), ["gzip"], len(big))
