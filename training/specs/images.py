"""Image classification: square grey images, softmax over the labels."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from training.drift_reference import write_image_reference
from training.specs.base import DatasetSpec, Prepared, Provenance, Split, first

IMAGE_SIDE = 28
IMAGE_SHAPE = (IMAGE_SIDE, IMAGE_SIDE)

# How the data set's images were framed, so the service frames uploaded pictures the same way:
# "digit": the ink fitted in a box (20x20 for MNIST) and centred by its centre of mass;
# "item": the longer side scaled to the frame and centred (Fashion-MNIST).
Framing = Literal["digit", "item"]
FRAMINGS: tuple[Framing, ...] = ("digit", "item")

# The out-of-distribution model: held-out training images set its threshold, so that with
# OOD_CONFIDENCE at most OOD_FLAGGED of real images are flagged (``ood.threshold_flagging``).
OOD_FILE = "ood.npz"
OOD_COMPONENTS = 40
OOD_HELD_OUT = 0.1
OOD_FLAGGED = 0.02
OOD_CONFIDENCE = 0.95
OOD_SEED = 7


class ImageSource(Provenance, Protocol):
    """What an image loader returns: uint8 images ``[N, side, side]`` and class indices."""

    @property
    def x_train(self) -> np.ndarray: ...
    @property
    def y_train(self) -> np.ndarray: ...
    @property
    def x_test(self) -> np.ndarray: ...
    @property
    def y_test(self) -> np.ndarray: ...


@dataclass(frozen=True, kw_only=True)
class ImageClassificationSpec(DatasetSpec):
    """Grey images in, one softmax probability per label out.

    Pixels are divided by 255 once, here, into float32 ``[0, 1]``: that is the serving input, so
    training and serving see the same values and no model needs a scaling layer.
    """

    task = "image_classification"
    calibration_method = "temperature"

    framing: Framing
    side: int = IMAGE_SIDE

    def __post_init__(self) -> None:
        if self.framing not in FRAMINGS:
            raise ValueError(f"framing must be one of {FRAMINGS}, not {self.framing!r}")

    def load(
        self,
        *,
        data_dir: Path | None = None,
        cache_dir: Path | None = None,
        subset: int | None = None,
    ) -> Prepared:
        raw: ImageSource = self.loader(data_dir=data_dir, cache_dir=cache_dir)
        shape = tuple(raw.x_train.shape[1:])
        if shape != (self.side, self.side):
            raise ValueError(f"{self.name}: images are {shape}, expected {self.side}x{self.side}")
        x_test_raw = first(raw.x_test, subset)
        split = Split(
            dataset=self.name,
            x_train=(first(raw.x_train, subset) / 255.0).astype(np.float32),
            y_train=first(raw.y_train, subset).astype(np.int64),
            x_test=(x_test_raw / 255.0).astype(np.float32),
            y_test=first(raw.y_test, subset).astype(np.int64),
            labels=list(self.labels),
        )
        return Prepared(split, raw.source, dict(raw.sha256), self.input_spec(), x_test_raw)

    def input_spec(self) -> dict[str, Any]:
        return {
            "name": "pixels",
            "shape": [self.side, self.side],
            "dtype": "float32",
            "range": [0.0, 1.0],
            "features": None,
            "framing": self.framing,
            "side": self.side,
        }

    def output_spec(self) -> dict[str, Any]:
        return {"name": "probabilities", "kind": "softmax", "shape": [len(self.labels)]}

    def decision_threshold(self, chosen: float | None) -> float | None:
        if chosen is not None:
            raise ValueError(f"{self.name}: a softmax model takes the argmax, not a threshold")
        return None

    def write_artifacts(self, split: Split, folder: Path) -> dict[str, Any]:
        """The out-of-distribution model (``service.serving.ood``): fitted on the training
        images but a held-out share, whose scores choose the threshold."""
        from service.serving import ood

        x, y = split.x_train, split.y_train
        held = max(1, round(len(x) * OOD_HELD_OUT))
        order = np.random.default_rng(OOD_SEED).permutation(len(x))
        fit_rows, held_rows = order[held:], order[:held]
        arrays = ood.fit(x[fit_rows], y[fit_rows], components=OOD_COMPONENTS)
        model = ood.from_arrays(arrays, 0.0)
        threshold = ood.choose_threshold(model, x[held_rows], OOD_FLAGGED, OOD_CONFIDENCE)
        ood.save(arrays, folder / OOD_FILE)
        fitted = ood.from_arrays(arrays, threshold)
        flagged_test = float(fitted.flags(fitted.input_scores(split.x_test)).mean())
        flagged_held = int(fitted.flags(fitted.input_scores(x[held_rows])).sum())
        return {
            **write_image_reference(folder, x, len(self.labels)),
            "ood": {
                "method": ood.METHOD,
                "file": OOD_FILE,
                "threshold": threshold,
                "components": int(arrays["components"].shape[1]),
                "fitted_on": len(fit_rows),
                "threshold_from": f"{len(held_rows)} held-out training images",
                "in_distribution_flagged": OOD_FLAGGED,
                "flagged_confidence": ood.attained_confidence(
                    len(held_rows), OOD_FLAGGED, OOD_CONFIDENCE, flagged_held
                ),
                "test_flagged": round(flagged_test, 4),
            },
        }
