"""IDX files (the MNIST file format): parsing, encoding and SHA-256 verification.

Every image and label file is checked against the SHA-256 of its *uncompressed* IDX content
before use. The expected values live in :data:`IDX_SHA256`, which tests may monkeypatch to use
small synthetic files.
"""

from __future__ import annotations

import gzip
import hashlib
import struct
import zlib

import numpy as np

from training.data.errors import DataIntegrityError
from training.specs import IMAGE_SHAPE

# (split, kind) -> standard file name, in the order the loaders report them.
IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)

# SHA-256 of the uncompressed IDX content of each standard file.
_SHA256_TABLE = """
mnist          train-images-idx3-ubyte  ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db
mnist          train-labels-idx1-ubyte  65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5
mnist          t10k-images-idx3-ubyte   0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7
mnist          t10k-labels-idx1-ubyte   ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2
fashion_mnist  train-images-idx3-ubyte  c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888
fashion_mnist  train-labels-idx1-ubyte  bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9
fashion_mnist  t10k-images-idx3-ubyte   5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b
fashion_mnist  t10k-labels-idx1-ubyte   0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34
"""  # noqa: E501


def _parse_table(table: str) -> dict[str, dict[str, str]]:
    result: dict[str, dict[str, str]] = {}
    for line in table.strip().splitlines():
        dataset, file, digest = line.split()
        result.setdefault(dataset, {})[file] = digest
    return result


# dataset -> standard file name -> expected SHA-256: the IDX data sets the loaders can verify.
# Tests monkeypatch this for synthetic files.
IDX_SHA256: dict[str, dict[str, str]] = _parse_table(_SHA256_TABLE)

_UBYTE = 0x08


def expected_rank(file: str) -> int:
    """3 for image files (idx3), 1 for label files (idx1)."""
    return 3 if "idx3" in file else 1


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def gunzip(data: bytes, file: str, source: str) -> bytes:
    """Decompress gzip bytes; a truncated or corrupt stream is an integrity error."""
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataIntegrityError(file, source, f"corrupt or truncated gzip data ({exc})") from exc


def encode_idx(array: np.ndarray) -> bytes:
    """The IDX bytes of a uint8 array: magic (0, 0, 0x08, rank), big-endian dims, then data."""
    arr = np.ascontiguousarray(array, dtype=np.uint8)
    header = struct.pack(">BBBB", 0, 0, _UBYTE, arr.ndim)
    header += struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + arr.tobytes()


def decode_idx(data: bytes, file: str, source: str) -> np.ndarray:
    """Parse IDX bytes into a uint8 array, checking the magic number and the length."""
    if len(data) < 4:
        raise DataIntegrityError(file, source, f"truncated: only {len(data)} bytes")
    zero1, zero2, dtype, rank = struct.unpack(">BBBB", data[:4])
    want_rank = expected_rank(file)
    if zero1 or zero2 or dtype != _UBYTE or rank != want_rank:
        raise DataIntegrityError(
            file,
            source,
            f"wrong IDX magic number 0x{data[:4].hex()} (expected 0x000008{want_rank:02x})",
        )
    header_len = 4 + 4 * rank
    if len(data) < header_len:
        raise DataIntegrityError(file, source, "truncated: incomplete IDX header")
    shape = struct.unpack(f">{rank}I", data[4:header_len])
    size = int(np.prod(shape, dtype=np.int64))
    if len(data) - header_len != size:
        raise DataIntegrityError(
            file,
            source,
            f"truncated or padded: {len(data) - header_len} data bytes, header says {size}",
        )
    array = np.frombuffer(data, dtype=np.uint8, offset=header_len).reshape(shape)
    if rank == 3 and tuple(shape[1:]) != IMAGE_SHAPE:
        expected = "x".join(map(str, IMAGE_SHAPE))
        raise DataIntegrityError(file, source, f"images are {shape[1:]}, expected {expected}")
    return array


def check_sha256(dataset: str, file: str, data: bytes, source: str) -> str:
    """Check uncompressed IDX bytes against :data:`IDX_SHA256`; return the hex digest."""
    expected = IDX_SHA256[dataset][file]
    actual = sha256_hex(data)
    if actual != expected:
        raise DataIntegrityError(
            file, source, f"SHA-256 mismatch: expected {expected}, got {actual}"
        )
    return actual


def verify_idx(dataset: str, file: str, data: bytes, source: str) -> tuple[np.ndarray, str]:
    """Fully verify one uncompressed IDX file: magic, length, then SHA-256."""
    array = decode_idx(data, file, source)
    digest = check_sha256(dataset, file, data, source)
    return array, digest


def check_pairs(arrays: dict[str, np.ndarray], source: str) -> None:
    """Images and labels of a split must have the same count; labels must be 0-9."""
    for split in ("train", "t10k"):
        images = arrays[f"{split}-images-idx3-ubyte"]
        labels_file = f"{split}-labels-idx1-ubyte"
        labels = arrays[labels_file]
        if len(images) != len(labels):
            raise DataIntegrityError(
                labels_file, source, f"{len(labels)} labels for {len(images)} images"
            )
        if labels.size and int(labels.max()) > 9:
            raise DataIntegrityError(labels_file, source, f"label {int(labels.max())} > 9")
