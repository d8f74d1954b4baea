"""The Pima Indians Diabetes table: CSV and R data parsing, checks and the canonical CSV.

Whatever the source, the table is normalised to ``features`` float64 (768, 8) in
:data:`PIMA_FEATURES` order and ``outcome`` int64 0/1 (1 = diabetes), checked against
:data:`PIMA_EXPECTED` (tests may monkeypatch it), and cached as one canonical CSV with a header.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training.data.errors import DataIntegrityError
from training.specs import PIMA_FEATURE_NAMES, PIMA_FEATURE_SPECS, PIMA_LABEL_NAMES

PIMA_FEATURES = PIMA_FEATURE_NAMES  # the column order, as the data set descriptor lists it
PIMA_CSV = "pima-indians-diabetes.csv"
# Other names the same CSV is commonly published under, accepted in a user directory.
PIMA_CSV_ALIASES = (PIMA_CSV, "pima-indians-diabetes.data.csv", "diabetes.csv")
OUTCOME_COLUMN = PIMA_LABEL_NAMES[0]

_OUTCOME_NAMES = tuple(name.lower() for name in PIMA_LABEL_NAMES)
# Other copies' headers (Kaggle's, the UCI/Weka names), read as the mlbench names used here.
_HEADER_ALIASES = {
    alias.lower(): spec.name for spec in PIMA_FEATURE_SPECS for alias in spec.aliases
}
_POSITIVE = {"1", "1.0", "pos", "positive", "tested_positive", "yes", "true"}
_NEGATIVE = {"0", "0.0", "neg", "negative", "tested_negative", "no", "false"}


@dataclass(frozen=True)
class PimaExpectation:
    """What the real table must look like."""

    rows: int = 768
    negatives: int = 500
    positives: int = 268
    first_row: tuple[float, ...] = (6, 148, 72, 35, 0, 33.6, 0.627, 50)
    first_outcome: int = 1


PIMA_EXPECTED = PimaExpectation()


def _outcome_value(text: str, line: int, file: str, source: str) -> int:
    value = text.strip().strip('"').lower()
    if value in _POSITIVE:
        return 1
    if value in _NEGATIVE:
        return 0
    raise DataIntegrityError(file, source, f"line {line}: unknown outcome {text!r}")


def _is_header(row: list[str]) -> bool:
    try:
        float(row[0])
    except ValueError:
        return True
    return False


def _check_header(row: list[str], file: str, source: str) -> None:
    names = [
        _HEADER_ALIASES.get(n.strip().strip('"').lower(), n.strip().strip('"').lower()) for n in row
    ]
    if tuple(names[:8]) != PIMA_FEATURES or names[8] not in _OUTCOME_NAMES:
        raise DataIntegrityError(
            file,
            source,
            f"unexpected header {row}; expected {', '.join(PIMA_FEATURES)}, outcome",
        )


def parse_csv(data: bytes, file: str, source: str) -> tuple[np.ndarray, np.ndarray]:
    """Parse a Pima CSV (header optional; outcome 0/1 or pos/neg) into features and outcome."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataIntegrityError(file, source, f"not UTF-8 text ({exc})") from exc
    rows = [row for row in csv.reader(io.StringIO(text)) if row and any(f.strip() for f in row)]
    if rows and _is_header(rows[0]):
        if len(rows[0]) != 9:
            raise DataIntegrityError(file, source, f"header has {len(rows[0])} columns, not 9")
        _check_header(rows[0], file, source)
        start = 2
        rows = rows[1:]
    else:
        start = 1
    features = np.empty((len(rows), len(PIMA_FEATURES)), dtype=np.float64)
    outcome = np.empty(len(rows), dtype=np.int64)
    for i, row in enumerate(rows):
        line = start + i
        if len(row) != 9:
            raise DataIntegrityError(file, source, f"line {line}: {len(row)} columns, not 9")
        try:
            features[i] = [float(v) for v in row[:8]]
        except ValueError as exc:
            raise DataIntegrityError(file, source, f"line {line}: {exc}") from exc
        outcome[i] = _outcome_value(row[8], line, file, source)
    return features, outcome


def read_rda(path: Path, source: str) -> tuple[np.ndarray, np.ndarray]:
    """Read mlbench's ``PimaIndiansDiabetes.rda`` (column ``diabetes`` holds pos/neg)."""
    import warnings

    import rdata

    file = path.name
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Unknown encoding. Assumed ASCII."
            frames = rdata.read_rda(path)
        frame = frames["PimaIndiansDiabetes"]
        features = frame[list(PIMA_FEATURES)].to_numpy(dtype=np.float64)
        labels = [str(v) for v in frame[OUTCOME_COLUMN].tolist()]
    except (KeyError, ValueError, TypeError, OSError, EOFError) as exc:
        raise DataIntegrityError(file, source, f"cannot read the R data: {exc!r}") from exc
    outcome = np.array(
        [_outcome_value(v, i + 1, file, source) for i, v in enumerate(labels)], dtype=np.int64
    )
    return features, outcome


def check_table(features: np.ndarray, outcome: np.ndarray, file: str, source: str) -> None:
    """Shape, class counts and first row must match :data:`PIMA_EXPECTED`."""
    exp = PIMA_EXPECTED
    if features.shape != (exp.rows, len(PIMA_FEATURES)) or outcome.shape != (exp.rows,):
        raise DataIntegrityError(
            file, source, f"shape {features.shape}, expected ({exp.rows}, {len(PIMA_FEATURES)})"
        )
    if not np.all(np.isfinite(features)):
        raise DataIntegrityError(file, source, "non-finite feature values")
    positives = int(outcome.sum())
    negatives = int(len(outcome) - positives)
    if (negatives, positives) != (exp.negatives, exp.positives):
        raise DataIntegrityError(
            file,
            source,
            f"class counts {negatives} negative / {positives} positive, "
            f"expected {exp.negatives} / {exp.positives}",
        )
    first = np.asarray(exp.first_row, dtype=np.float64)
    if not np.allclose(features[0], first, rtol=0, atol=1e-9) or outcome[0] != exp.first_outcome:
        raise DataIntegrityError(
            file,
            source,
            f"first row {features[0].tolist()} / {int(outcome[0])}, "
            f"expected {list(exp.first_row)} / {exp.first_outcome}",
        )


def _fmt(value: float) -> str:
    return np.format_float_positional(value, trim="-")


def canonical_csv(features: np.ndarray, outcome: np.ndarray) -> bytes:
    """The cached form: a header, shortest exact float text, outcome 0/1, LF line ends."""
    lines = [",".join((*PIMA_FEATURES, OUTCOME_COLUMN))]
    for row, y in zip(features, outcome, strict=True):
        lines.append(",".join([*(_fmt(float(v)) for v in row), str(int(y))]))
    return ("\n".join(lines) + "\n").encode("ascii")
