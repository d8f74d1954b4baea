"""Optional peer servers for a side-by-side run (``python -m benchmarks.run --peers``).

Each peer serves the same MNIST model through the same LiteRT (TFLite) runtime that the service
uses, so the comparison measures the serving framework, not the model runtime:

- ``litserve``: LitServe with batching off and on (``litserve_server.py``), answering the TF
  Serving JSON request on the same path;
- ``mlserver``: MLServer with adaptive batching and ``parallel_workers=0`` (``mlserver_runtime.py``
  plus settings written at start), answering the V2 JSON request.

They are not project dependencies and never run in CI. Install them into any Python 3.11
environment that also has ``numpy`` and ``ai-edge-litert``, and point the benchmark at it with
``BENCH_LITSERVE_PYTHON`` / ``BENCH_MLSERVER_PYTHON`` (default: the current interpreter). A peer
whose package is missing is skipped with a note.
"""
