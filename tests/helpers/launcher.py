"""Test launcher: ``python -m service`` with every inference call slowed by RELIABILITY_SLOW_MS.

Only the tests use this, to keep requests in flight (shutdown) or queues full (overload) with the
tiny test models, which otherwise answer in microseconds.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from service.__main__ import main
from service.runtimes import base as runtime

SLOW_S = float(os.environ.get("RELIABILITY_SLOW_MS", "0")) / 1000.0
_predict = runtime.ModelRuntime.predict


def _slow_predict(self: runtime.ModelRuntime, x):  # type: ignore[no-untyped-def]
    time.sleep(SLOW_S)
    return _predict(self, x)


runtime.ModelRuntime.predict = _slow_predict  # type: ignore[method-assign]

if __name__ == "__main__":
    main()
