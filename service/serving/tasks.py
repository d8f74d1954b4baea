"""What a model version does, chosen by ``metadata.task``: one class per kind of task.

A task holds what the prediction path needs to know about a version, parsed once from its
metadata (labels, input and output spec), and owns what differs between kinds of model: decoding
the service's own JSON and file inputs, the checks beyond the input's shape, the answer's
fields, and the per-class scores the standard protocols return. Adapters ask the task and never
branch on the kind of model; a new kind of model is one new subclass here, registered by its
``name``, with everything it needs written into the metadata by the training side.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from service.errors import BadRequest, InvalidInput, UnsupportedMediaType
from service.inputs.arrays import RANGE_SLACK, SCALES, images_from_json
from service.inputs.images import decode_image, decode_readings
from service.inputs.preprocess import FITS, Fit
from service.inputs.records import (
    FeatureSpec,
    RecordFields,
    features_from_metadata,
    label_names_from_metadata,
    records_from_json,
)
from service.serving import conformal
from service.serving.attribution import (
    Occlusion,
    coalition_inputs,
    load_background,
    shapley_values,
)
from service.serving.conformal import Conformal
from service.serving.ood import OodModel

OOD_OUTPUT = "ood_score"  # the extra output of versions with an OOD model (on request only)
# The extra outputs of versions with conformal scores (on request only): the prediction set,
# and whether (and why) an abstaining answer abstains.
SET_OUTPUT = "prediction_set"
ABSTAINED_OUTPUT = "abstained"
REASON_OUTPUT = "abstain_reason"
SET_OUTPUTS = (SET_OUTPUT, ABSTAINED_OUTPUT, REASON_OUTPUT)


class UnknownTask(ValueError):
    """A version whose ``metadata.task`` names no task this server knows."""


@dataclass
class Explanation:
    """A task's explanation of a batch, in the forms the adapters encode."""

    fields: dict[str, Any]  # top-level answer fields: method, background, units
    items: list[dict[str, Any]]  # per instance: the own API's and TF Serving's answer
    predictions: np.ndarray  # the model's own output for the instances, [N, *output_shape]
    tensors: dict[str, np.ndarray] = field(default_factory=dict)  # named [N, ...] for V2


class Task:
    """The common part: labels, input and output spec (see the subclasses for the rest)."""

    name: ClassVar[str] = ""
    accepts_files: ClassVar[bool] = False  # image files as the own API's request body
    pixel_input: ClassVar[bool] = False  # V2 UINT8 data means 0-255 pixels
    json_fields: ClassVar[frozenset[str]] = frozenset(
        {"instances", "top_k", "threshold", "include_input", "alpha", "abstain"}
    )
    _registry: ClassVar[dict[str, type[Task]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.name:
            Task._registry[cls.name] = cls

    def __init__(self, meta: dict[str, Any], folder: Path | None = None) -> None:
        inp, out = meta["input"], meta["output"]
        rng = inp.get("range")
        self.labels: tuple[str, ...] = tuple(meta["labels"])
        self.input_name = str(inp.get("name") or "input")
        self.input_shape: tuple[int, ...] = tuple(inp["shape"])
        self.input_range: tuple[float, float] | None = (
            (float(rng[0]), float(rng[1])) if isinstance(rng, list) and len(rng) == 2 else None
        )
        self.output_name = str(out.get("name") or "output")
        self.output_shape: tuple[int, ...] = tuple(out["shape"])
        # Conformal scores ship in the version folder; a broken block or file fails the load.
        self.conformal: Conformal | None = (
            Conformal.from_metadata(meta, folder) if folder is not None else None
        )

    @staticmethod
    def from_metadata(meta: dict[str, Any], folder: Path | None = None) -> Task:
        """The task object for a version's metadata (``folder`` holds the files it names);
        UnknownTask when no class has its name."""
        name = meta.get("task")
        cls = Task._registry.get(name) if isinstance(name, str) else None
        if cls is None:
            known = ", ".join(sorted(Task._registry))
            raise UnknownTask(f"metadata task {name!r} is not one this server serves ({known})")
        return cls(meta, folder)

    # --- the own API's inputs ---------------------------------------------------------------
    def decode_instances(self, payload: dict[str, Any], max_instances: int) -> np.ndarray:
        """The ``instances`` of an own-API JSON body as a float32 batch."""
        raise NotImplementedError

    def decode_file(self, data: bytes, content_type: str | None, max_pixels: int) -> np.ndarray:
        """One uploaded file as one instance."""
        raise UnsupportedMediaType("this model takes JSON records, not files")

    def decode_digits(
        self, data: bytes, content_type: str | None, max_pixels: int
    ) -> tuple[np.ndarray, list[list[int]], list[tuple[int, int, bool]]]:
        """A picture of a number: the digits of its ways to split as a batch, each digit's box
        [x, y, w, h] and its place among the splits ``(start, end, by shape)``
        (:class:`service.inputs.numbers.Reading`)."""
        raise InvalidInput("digits=many applies to digit models")

    # --- checks beyond the input's shape and finiteness -------------------------------------
    def check_values(self, x: np.ndarray, lowest: float, highest: float) -> None:
        """InvalidInput naming the first value outside the input's declared range (``lowest``
        and ``highest`` are the batch's extremes, which the caller has already)."""
        if self.input_range is None:
            return
        lo, hi = self.input_range
        if lowest >= lo - RANGE_SLACK and highest <= hi + RANGE_SLACK:
            return
        n = x.shape[0]
        flat = x.reshape(n, -1)
        bad = (flat < lo - RANGE_SLACK) | (flat > hi + RANGE_SLACK)
        row = int(np.argmax(bad.any(axis=1)))
        value = flat[row][bad[row]][0]
        # at the array's own precision: 1.000002 in float32 is not rounded to a "1" in range
        shown = np.format_float_positional(value, trim="-") if abs(value) < 1e16 else f"{value:g}"
        hint = (
            ": pixels of 0-255 are divided by 255 first (the V2 protocol also takes them as "
            'UINT8, the own API with "scale": "byte")'
            if (lo, hi) == (0, 1) and lowest >= 0 and highest <= 255
            else ""
        )
        raise InvalidInput(
            f"instance {row}: value {shown} is outside the range [{lo:g}, {hi:g}]{hint}"
        )

    # --- answers ----------------------------------------------------------------------------
    def check_top_k(self, value: Any) -> int | None:
        if value is None:
            return None
        raise InvalidInput("top_k applies to models with several classes (softmax outputs)")

    def check_threshold(self, value: Any) -> float | None:
        if value is None:
            return None
        raise InvalidInput("threshold applies to binary models (pima) only")

    def predictions(
        self, probs: np.ndarray, top_k: int | None, threshold: float | None
    ) -> list[dict[str, Any]]:
        """The own API's answer per instance."""
        raise NotImplementedError

    def answer_fields(self, threshold: float | None) -> dict[str, Any]:
        """Top-level fields of the own API's answer besides model, version and predictions."""
        return {}

    def class_scores(self, probs: np.ndarray) -> np.ndarray:
        """Scores ``[N, len(labels)]`` for the standard protocols' classification answers."""
        return probs.reshape(len(probs), -1)

    def ood_scores(self, x: np.ndarray, probs: np.ndarray) -> np.ndarray | None:
        """How unlike the training data each instance of ``x`` is, given the model's outputs
        ``probs`` for it (None: the version cannot tell)."""
        return None

    def ood_flags(self, x: np.ndarray, probs: np.ndarray) -> np.ndarray | None:
        """Per instance, whether it is out of distribution (None: the version cannot tell)."""
        return None

    def ood_density(self, x: np.ndarray) -> np.ndarray | None:
        """Per instance, how unlike the training images its pixels alone are, in units of the
        flag's density threshold (None: the version cannot tell)."""
        return None

    # --- prediction sets and abstention (versions with conformal scores) -------------------
    def check_alpha(self, value: Any) -> float | None:
        """The requested miscoverage ``alpha`` (None: the version's default), or InvalidInput."""
        if value is None:
            return None
        if self.conformal is None:
            raise InvalidInput("alpha applies to versions with prediction sets; this one has none")
        try:
            return conformal.check_alpha(value)
        except ValueError as exc:
            raise InvalidInput(str(exc)) from None

    def check_abstain(self, value: Any) -> bool:
        """Whether the request asks for abstention, or InvalidInput."""
        if value is None or value is False:
            return False
        if value is not True:
            raise InvalidInput("abstain must be true or false")
        if self.conformal is None:
            raise InvalidInput(
                "abstain applies to versions with prediction sets; this one has none"
            )
        return True

    @property
    def alpha(self) -> float | None:
        """The version's default alpha (None: it has no prediction sets)."""
        return None if self.conformal is None else self.conformal.default_alpha

    def set_masks(self, probs: np.ndarray, alpha: float | None) -> np.ndarray:
        """``[N, labels]`` booleans: the labels in each instance's prediction set."""
        if self.conformal is None:
            raise KeyError(SET_OUTPUT)
        return self.conformal.mask(self.class_scores(probs), alpha)

    def set_labels(self, probs: np.ndarray, mask: np.ndarray) -> list[list[str]]:
        """The labels of each prediction set, most probable first."""
        scores = self.class_scores(probs)
        order = np.argsort(-scores, axis=1, kind="stable")
        labels = self.labels
        rows = zip(order.tolist(), mask, strict=True)
        return [[labels[j] for j in row if m[j]] for row, m in rows]

    def abstain_reasons(
        self, x: np.ndarray, probs: np.ndarray, mask: np.ndarray
    ) -> list[str | None]:
        """Per instance, why an abstaining answer abstains (None: it answers)."""
        return conformal.abstentions(mask, self.ood_flags(x, probs))

    def set_fields(
        self, x: np.ndarray, probs: np.ndarray, alpha: float | None, abstain: bool
    ) -> list[dict[str, Any]] | None:
        """Per instance, ``prediction_set`` and, with ``abstain``, ``abstained`` and
        ``abstain_reason`` (None: the version has no prediction sets)."""
        if self.conformal is None:
            return None
        mask = self.set_masks(probs, alpha)
        items: list[dict[str, Any]] = [
            {"prediction_set": labels} for labels in self.set_labels(probs, mask)
        ]
        if abstain:
            for item, reason in zip(items, self.abstain_reasons(x, probs, mask), strict=True):
                item["abstained"] = reason is not None
                item["abstain_reason"] = reason
        return items

    @property
    def extra_outputs(self) -> tuple[str, ...]:
        """Outputs the tensor protocols return only when a request names them."""
        return () if self.conformal is None else SET_OUTPUTS

    def extra_output_datatype(self, name: str) -> str:
        """The V2 datatype of an extra output: FP32 scores, BOOL flags or BYTES text."""
        if name == ABSTAINED_OUTPUT:
            return "BOOL"
        if name in (SET_OUTPUT, REASON_OUTPUT):
            return "BYTES"
        return "FP32"

    def extra_output(
        self, name: str, x: np.ndarray, probs: np.ndarray, alpha: float | None = None
    ) -> np.ndarray:
        """The extra output ``name`` (one of :attr:`extra_outputs`) for the inputs ``x`` and
        the model's outputs ``probs``, shape ``[N]``: the prediction set as an object array of
        label lists, ``abstained`` as booleans, ``abstain_reason`` as text ("" when answered)."""
        if name not in SET_OUTPUTS or self.conformal is None:
            raise KeyError(name)
        mask = self.set_masks(probs, alpha)
        out = np.empty(len(mask), dtype=object)
        if name == SET_OUTPUT:
            for i, labels in enumerate(self.set_labels(probs, mask)):
                out[i] = labels
            return out
        reasons = self.abstain_reasons(x, probs, mask)
        if name == ABSTAINED_OUTPUT:
            return np.array([r is not None for r in reasons], dtype=bool)
        out[:] = [r or "" for r in reasons]
        return out

    def ood_fields(self, x: np.ndarray, probs: np.ndarray) -> list[dict[str, Any]] | None:
        """Per instance, ``ood_score`` and the ``out_of_distribution`` flag (None: no model)."""
        return None

    @property
    def record_fields(self) -> list[str] | None:
        """Names of the fields of a record input (TF Serving's row objects), if it has them."""
        return None

    @property
    def record_names(self) -> RecordFields | None:
        """Every name a record's fields are taken under (aliases, the label), if it has fields."""
        return None

    # --- explanations: one batch of perturbed inputs, then the task's reading of its outputs --
    def check_target(self, value: Any) -> int | None:
        """The class an explanation is for (None: the predicted one), or InvalidInput."""
        if value is None:
            return None
        raise InvalidInput("target applies to image models only")

    def explanation_inputs(self, x: np.ndarray, target: int | None) -> tuple[np.ndarray, Any]:
        """The perturbed inputs that explain the instances ``x`` (run in one model call), and
        what :meth:`explanation` needs besides their outputs."""
        raise BadRequest("this model has no explanations")

    def explanation(self, outputs: np.ndarray, context: Any) -> Explanation:
        """The explanation from the model's outputs for :meth:`explanation_inputs`."""
        raise BadRequest("this model has no explanations")


def _rounded(score: float) -> float:
    """An OOD score to 6 significant digits: a density score keeps its three decimals, and a
    doubt-weighed one, tiny for a clear digit, does not round to 0."""
    return float(f"{score:.6g}")


class ImageClassifier(Task):
    """Softmax over classes of a square grey image; files are framed as the data set was made.

    ``metadata.input.framing`` is ``"digit"`` (ink fitted in a box and centred by its centre of
    mass, as MNIST) or ``"item"`` (longer side to the frame, centred, as Fashion-MNIST), and
    ``input.side`` the frame's side.
    """

    name = "image_classification"
    accepts_files = True
    pixel_input = True
    json_fields = Task.json_fields | {"scale"}

    def __init__(self, meta: dict[str, Any], folder: Path | None = None) -> None:
        super().__init__(meta, folder)
        inp = meta["input"]
        self.framing: Fit = _framing(meta)
        self.ood = OodModel.from_metadata(meta, folder) if folder is not None else None
        side = inp.get("side", self.input_shape[0])
        if self.input_shape != (side, side):
            raise ValueError(f"input shape {list(self.input_shape)} is not a {side}x{side} image")
        self.side: int = int(side)
        patch = max(1, self.side // OCCLUSION_PATCHES_PER_SIDE)
        self.occlusion = Occlusion(self.side, patch=patch, stride=max(1, patch // 2))

    def decode_instances(self, payload: dict[str, Any], max_instances: int) -> np.ndarray:
        scale = payload.get("scale", "auto")
        if scale not in SCALES:
            raise InvalidInput(f"scale must be one of {', '.join(SCALES)}")
        return images_from_json(
            payload["instances"], side=self.side, scale=scale, max_instances=max_instances
        )

    def decode_file(self, data: bytes, content_type: str | None, max_pixels: int) -> np.ndarray:
        return decode_image(
            data, max_pixels=max_pixels, content_type=content_type, fit=self.framing
        )

    def decode_digits(
        self, data: bytes, content_type: str | None, max_pixels: int
    ) -> tuple[np.ndarray, list[list[int]], list[tuple[int, int, bool]]]:
        if self.framing != "digit":
            raise InvalidInput("digits=many applies to digit models")
        readings = decode_readings(data, max_pixels=max_pixels, content_type=content_type)
        return (
            np.stack([r.digit.image for r in readings]),
            [list(r.digit.box) for r in readings],
            [(r.start, r.end, r.shape) for r in readings],
        )

    def ood_scores(self, x: np.ndarray, probs: np.ndarray) -> np.ndarray | None:
        return None if self.ood is None else self.ood.scores(x, probs)

    def ood_flags(self, x: np.ndarray, probs: np.ndarray) -> np.ndarray | None:
        return None if self.ood is None else self.ood.flags(self.ood.scores(x, probs))

    def ood_density(self, x: np.ndarray) -> np.ndarray | None:
        return None if self.ood is None else self.ood.input_scores(x) / self.ood.threshold

    @property
    def extra_outputs(self) -> tuple[str, ...]:
        return super().extra_outputs + (() if self.ood is None else (OOD_OUTPUT,))

    def extra_output(
        self, name: str, x: np.ndarray, probs: np.ndarray, alpha: float | None = None
    ) -> np.ndarray:
        if name != OOD_OUTPUT:
            return super().extra_output(name, x, probs, alpha)
        if self.ood is None:
            raise KeyError(name)
        return self.ood.scores(x, probs).astype(np.float32)

    def ood_fields(self, x: np.ndarray, probs: np.ndarray) -> list[dict[str, Any]] | None:
        if self.ood is None:
            return None
        scores = self.ood.scores(x, probs)
        flags = self.ood.flags(scores)
        return [
            {"ood_score": _rounded(float(s)), "out_of_distribution": bool(f)}
            for s, f in zip(scores, flags, strict=True)
        ]

    def check_top_k(self, value: Any) -> int | None:
        if value is None:
            return None
        n = len(self.labels)
        # 3.0 is an integer to JSON Schema, and some serialisers write every number so
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= n:
            shown = f", got {value!r}" if isinstance(value, float) else ""
            raise InvalidInput(f"top_k must be a whole number from 1 to {n}{shown}")
        return value

    def predictions(
        self, probs: np.ndarray, top_k: int | None, threshold: float | None
    ) -> list[dict[str, Any]]:
        """Per instance: label, class_index, probabilities keyed by label, optional top_k."""
        probs = probs.reshape(len(probs), -1)
        labels = self.labels
        best = probs.argmax(axis=1).tolist()
        rows = list(probs)  # numpy float32 scalars: JSON gets their shortest float32 repr
        order = np.argsort(-probs, axis=1, kind="stable")[:, :top_k].tolist() if top_k else None
        out: list[dict[str, Any]] = []
        for i, row in enumerate(rows):
            item: dict[str, Any] = {
                "label": labels[best[i]],
                "class_index": best[i],
                "probabilities": dict(zip(labels, row, strict=True)),
            }
            if order is not None:
                item["top_k"] = [{"label": labels[j], "probability": row[j]} for j in order[i]]
            out.append(item)
        return out

    def check_target(self, value: Any) -> int | None:
        """A label or a class index."""
        if value is None:
            return None
        if isinstance(value, str) and value in self.labels:
            return self.labels.index(value)
        if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 18:
            value = int(value)  # ASCII only: str.isdigit takes "²", which int() refuses
        n = len(self.labels)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < n:
            raise InvalidInput(f"target must be a label or a class index from 0 to {n - 1}")
        return value

    def explanation_inputs(self, x: np.ndarray, target: int | None) -> tuple[np.ndarray, Any]:
        batch = np.concatenate([self.occlusion.inputs(image) for image in x])
        return batch, (x, target)

    def explanation(self, outputs: np.ndarray, context: Any) -> Explanation:
        """Per instance: the explained class, its probability and a ``side`` x ``side`` map of
        how much each pixel's ink adds to that probability (negative: it speaks against)."""
        x, target = context
        occ = self.occlusion
        scores = outputs.reshape(len(x), occ.copies + 1, -1)
        maps = np.empty((len(x), self.side, self.side), np.float32)
        items: list[dict[str, Any]] = []
        classes = np.empty(len(x), np.int64)
        for i, image in enumerate(x):
            cls = int(scores[i, 0].argmax()) if target is None else target
            classes[i] = cls
            maps[i] = occ.attribution(image, scores[i, :, cls])
            items.append(
                {
                    "label": self.labels[cls],
                    "class_index": cls,
                    "probability": scores[i, 0, cls],
                    "attributions": maps[i],
                }
            )
        fields = {
            "method": "occlusion",
            "patch": occ.patch,
            "stride": occ.stride,
            "baseline": occ.baseline,
            "units": "probability of the explained class removed by setting the pixel to the "
            "baseline, per pixel",
        }
        tensors: dict[str, np.ndarray] = {"attributions": maps, "class_index": classes}
        return Explanation(fields, items, scores[:, 0].copy(), tensors)


class TabularBinaryClassifier(Task):
    """A sigmoid probability of the positive (last) label from named numeric features, with a
    decision threshold (``metadata.threshold``) and per-feature hard limits."""

    name = "binary_classification"

    def __init__(self, meta: dict[str, Any], folder: Path | None = None) -> None:
        super().__init__(meta, folder)
        self.features: list[FeatureSpec] = features_from_metadata(meta["input"])
        self.records = RecordFields(self.features, label_names_from_metadata(meta["input"]))
        if self.input_shape != (len(self.features),):
            raise ValueError(
                f"input shape {list(self.input_shape)} does not match {len(self.features)} features"
            )
        threshold = meta.get("threshold")  # checked with the rest of the metadata
        self.threshold = 0.5 if threshold is None else float(threshold)
        self._lows = np.array([f.min for f in self.features], np.float32)
        self._highs = np.array([f.max for f in self.features], np.float32)
        # The training sample ships with the version; a broken one fails the load. Versions
        # without one fall back to their golden inputs (real test rows), and say so.
        self.background: np.ndarray | None = None
        self.background_source = ""
        if "explain" in meta or isinstance(meta.get("golden"), dict):
            self.background, self.background_source = load_background(
                meta, folder, len(self.features)
            )

    @property
    def record_fields(self) -> list[str] | None:
        return [f.name for f in self.features]

    @property
    def record_names(self) -> RecordFields | None:
        return self.records

    def decode_instances(self, payload: dict[str, Any], max_instances: int) -> np.ndarray:
        if "scale" in payload:
            raise InvalidInput("scale applies to image models only")
        return records_from_json(payload["instances"], self.records, max_instances=max_instances)

    def check_values(self, x: np.ndarray, lowest: float, highest: float) -> None:
        super().check_values(x, lowest, highest)
        bad_cols = (x.min(axis=0) < self._lows) | (x.max(axis=0) > self._highs)
        if not bad_cols.any():
            return
        col = int(np.argmax(bad_cols))
        column, low, high = x[:, col], self._lows[col], self._highs[col]
        row = int(np.argmax((column < low) | (column > high)))
        raise InvalidInput(
            f"instance {row}: {self.features[col].name}={float(column[row]):g} is outside "
            f"[{float(low):g}, {float(high):g}]"
        )

    def check_threshold(self, value: Any) -> float | None:
        if value is None:
            return self.threshold
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise InvalidInput("threshold must be a number from 0 to 1")
        if not math.isfinite(value):
            raise InvalidInput("threshold must be a number from 0 to 1")
        return float(value)

    def predictions(
        self, probs: np.ndarray, top_k: int | None, threshold: float | None
    ) -> list[dict[str, Any]]:
        """Per instance: probability, outcome label and index, threshold."""
        cut = self.threshold if threshold is None else threshold
        negative, positive = self.labels[0], self.labels[-1]
        return [
            {
                "probability": value,
                "outcome": positive if value >= cut else negative,
                "outcome_index": 1 if value >= cut else 0,
                "threshold": cut,
            }
            for value in list(probs.reshape(len(probs), -1)[:, 0])
        ]

    def answer_fields(self, threshold: float | None) -> dict[str, Any]:
        return {"threshold": self.threshold if threshold is None else threshold}

    def class_scores(self, probs: np.ndarray) -> np.ndarray:
        """``[1 - p, p]`` per instance: the negative and the positive label's probability."""
        p = probs.reshape(len(probs), -1)[:, :1]
        return np.concatenate([1.0 - p, p], axis=1)

    def explanation_inputs(self, x: np.ndarray, target: int | None) -> tuple[np.ndarray, Any]:
        if self.background is None:
            raise BadRequest("this version ships no background sample to explain against")
        bg = self.background
        return np.concatenate([coalition_inputs(row, bg) for row in x]), x

    def explanation(self, outputs: np.ndarray, context: Any) -> Explanation:
        """Exact Shapley values per feature, in probability and in log-odds of the positive
        label, against the background sample: each set adds up to the instance's value minus
        the background's mean value (``base``)."""
        x = context
        n = len(self.features)
        per_instance = outputs.reshape(len(x), -1)
        prob = np.empty((len(x), n), np.float64)
        odds = np.empty((len(x), n), np.float64)
        base = np.empty((len(x), 2), np.float64)
        items: list[dict[str, Any]] = []
        for i, row in enumerate(x):
            p = shapley_values(per_instance[i], n, "identity")
            lo = shapley_values(per_instance[i], n, "logit")
            prob[i], odds[i], base[i] = p.values, lo.values, (p.base, lo.base)
            attributions = [
                {
                    "feature": spec.name,
                    "value": row[j],  # float32: JSON gets its shortest repr
                    "unit": spec.unit,
                    "probability": float(p.values[j]),
                    "log_odds": float(lo.values[j]),
                    "effect": _effect(float(p.values[j])),
                }
                for j, spec in enumerate(self.features)
            ]
            items.append(
                {
                    "probability": p.full,
                    "log_odds": lo.full,
                    "base": {"probability": p.base, "log_odds": lo.base},
                    "attributions": attributions,
                }
            )
        positive = self.labels[-1]
        fields = {
            "method": "exact_shapley",
            "background": self.background_source,
            "units": {
                "probability": f"P({positive}); the features' values add up to probability "
                "minus base.probability",
                "log_odds": f"log-odds of {positive} (the logit of each output, averaged over "
                "the background); they add up to log_odds minus base.log_odds",
            },
        }
        tensors = {
            "attributions": prob.astype(np.float32),
            "attributions_log_odds": odds.astype(np.float32),
            "base": base.astype(np.float32),
        }
        own = per_instance.reshape(len(x), 2**n, -1)[:, -1, :1]  # every feature from x
        return Explanation(fields, items, own.copy(), tensors)


OCCLUSION_PATCHES_PER_SIDE = 7  # patch side = image side / 7 (4 pixels for 28), half-overlapping
_NO_EFFECT = 1e-6  # an attribution this small neither raises nor lowers the risk


def _effect(value: float) -> str:
    return "raises" if value > _NO_EFFECT else "lowers" if value < -_NO_EFFECT else "none"


# Versions written before metadata format 2 carry no framing: the data set they were trained
# on (metadata ``name``) says how its images were made.
_FORMAT_1_FRAMING: dict[str, Fit] = {"mnist": "digit", "fashion_mnist": "item"}


def _framing(meta: dict[str, Any]) -> Fit:
    framing = meta["input"].get("framing")
    if framing is None and int(meta.get("format_version", 1)) < 2:
        framing = _FORMAT_1_FRAMING.get(str(meta.get("name")), "item")
    if framing not in FITS:
        raise ValueError(f"metadata input.framing must be one of {', '.join(FITS)}")
    return framing  # type: ignore[no-any-return]


def known_tasks() -> Sequence[str]:
    return sorted(Task._registry)
