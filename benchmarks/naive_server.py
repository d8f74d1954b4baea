"""The naive reference server: what a first FastAPI + Keras attempt looks like.

A pydantic request body and ``model.predict`` on every request, called straight from an
``async`` endpoint, on the same SavedModels the service serves (wrapped in a Keras ``TFSMLayer``).
A plain ``def`` endpoint is worse: FastAPI's thread pool runs up to 40 ``predict`` calls at once,
and on one core none of them finishes within the load generator's timeout. It answers the TF
Serving row format and the service's own JSON records, on the same paths as the service. Run with
``python -m benchmarks.naive_server --models-dir models --port 8102``.
"""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

from benchmarks.floor_server import serve
from benchmarks.payloads import ModelVersionInfo, find_versions

_TFS = re.compile(r"^(?P<name>[^/:]+)(?:/versions/(?P<version>\d+))?:predict$")


class Instances(BaseModel):
    instances: list[Any]


class Loaded:
    def __init__(self, info: ModelVersionInfo, models_dir: Path) -> None:
        import keras

        path = models_dir / info.name / str(info.version)
        shape = tuple(info.metadata["input"]["shape"])
        features = info.metadata["input"].get("features") or []
        self.features = [f["name"] for f in features]
        self.model = keras.Sequential(
            [keras.Input(shape=shape), keras.layers.TFSMLayer(str(path), call_endpoint="serve")]
        )

    def predict(self, instances: list[Any]) -> list[Any]:
        rows = [[r[n] for n in self.features] if isinstance(r, dict) else r for r in instances]
        out = self.model.predict(np.asarray(rows, dtype=np.float32), verbose=0)
        result: list[Any] = np.asarray(out).tolist()
        return result


def create_app(models_dir: Path) -> FastAPI:
    versions = find_versions(models_dir, ("mnist", "fashion_mnist", "pima"))
    models = {name: Loaded(info, models_dir) for name, info in versions.items()}
    for loaded in models.values():  # warm up, as any server would
        shape = loaded.model.inputs[0].shape[1:]
        loaded.model.predict(np.zeros((1, *shape), dtype=np.float32), verbose=0)
    app = FastAPI(title="naive", docs_url=None, redoc_url=None, openapi_url=None)

    def model_for(name: str) -> Loaded:
        if name not in models:
            raise HTTPException(404, f"model {name} not found")
        return models[name]

    @app.get("/readyz")
    def ready() -> dict[str, str]:
        return {"status": "ready"}

    @app.post("/v1/models/{target:path}")
    async def tfs_predict(target: str, body: Instances) -> dict[str, Any]:
        match = _TFS.fullmatch(target)
        if match is None:
            raise HTTPException(404, "unknown URL")
        return {"predictions": model_for(match["name"]).predict(body.instances)}

    @app.post("/models/{name}/versions/{version}/predict")
    async def own_predict(name: str, version: str, body: Instances) -> dict[str, Any]:
        return {"predictions": model_for(name).predict(body.instances)}

    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.naive_server")
    parser.add_argument("--models-dir", type=Path, default=Path("models"))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8102)
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    serve(create_app(args.models_dir), args.host, args.port)  # the floor's own HTTP stack


if __name__ == "__main__":
    main()
