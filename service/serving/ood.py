"""Out-of-distribution scores for image inputs: how far an input lies from the training images.

The model is fitted at training time and shipped in the version folder (``metadata.ood``, its
arrays in the file it names, covered by the checksums). It is a probabilistic PCA of the training
images with one mean per class and a shared within-class covariance: an input is projected on the
top components, and its score is the squared Mahalanobis distance to the nearest class mean in
that subspace plus the squared residual outside it, divided by the discarded variance. That is
-2 log-likelihood of the nearest class under the PPCA model, up to a constant: digits of any
style score low; clothing, noise and scribbles score high. An input with less ink than the
lightest training images (a blank or near-blank page, which sits close to the mean image) scores
between the threshold and twice it, by how little ink it has. It looks at the input only, so it
works the same on every runtime.

The flag is ``score > threshold``, the threshold chosen on held-out training images so that, with
a stated confidence (``metadata.ood.flagged_confidence``), at most a stated share of real images
(``metadata.ood.in_distribution_flagged``) is flagged.

A version may also weigh its classifier's own doubt (``metadata.ood.confidence``): the score is
then the density score over its threshold times ``1 - top probability``, flagged above the
block's own threshold. A garment photographed and framed as a digit comes out as an outline that
the pixel density takes for a digit, while a CNN is unsure what it is; the two disagree on
different inputs, so their product separates more than either. Whether a version's score weighs
confidence, and the threshold, are chosen at training time (``training.ood_confidence``): an
MLP's confidence on noise or a Fashion-MNIST CNN's on digits would make the score worse.
"""

from __future__ import annotations

import io
import math
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from service.repository.disk import read_numpy

METHOD = "ppca-mahalanobis"
ARRAYS = ("mean", "components", "class_means", "whitening", "residual_variance", "min_mass")
DOUBT_FLOOR = 1e-6  # 1 - top probability is never taken below this: a probability that rounds
# to 1 in float32 must not cancel any density score, however far out


@dataclass(frozen=True)
class OodModel:
    mean: np.ndarray  # (d,) the training images' mean, flattened
    components: np.ndarray  # (d, k) top principal directions
    class_means: np.ndarray  # (c, k) per-class means, whitened
    whitening: np.ndarray  # (k, k) maps projections to whitened coordinates
    residual_variance: float  # mean variance of the discarded directions
    min_mass: float  # ink (sum of values) of the lightest training images
    threshold: float  # of the density score
    confidence_threshold: float | None = None  # of the score weighed by doubt (None: density)

    @classmethod
    def from_metadata(cls, meta: dict[str, Any], folder: Path) -> OodModel | None:
        """The version's OOD model, or None when it ships none. ValueError when it is broken."""
        block = meta.get("ood")
        if block is None:
            return None
        if not isinstance(block, dict) or block.get("method") != METHOD:
            raise ValueError(f"metadata ood must be a {METHOD!r} block")
        name = block.get("file")
        if not isinstance(name, str) or name not in meta.get("files", {}):
            raise ValueError("metadata ood.file must name a file listed in metadata files")
        threshold = block.get("threshold")
        if not isinstance(threshold, int | float) or not np.isfinite(threshold):
            raise ValueError("metadata ood.threshold must be a number")
        arrays = read_arrays(folder, name)
        return from_arrays(arrays, float(threshold), _confidence_threshold(block))

    def check(self) -> None:
        d, k = self.components.shape
        if self.mean.shape != (d,) or self.whitening.shape != (k, k):
            raise ValueError("ood arrays do not fit together")
        if self.class_means.ndim != 2 or self.class_means.shape[1] != k:
            raise ValueError("ood class means do not fit the components")
        if not self.residual_variance > 0 or not self.min_mass > 0:
            raise ValueError("ood residual variance and minimum ink must be positive")

    def density_scores(self, x: np.ndarray) -> np.ndarray:
        """The PPCA score alone, per instance of ``x`` (``(n, ...)`` with ``d`` values each)."""
        flat = x.reshape(len(x), -1).astype(np.float32, copy=False) - self.mean
        z = flat @ self.components
        residual = flat - z @ self.components.T
        white = z @ self.whitening
        distance = ((white[:, None, :] - self.class_means[None, :, :]) ** 2).sum(axis=2)
        score = distance.min(axis=1) + (residual**2).sum(axis=1) / self.residual_variance
        return score.astype(np.float64)

    def input_scores(self, x: np.ndarray) -> np.ndarray:
        """The PPCA score per instance, raised for inputs with too little ink."""
        score = self.density_scores(x)
        mass = x.reshape(len(x), -1).sum(axis=1, dtype=np.float64)
        light = mass < self.min_mass
        if light.any():
            floor = self.threshold * (2.0 - mass[light] / self.min_mass)
            score[light] = np.maximum(score[light], floor)
        return score

    def scores(self, x: np.ndarray, probs: np.ndarray) -> np.ndarray:
        """The score per instance of ``x``, given the model's probabilities ``probs`` for it:
        :meth:`input_scores`, weighed by doubt when the version's score does."""
        score = self.input_scores(x)
        if self.confidence_threshold is None:
            return score
        return weigh_by_doubt(score / self.threshold, probs)

    @property
    def flag_threshold(self) -> float:
        """What :meth:`scores` are compared with."""
        return self.threshold if self.confidence_threshold is None else self.confidence_threshold

    def flags(self, scores: np.ndarray) -> np.ndarray:
        return scores > self.flag_threshold


def weigh_by_doubt(relative: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """``relative`` (density score over its threshold) times ``1 - top probability``."""
    top = np.asarray(probs, np.float64).reshape(len(probs), -1).max(axis=1)
    return relative * np.maximum(1.0 - top, DOUBT_FLOOR)


def _confidence_threshold(block: dict[str, Any]) -> float | None:
    """The threshold of the doubt-weighed score, when the version's score is that one."""
    confidence = block.get("confidence")
    if confidence is None:
        return None
    if not isinstance(confidence, dict) or not isinstance(confidence.get("weighed"), bool):
        raise ValueError("metadata ood.confidence must be a block saying whether it is weighed")
    if not confidence["weighed"]:
        return None
    value = confidence.get("threshold")
    if not isinstance(value, int | float) or isinstance(value, bool) or not value > 0:
        raise ValueError("metadata ood.confidence.threshold must be a positive number")
    return float(value)


def fit(
    images: np.ndarray,
    labels: np.ndarray,
    *,
    components: int = 40,
) -> dict[str, np.ndarray]:
    """The arrays of an OOD model fitted on training images ``(n, ...)`` with class ``labels``
    (values as the model takes them)."""
    x = images.reshape(len(images), -1).astype(np.float64)
    mean = x.mean(axis=0)
    centred = x - mean
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    k = min(components, vt.shape[0])
    basis = vt[:k].T  # (d, k)
    variances = singular**2 / max(len(x) - 1, 1)
    residual_variance = float(variances[k:].mean()) if len(variances) > k else 1e-6
    z = centred @ basis
    classes = np.unique(labels)
    class_means = np.stack([z[labels == c].mean(axis=0) for c in classes])
    within = z - class_means[np.searchsorted(classes, labels)]
    covariance = within.T @ within / max(len(z) - len(classes), 1)
    covariance += np.eye(k) * 1e-6 * np.trace(covariance) / k
    # whitening W with W W^T = covariance^-1: distances in white coordinates are Mahalanobis
    whitening = np.linalg.cholesky(np.linalg.inv(covariance))
    return {
        "mean": mean.astype(np.float32),
        "components": basis.astype(np.float32),
        "class_means": (class_means @ whitening).astype(np.float32),
        "whitening": whitening.astype(np.float32),
        "residual_variance": np.array([max(residual_variance, 1e-6)], np.float32),
        "min_mass": np.array([max(float(np.quantile(x.sum(axis=1), 0.001)), 1e-6)], np.float32),
    }


def from_arrays(
    arrays: dict[str, np.ndarray], threshold: float, confidence_threshold: float | None = None
) -> OodModel:
    model = OodModel(
        mean=arrays["mean"].reshape(-1),
        components=arrays["components"],
        class_means=arrays["class_means"],
        whitening=arrays["whitening"],
        residual_variance=float(arrays["residual_variance"].reshape(-1)[0]),
        min_mass=float(arrays["min_mass"].reshape(-1)[0]),
        threshold=threshold,
        confidence_threshold=confidence_threshold,
    )
    model.check()
    return model


def choose_threshold(
    model: OodModel, held_out: np.ndarray, flagged: float, confidence: float | None = None
) -> float:
    """The density threshold from held-out real images (see :func:`threshold_flagging`).

    Images with less ink than ``model.min_mass`` are flagged whatever the threshold
    (:meth:`OodModel.input_scores`), so they count among the flagged share here; should they
    alone be more than that share, the threshold flags no other held-out image.
    """
    scores = model.density_scores(held_out)
    mass = held_out.reshape(len(held_out), -1).sum(axis=1, dtype=np.float64)
    light = mass < model.min_mass
    if light.all():
        raise ValueError(f"all {len(light)} held-out images have too little ink to be read")
    scores[light] = np.inf
    with np.errstate(invalid="ignore"):  # a quantile next to an inf score is nan: see below
        threshold = threshold_flagging(scores, flagged, confidence)
    if not np.isfinite(threshold):
        return float(scores[~light].max())
    return threshold


def threshold_flagging(scores: np.ndarray, flagged: float, confidence: float | None) -> float:
    """A threshold on held-out real images' ``scores`` for flagging ``flagged`` of real inputs.

    ``confidence`` None: the empirical quantile, which flags ``flagged`` of new real inputs on
    average, so about half of all test sets see more. Otherwise the threshold leaves above it the
    most held-out scores, ``m`` of ``n``, for which a flag rate of ``flagged`` would leave at most
    ``m`` with probability at most ``1 - confidence`` (a binomial bound, as PAC prediction sets
    use): with probability ``confidence`` over the held-out draw, it flags at most ``flagged``.
    """
    ordered = np.sort(np.asarray(scores, np.float64).ravel())
    if confidence is None:
        return float(np.quantile(ordered, 1.0 - flagged))
    above = bounded_count(len(ordered), flagged, 1.0 - confidence)
    return float(ordered[len(ordered) - above - 1])


def attained_confidence(n: int, flagged: float, confidence: float, above: int) -> float:
    """The confidence that a threshold leaving ``above`` of ``n`` held-out scores above it
    flags at most ``flagged`` of real images: ``1 - P(Binomial(n, flagged) <= above)``, capped
    at the ``confidence`` asked for. It falls short of that when the held-out scores are too few
    for it, or when more of them are flagged than the bound allows (images too light to read)."""
    if not 0 <= above <= n:
        raise ValueError("need 0 <= above <= n")
    return min(confidence, 1.0 - binomial_cdf(above, n, flagged))


def bounded_count(n: int, rate: float, tail: float) -> int:
    """The largest ``m`` with P(Binomial(n, rate) <= m) <= ``tail``; 0 when there is none (too
    few: see :func:`attained_confidence`)."""
    if not (0.0 < rate < 1.0 and 0.0 < tail < 1.0 and n >= 1):
        raise ValueError("need 0 < rate < 1, 0 < tail < 1 and n >= 1")
    total = 0.0
    for m in range(n + 1):
        total += math.exp(_log_binomial_pmf(m, n, rate))
        if total > tail:
            return max(m - 1, 0)
    return n


def binomial_cdf(m: int, n: int, rate: float) -> float:
    """P(Binomial(n, rate) <= m)."""
    return min(1.0, sum(math.exp(_log_binomial_pmf(k, n, rate)) for k in range(m + 1)))


def _log_binomial_pmf(m: int, n: int, rate: float) -> float:
    return (
        math.lgamma(n + 1)
        - math.lgamma(m + 1)
        - math.lgamma(n - m + 1)
        + m * math.log(rate)
        + (n - m) * math.log1p(-rate)
    )


def read_arrays(folder: Path, name: str) -> dict[str, np.ndarray]:
    data = read_numpy(folder, name)
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise ValueError(f"{name} is not an .npz archive of the OOD arrays")
    with data:
        missing = [key for key in ARRAYS if key not in data.files]
        if missing:
            raise ValueError(f"{name} lacks {', '.join(missing)}")
        arrays = {}
        for key in ARRAYS:  # an archive's members are read here, not by np.load: name the file
            try:
                arrays[key] = np.asarray(data[key], np.float32)
            except ValueError as exc:  # numpy's says how to unpickle it unsafely, not where
                if "allow_pickle" not in str(exc):
                    raise ValueError(f"{name}: {key}: {exc}") from exc
                said = f"{name} is not a readable NumPy file: {key} holds objects"
                raise ValueError(said) from None
            except (TypeError, OSError, EOFError, zipfile.BadZipFile) as exc:
                raise ValueError(f"{name} is not a readable NumPy file: {key}: {exc}") from exc
        return arrays


def save(arrays: dict[str, np.ndarray], path: Path) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]
    path.write_bytes(buffer.getvalue())
