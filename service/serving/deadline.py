"""Who keeps a request's deadline: the HTTP edge, or the prediction path itself."""

from __future__ import annotations

from contextvars import ContextVar

# True inside a request whose deadline the edge enforces: the batcher then needs no timer of its
# own for it (one timer per request instead of two; the edge's fires first anyway).
EDGE_DEADLINE: ContextVar[bool] = ContextVar("edge_deadline", default=False)
