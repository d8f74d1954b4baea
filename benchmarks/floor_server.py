"""The HTTP floor: a FastAPI endpoint that reads and parses the same body, then returns a constant.

No validation, no model, no batching. Whatever the service does beyond this costs req/s, so
"service req/s / floor req/s" is the share of the HTTP stack's own ceiling that the service keeps.
JSON bodies are parsed with orjson (the JSON header only, for V2 binary requests); image bodies are
read. Run it with ``python -m benchmarks.floor_server --port 8101`` (uvicorn, uvloop, httptools).
"""

from __future__ import annotations

import argparse

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response

# What a one-image MNIST answer looks like on the TF Serving API (ten probabilities).
CONSTANT = orjson.dumps({"predictions": [[0.1] * 10]})


def create_app() -> FastAPI:
    app = FastAPI(title="floor", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/readyz")
    async def ready() -> Response:
        return Response(b'{"status":"ready"}', media_type="application/json")

    @app.post("/{target:path}")
    async def parse_and_answer(target: str, request: Request) -> Response:
        body = await request.body()
        header_length = request.headers.get("inference-header-content-length")
        if header_length is not None:
            orjson.loads(body[: int(header_length)])
        elif request.headers.get("content-type", "").startswith("application/json"):
            orjson.loads(body)
        return Response(CONSTANT, media_type="application/json")

    return app


def serve(app: FastAPI, host: str, port: int) -> None:
    """uvicorn as every reference server runs: one process, uvloop, httptools, no access log."""
    import uvicorn

    uvicorn.run(
        app,
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.floor_server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8101)
    args = parser.parse_args(argv)
    serve(create_app(), args.host, args.port)


if __name__ == "__main__":
    main()
