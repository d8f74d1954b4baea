"""A bounded load loop on loopback: worker threads send MNIST predictions through all three
protocols and check every answer against the outputs of the model its version was copied from."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import numpy as np

from tests.helpers.reliability import Tally, close_to

Check = Callable[[int | None, np.ndarray], str | None]


@dataclass
class LoadLoop:
    """``workers`` threads, each with its own keep-alive connection, until ``stop()``."""

    url: str
    x: np.ndarray  # one 28x28 image
    check: Check  # (version or None, probabilities) -> problem or None
    workers: int = 4
    big_batch: int = 0  # > 0: worker 0 sends V2 requests of this many images (multi-chunk bodies)
    model: str = "mnist"
    timeout_s: float = 30.0
    tally: Tally = field(default_factory=Tally)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> LoadLoop:
        for i in range(self.workers):
            thread = threading.Thread(target=self._run, args=(i,), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> Tally:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self.timeout_s + 5)
        return self.tally

    def _requests(self) -> list[tuple[str, dict[str, object], Callable[[dict], tuple]]]:
        image = self.x.tolist()
        flat = self.x.reshape(-1).tolist()
        m = self.model
        return [
            (
                f"/models/{m}/predict",
                {"instances": [image], "scale": "unit"},
                lambda r: (
                    r["version"],
                    np.array(list(r["predictions"][0]["probabilities"].values()), np.float32),
                ),
            ),
            (
                f"/v1/models/{m}:predict",
                {"instances": [image]},
                lambda r: (None, np.array(r["predictions"][0], np.float32)),
            ),
            (
                f"/v2/models/{m}/infer",
                {
                    "inputs": [
                        {"name": "pixels", "shape": [1, 28, 28], "datatype": "FP32", "data": flat}
                    ]
                },
                lambda r: (int(r["model_version"]), np.array(r["outputs"][0]["data"], np.float32)),
            ),
        ]

    def _big_request(self) -> tuple[str, dict[str, object], Callable[[dict], tuple]]:
        n = self.big_batch
        data = np.repeat(self.x[None], n, axis=0).reshape(-1).tolist()
        tensor = {"name": "pixels", "shape": [n, 28, 28], "datatype": "FP32", "data": data}

        def parse(r: dict) -> tuple:
            out = np.array(r["outputs"][0]["data"], np.float32).reshape(n, -1)
            if not np.allclose(out, out[0], atol=1e-5):
                return int(r["model_version"]), np.zeros(0, np.float32)
            return int(r["model_version"]), out[0]

        return f"/v2/models/{self.model}/infer", {"inputs": [tensor]}, parse

    def _run(self, worker: int) -> None:
        requests = self._requests()
        if worker == 0 and self.big_batch > 0:
            requests = [self._big_request()]
        i = worker
        with httpx.Client(base_url=self.url, timeout=self.timeout_s) as client:
            while not self._stop.is_set():
                path, body, parse = requests[i % len(requests)]
                i += 1
                problem = None
                status = 0
                version = None
                try:
                    response = client.post(path, json=body)
                    status = response.status_code
                    if status == 200:
                        version, probs = parse(response.json())
                        problem = self.check(version, probs)
                    else:
                        problem = f"{path}: {status} {response.text[:200]}"
                except httpx.TransportError as exc:
                    with self._lock:
                        self.tally.sent += 1
                        self.tally.transport_errors.append(f"{path}: {exc!r}")
                    time.sleep(0.05)
                    continue
                with self._lock:
                    self.tally.sent += 1
                    self.tally.by_status[status] = self.tally.by_status.get(status, 0) + 1
                    if version is not None:
                        self.tally.versions[version] = self.tally.versions.get(version, 0) + 1
                    if problem is None:
                        self.tally.ok += 1
                    elif status == 200:
                        self.tally.wrong.append(f"{path}: {problem}")
                    else:
                        self.tally.wrong.append(problem)


def matches_any(expected: dict[str, np.ndarray], by_version: dict[int, str]) -> Check:
    """Answers must match the source model of their version (or any source, without one)."""

    def check(version: int | None, probs: np.ndarray) -> str | None:
        if version is None:
            if any(close_to(probs, out) for out in expected.values()):
                return None
            return "probabilities match no published model"
        source = by_version.get(version)
        if source is None:
            return f"answered by version {version}, which was never published as good"
        if not close_to(probs, expected[source]):
            return f"version {version} answered with probabilities not of model {source}"
        return None

    return check
