"""The dependency-audit wrapper tells "audited, clean", "findings" and "could not run" apart."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def load_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("audit_deps", ROOT / "tools" / "audit_deps.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_summarise_counts_only_audited_packages() -> None:
    tool = load_tool()
    skipped = {"name": "numpy", "skip_reason": "Dependency not found on PyPI"}
    clean = {"name": "orjson", "version": "3.13.0", "vulns": []}
    vulnerable = {
        "name": "pillow",
        "version": "1.0",
        "vulns": [{"id": "GHSA-test", "fix_versions": ["2.0"]}],
    }
    assert tool.summarise({"dependencies": [skipped, skipped]}) == (0, 2, [])
    assert tool.summarise({"dependencies": [clean, skipped]}) == (1, 1, [])
    audited, skipped_n, findings = tool.summarise({"dependencies": [clean, vulnerable]})
    assert (audited, skipped_n) == (2, 0)
    assert findings == ["pillow 1.0: GHSA-test (fixed in 2.0)"]


def test_unreachable_services_report_not_run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    tool = load_tool()
    monkeypatch.setattr(tool, "locked_requirements", lambda: "orjson==3.13.0\n")
    monkeypatch.setattr(tool, "run_audit", lambda requirements, service: None)
    assert tool.main() == 0
    assert "AUDIT NOT RUN" in capsys.readouterr().out
    monkeypatch.setenv("AUDIT_REQUIRED", "1")
    assert tool.main() == 2


def test_findings_fail(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    tool = load_tool()
    report = {"dependencies": [{"name": "x", "version": "1", "vulns": [{"id": "PYSEC-1"}]}]}
    monkeypatch.setattr(tool, "locked_requirements", lambda: "x==1\n")
    monkeypatch.setattr(tool, "run_audit", lambda requirements, service: report)
    assert tool.main() == 1
    assert "PYSEC-1" in capsys.readouterr().out
