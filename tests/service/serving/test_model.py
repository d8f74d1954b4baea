"""ModelVersion: what a version shows of its metadata."""

from __future__ import annotations

from pathlib import Path

from service.serving.model import ModelVersion


def test_public_metadata_leaves_out_the_golden_sample_and_the_trainer_host_paths() -> None:
    meta = {
        "name": "mnist",
        "golden": {"inputs": [[0.0]], "outputs": [[1.0]]},
        "data": {"source": "cache /root/.cache/digitserve/mnist", "sha256": {"x": "ab"}},
    }
    mv = ModelVersion("mnist", 1, Path("models/mnist/1"), metadata=meta)
    public = mv.public_metadata()
    assert "golden" not in public
    assert public["data"] == {"source": "cache mnist", "sha256": {"x": "ab"}}
    assert meta["data"]["source"].startswith("cache /root")  # the version's own copy is kept
