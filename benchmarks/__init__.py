"""The project's benchmark: `python -m benchmarks.run` (``make bench``).

Modules:
- ``stats``: percentile math and the result record of one load run;
- ``payloads``: the request bodies (real MNIST test images, Pima records, PNG, V2 binary);
- ``loadgen``: a built-in async httpx load generator (used when wrk is missing);
- ``wrk``: the wrk driver (Lua script per request, percentiles from a ``done()`` hook);
- ``servers``: start, time, measure and stop the servers under test;
- ``floor_server`` / ``naive_server``: the two reference servers;
- ``report``: the markdown table and the goals;
- ``runtimes``: in-process per-call cost of each way to run the model;
- ``soak``: a bounded soak run with RSS sampled (`python -m benchmarks.soak`).
"""
