"""Drift references for the tests: written into a copy of a version folder as the trainer would
(``metadata.drift.file``, listed with its SHA-256 in ``metadata.files``)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from service.serving.drift import (
    REFERENCE_FILE,
    categorical_reference,
    continuous_reference,
    image_reference,
    record_reference,
)

__all__ = [
    "categorical_reference",
    "continuous_reference",
    "image_reference",
    "record_reference",
    "write_reference",
]


def write_reference(version_dir: Path, reference: dict[str, object]) -> None:
    """Add the reference file and its metadata entry (metadata.json last, as the exporter)."""
    data = json.dumps(reference).encode()
    (version_dir / REFERENCE_FILE).write_bytes(data)
    meta_path = version_dir / "metadata.json"
    meta = json.loads(meta_path.read_text())
    meta["files"][REFERENCE_FILE] = hashlib.sha256(data).hexdigest()
    meta["drift"] = {"file": REFERENCE_FILE}
    meta_path.write_text(json.dumps(meta))
