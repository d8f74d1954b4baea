"""Reliability tests reuse the service tests' tiny repository (built once per session)."""

from __future__ import annotations

from tests.service.conftest import anyio_backend, tiny_repo

__all__ = ["anyio_backend", "tiny_repo"]
