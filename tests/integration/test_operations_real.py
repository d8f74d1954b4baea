"""Operations on real models over real HTTP: the 10,000 MNIST test images and the Pima test split
replayed with their labels posted back (the server's quality equals the offline computation),
drift under i.i.d. and shifted replays, and payload-log replay giving identical answers.

Needs the trained tutorial models (``tests.helpers.live_server.trained_repository``) and the real
data sets (marked ``data``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx
import numpy as np
import pytest

from service.client.replay import read_log, replay
from tests.helpers.live_server import run_server, trained_repository
from tests.helpers.operations import image_reference, record_reference, write_reference
from training.data.loaders import load_mnist, load_pima
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
    """A copy of the trained repository with drift references written as the trainer would."""
    source = trained_repository()
    root = tmp_path_factory.mktemp("ops") / "models"
    for name in ("mnist", "fashion_mnist", "pima"):
        v = _latest(source, name)
        shutil.copytree(source / name / str(v), root / name / str(v))

    import tensorflow as tf

    mnist_dir = root / "mnist" / str(_latest(root, "mnist"))
    model = tf.saved_model.load(str(mnist_dir))
    probs = np.concatenate(
        [model.serve(data["mnist_train"][i : i + 5000]).numpy() for i in range(0, 60000, 5000)]
    )
    write_reference(mnist_dir, image_reference(data["mnist_train"], probs.argmax(1), 10))
    pima_dir = root / "pima" / str(_latest(root, "pima"))
    write_reference(pima_dir, record_reference(data["pima_train"], PIMA))
    return root


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


def test_drift_false_alarms_and_shifted_replays(
    repo: Path, data: dict[str, np.ndarray], tmp_path: Path
) -> None:
    """Bootstrapped i.i.d. windows of test data raise the alarm at most at the configured rate
    (plus binomial slack); shifted replays raise it within the window."""
    window, alpha, trials = 500, 0.01, 40
    env = {
        "SERVE_DRIFT_WINDOW": str(window),
        "SERVE_DRIFT_ALPHA": str(alpha),
        "SERVE_DRIFT_MIN_ROWS": str(window),
        "SERVE_MODELS": "mnist",
    }
    rng = np.random.default_rng(0)
    x = data["mnist_test"]
    with (
        run_server(repo, tmp_path / "server.log", env) as server,
        httpx.Client(base_url=server.url, timeout=60) as client,
    ):
        version = client.get("/models/mnist").json()["default_version"]

        def alarm_after(batch: np.ndarray) -> dict:
            _post(client, "mnist", batch)
            import time

            time.sleep(0.5)  # the operations thread takes the window in
            return client.get(f"/models/mnist/versions/{version}/drift").json()["drift"]

        alarms = 0
        for _ in range(trials):
            alarms += alarm_after(x[rng.integers(0, len(x), window)])["alarm"]
        rotated = _rotate(x[rng.integers(0, len(x), window)], 30)
        shifted = alarm_after(rotated)
    # binomial slack: P(Binomial(40, 0.01) >= 3) < 0.01
    assert alarms <= 2, alarms
    assert shifted["alarm"] is True
    print(
        "iid alarms",
        alarms,
        "of",
        trials,
        "; rotated:",
        {k: round(v["p_value"], 6) for k, v in shifted["features"].items()},
    )


def _rotate(images: np.ndarray, degrees: float) -> np.ndarray:
    from PIL import Image

    out = [
        np.asarray(Image.fromarray(img).rotate(degrees, resample=Image.BILINEAR), np.float32)
        for img in images.astype(np.float32)
    ]
    return np.clip(np.stack(out), 0.0, 1.0)
