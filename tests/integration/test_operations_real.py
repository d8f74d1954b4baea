"""Operations on real models over real HTTP: the 10,000 MNIST test images and the Pima test split
replayed with their labels posted back (the server's quality equals the offline computation),
drift under i.i.d. and shifted replays, and payload-log replay giving identical answers.

Needs the trained tutorial models (``tests.helpers.live_server.trained_repository``) and the real
data sets (marked ``data``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from service.client.replay import read_log, replay
from tests.helpers.live_server import run_server, trained_repository
from training.data.loaders import load_fashion_mnist, load_mnist, load_pima
from training.drift_reference import write_image_reference, write_record_reference
from training.metrics import classification_metrics

pytestmark = pytest.mark.data
BATCH = 500
PIMA = ["pregnant", "glucose", "pressure", "triceps", "insulin", "mass", "pedigree", "age"]


def _latest(root: Path, name: str) -> int:
    return max(int(p.parent.name) for p in (root / name).glob("*/metadata.json"))


@pytest.fixture(scope="module")
def data() -> dict[str, np.ndarray]:
    from sklearn.model_selection import train_test_split

    (x_train, _), (x_test, y_test) = load_mnist()
    pima = load_pima()
    table = np.asarray(pima.features, dtype=np.float32)
    p_train, p_test, _, q_test = train_test_split(
        table, pima.outcome, test_size=0.2, stratify=pima.outcome, random_state=42
    )
    return {
        "mnist_train": x_train.astype(np.float32) / 255.0,
        "mnist_test": x_test.astype(np.float32) / 255.0,
        "mnist_labels": np.asarray(y_test, np.int64),
        "pima_train": np.asarray(p_train, np.float32),
        "pima_test": np.asarray(p_test, np.float32),
        "pima_labels": np.asarray(q_test, np.int64),
    }


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory, data: dict[str, np.ndarray]) -> Path:
    """A copy of the trained repository's newest versions. A version trained before the trainer
    wrote drift references gets one here, written by the trainer's own functions."""
    source = trained_repository()
    root = tmp_path_factory.mktemp("ops") / "models"
    for name in ("mnist", "fashion_mnist", "pima"):
        v = _latest(source, name)
        shutil.copytree(source / name / str(v), root / name / str(v))
    mnist_dir = root / "mnist" / str(_latest(root, "mnist"))
    _ensure_reference(mnist_dir, lambda d: write_image_reference(d, data["mnist_train"], 10))
    pima_dir = root / "pima" / str(_latest(root, "pima"))
    _ensure_reference(pima_dir, lambda d: write_record_reference(d, data["pima_train"], PIMA))
    return root


def _ensure_reference(version_dir: Path, write: Callable[[Path], dict[str, Any]]) -> None:
    meta_path = version_dir / "metadata.json"
    meta = json.loads(meta_path.read_text())
    if "drift" in meta:
        return
    block = write(version_dir)
    name = block["drift"]["file"]
    meta.update(block)
    meta["files"][name] = hashlib.sha256((version_dir / name).read_bytes()).hexdigest()
    meta_path.write_text(json.dumps(meta))


def _post(client: httpx.Client, model: str, x: np.ndarray) -> tuple[str, np.ndarray]:
    r = client.post(f"/v1/models/{model}:predict", json={"instances": x.tolist()})
    r.raise_for_status()
    return r.headers["x-request-id"], np.asarray(r.json()["predictions"], np.float32)


def test_quality_equals_offline_on_the_real_test_sets(
    repo: Path, data: dict[str, np.ndarray], tmp_path: Path
) -> None:
    env = {"SERVE_FEEDBACK_WINDOW": "10000", "SERVE_FEEDBACK_PENDING_ROWS": "20000"}
    with (
        run_server(repo, tmp_path / "server.log", env) as server,
        httpx.Client(base_url=server.url, timeout=60) as client,
    ):
        for model, x, y, names in (
            ("mnist", data["mnist_test"], data["mnist_labels"], [str(d) for d in range(10)]),
            ("pima", data["pima_test"], data["pima_labels"], ["no diabetes", "diabetes"]),
        ):
            answered = []
            for i in range(0, len(x), BATCH):
                rid, probs = _post(client, model, x[i : i + BATCH])
                answered.append(probs)
                labels = y[i : i + BATCH].tolist()
                fb = client.post(
                    f"/models/{model}/feedback", json={"request_id": rid, "labels": labels}
                )
                assert fb.status_code == 200, fb.text
            probs = np.concatenate(answered)
            version = client.get(f"/models/{model}").json()["default_version"]
            quality = client.get(f"/models/{model}/versions/{version}/quality").json()
            q = quality["quality"]
            # the version's decision threshold (a calibrated Pima version's is not 0.5)
            threshold = client.get(f"/models/{model}").json()["metadata"]["threshold"]
            offline = classification_metrics(y, probs, names, threshold)
            assert q["rows"] == len(y)
            assert abs(q["accuracy"] - offline["accuracy"]) <= 1e-9
            assert q["confusion_matrix"] == offline["confusion_matrix"]
            assert abs(q["ece"] - offline["ece"]) <= 1e-9
            p = probs.astype(np.float64).reshape(len(y), -1)
            p = np.concatenate([1 - p, p], axis=1) if p.shape[1] == 1 else p
            brier = float(np.mean(np.sum((p - np.eye(p.shape[1])[y]) ** 2, axis=1)))
            assert abs(q["brier"] - brier) <= 1e-9
            if model == "pima":
                assert abs(q["roc_auc"] - offline["roc_auc"]) <= 1e-9
            print(model, json.dumps({k: q[k] for k in ("accuracy", "brier", "ece")}))


def test_payload_log_replay_gives_identical_answers(
    repo: Path, data: dict[str, np.ndarray], tmp_path: Path
) -> None:
    log_path = tmp_path / "payloads.jsonl"
    env = {
        "SERVE_PAYLOAD_LOG_RATE": "1.0",
        "SERVE_PAYLOAD_LOG_PATH": str(log_path),
        "SERVE_PAYLOAD_LOG_REDACT": "{}",
    }
    with (
        run_server(repo, tmp_path / "server.log", env) as server,
        httpx.Client(base_url=server.url, timeout=60) as client,
    ):
        for i in range(0, 200, 4):
            _post(client, "mnist", data["mnist_test"][i : i + 4])
        for i in range(0, 100, 1):
            rows = data["pima_test"][i : i + 1]
            r = client.post(
                "/models/pima/predict",
                json={"instances": [dict(zip(PIMA, map(float, rows[0]), strict=True))]},
            )
            assert r.status_code == 200
        server.terminate()
    records = list(read_log(log_path.read_text().splitlines()))
    assert len(records) == 150
    with (
        run_server(repo, tmp_path / "server2.log") as server,
        httpx.Client(base_url=server.url, timeout=60) as client,
    ):
        result = replay(records, client, atol=0.0)
    assert result.sent == 150 and result.same == 150, result.differ[:3]


# --- drift ------------------------------------------------------------------------------------
# The "within N requests" statements of docs/operations.md. Each was chosen on a development part
# of the shifted inputs (DRIFT_PART=dev runs the scenarios on it) and is checked here on the
# other, held-out part; one request carries one input, as a client does.
ALPHA = 0.01
TRIALS = 40  # bootstrapped i.i.d. windows (one request fills a window)
SHIFT_TRIALS = 3
PIMA_WINDOW = 100
GLUCOSE_WITHIN = 80  # single-row Pima requests after glucose rises by 25%
MNIST_WINDOW = 200
FASHION_WITHIN = 50  # Fashion-MNIST images sent to mnist, one per request
ROTATED_WITHIN = 100  # MNIST digits rotated by 30 degrees, one per request
# A window bootstrapped from the 154-row Pima test split carries that split's own sampling
# difference from the training rows, which the alarm (two samples: window and reference) does
# not count: offline (python -m benchmarks.drift_false_alarms, its own seed), 2.75% of such
# windows raise it at alpha 1%, against 0.25% of windows drawn from the training rows. MNIST's
# 10,000 test images leave no such excess. Each replay is held to its rate below.
PIMA_REPLAY_RATE = 0.0275
PIMA_TRIALS = 100
PART = os.environ.get("DRIFT_PART", "held")


def _part(n: int) -> np.ndarray:
    """The rows of a shifted set in this run's part: a seeded half, the other half held out."""
    order = np.random.default_rng(2024).permutation(n)
    return order[: n // 2] if PART == "dev" else order[n // 2 :]


class DriftProbe:
    """Sends inputs to one model and reads its drift report once the server has taken them in."""

    def __init__(self, client: httpx.Client, model: str) -> None:
        self.client, self.model = client, model
        self.version = client.get(f"/models/{model}").json()["default_version"]
        self.sent = 0

    def send(self, x: np.ndarray) -> None:
        _post(self.client, self.model, x)
        self.sent += len(x)

    def report(self) -> dict[str, Any]:
        deadline = time.monotonic() + 10
        while True:
            r = self.client.get(f"/models/{self.model}/versions/{self.version}/drift")
            drift: dict[str, Any] = r.json()["drift"]
            if drift["inputs_total"] >= self.sent or time.monotonic() > deadline:
                return drift
            time.sleep(0.02)

    def false_alarms(
        self, pool: np.ndarray, window: int, trials: int, rng: np.random.Generator
    ) -> int:
        """Alarms over ``trials`` windows bootstrapped from ``pool`` (a request fills one)."""
        return sum(
            bool(self._fill(pool[rng.integers(0, len(pool), window)])["alarm"])
            for _ in range(trials)
        )

    def _fill(self, x: np.ndarray) -> dict[str, Any]:
        self.send(x)
        return self.report()

    def requests_to_alarm(self, clean: np.ndarray, shifted: np.ndarray) -> int | None:
        """After a window of ``clean`` inputs, how many single-input requests of ``shifted``
        raise the alarm (None: not within all of them)."""
        if self._fill(clean)["alarm"]:
            return 0  # a false alarm before the shift: counted as a failure below
        for k in range(len(shifted)):
            self.send(shifted[k : k + 1])
            if self.report()["alarm"]:
                return k + 1
        return None


def _drift_env(model: str, window: int) -> dict[str, str]:
    return {
        "SERVE_DRIFT_WINDOW": str(window),
        "SERVE_DRIFT_ALPHA": str(ALPHA),
        "SERVE_DRIFT_MIN_ROWS": str(window),
        "SERVE_MODELS": model,
    }


def _within(counts: list[int | None], limit: int) -> bool:
    return all(c is not None and 0 < c <= limit for c in counts)


def _allowed_alarms(trials: int, rate: float) -> int:
    """The most alarms ``trials`` windows may raise at ``rate``: its binomial 99th percentile."""
    from scipy.stats import binom

    return int(binom.ppf(0.99, trials, rate))


def test_pima_drift_iid_false_alarms_and_glucose_shift(
    repo: Path, data: dict[str, np.ndarray], tmp_path: Path
) -> None:
    rng = np.random.default_rng(0)
    test = data["pima_test"]
    shifted_pool = test[_part(len(test))].copy()
    shifted_pool[:, PIMA.index("glucose")] *= 1.25
    with (
        run_server(repo, tmp_path / "server.log", _drift_env("pima", PIMA_WINDOW)) as server,
        httpx.Client(base_url=server.url, timeout=60) as client,
    ):
        probe = DriftProbe(client, "pima")
        alarms = probe.false_alarms(test, PIMA_WINDOW, PIMA_TRIALS, rng)
        counts = [
            probe.requests_to_alarm(
                test[rng.integers(0, len(test), PIMA_WINDOW)],
                shifted_pool[rng.integers(0, len(shifted_pool), GLUCOSE_WITHIN)],
            )
            for _ in range(SHIFT_TRIALS)
        ]
    print(f"pima ({PART}): i.i.d. alarms {alarms}/{PIMA_TRIALS}; glucose +25%: requests {counts}")
    assert alarms <= _allowed_alarms(PIMA_TRIALS, PIMA_REPLAY_RATE), alarms
    assert _within(counts, GLUCOSE_WITHIN), counts


def test_mnist_drift_iid_false_alarms_fashion_and_rotated_digits(
    repo: Path, data: dict[str, np.ndarray], tmp_path: Path
) -> None:
    rng = np.random.default_rng(1)
    test = data["mnist_test"]
    _, (fashion, _) = load_fashion_mnist()
    fashion_pool = (np.asarray(fashion, np.float32) / 255.0)[_part(len(fashion))]
    rotated_pool = _rotate(test[_part(len(test))][:2000], 30)
    with (
        run_server(repo, tmp_path / "server.log", _drift_env("mnist", MNIST_WINDOW)) as server,
        httpx.Client(base_url=server.url, timeout=60) as client,
    ):
        probe = DriftProbe(client, "mnist")
        alarms = probe.false_alarms(test, MNIST_WINDOW, TRIALS, rng)

        def trials(pool: np.ndarray, limit: int) -> list[int | None]:
            return [
                probe.requests_to_alarm(
                    test[rng.integers(0, len(test), MNIST_WINDOW)],
                    pool[rng.integers(0, len(pool), limit)],
                )
                for _ in range(SHIFT_TRIALS)
            ]

        fashion_counts = trials(fashion_pool, FASHION_WITHIN)
        rotated_counts = trials(rotated_pool, ROTATED_WITHIN)
    print(
        f"mnist ({PART}): i.i.d. alarms {alarms}/{TRIALS}; Fashion images: requests "
        f"{fashion_counts}; rotated 30 degrees: requests {rotated_counts}"
    )
    assert alarms <= _allowed_alarms(TRIALS, ALPHA), alarms
    assert _within(fashion_counts, FASHION_WITHIN), fashion_counts
    assert _within(rotated_counts, ROTATED_WITHIN), rotated_counts


def _rotate(images: np.ndarray, degrees: float) -> np.ndarray:
    from PIL import Image

    bilinear = Image.Resampling.BILINEAR
    out = [
        np.asarray(Image.fromarray(img).rotate(degrees, resample=bilinear), np.float32)
        for img in images.astype(np.float32)
    ]
    return np.clip(np.stack(out), 0.0, 1.0)
