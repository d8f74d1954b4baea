"""Audit the locked dependencies with pip-audit, and say clearly when the audit could not run.

``requirements-dev.lock`` holds the exact locked set (runtime and dev extra); pip-audit checks each
pin against a vulnerability service, first PyPI's, then OSV. On machines that reach packages only
through a mirror, the PyPI JSON API answers "not found" for every package and OSV is unreachable:
pip-audit then prints "No known vulnerabilities found" although it audited nothing. This wrapper
counts what was really audited and reports one of:

- ``AUDIT OK``: every package audited, no known vulnerability (exit 0);
- ``AUDIT FOUND VULNERABILITIES``: the table of findings (exit 1);
- ``AUDIT NOT RUN``: no vulnerability service answered (exit 0, or 2 with ``AUDIT_REQUIRED=1``).

Known, reviewed findings can be ignored with ``AUDIT_IGNORE="GHSA-xxx PYSEC-yyy"`` (see
docs/security.md for the list and the reasons).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PIP_AUDIT = ROOT / ".venv" / "bin" / "pip-audit"
SERVICES = ("pypi", "osv")
TIMEOUT_S = 300


def locked_requirements() -> str:
    """The pinned set the project installs: runtime plus the dev extra."""
    return (ROOT / "requirements-dev.lock").read_text()


def run_audit(requirements: Path, service: str) -> dict[str, Any] | None:
    """pip-audit's JSON report, or None when the service could not be used at all."""
    cmd = [str(PIP_AUDIT), "-r", str(requirements), "--no-deps", "--disable-pip"]
    cmd += ["-s", service, "-f", "json", "--progress-spinner", "off"]
    for vuln in os.environ.get("AUDIT_IGNORE", "").split():
        cmd += ["--ignore-vuln", vuln]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        print(f"pip-audit ({service}): timed out after {TIMEOUT_S} s")
        return None
    try:
        report: dict[str, Any] = json.loads(proc.stdout)
    except ValueError:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        print(f"pip-audit ({service}): could not reach the service: {last[:200]}")
        return None
    return report


def summarise(report: dict[str, Any]) -> tuple[int, int, list[str]]:
    """(audited, skipped, findings) of a pip-audit JSON report."""
    deps = report.get("dependencies", [])
    audited = [d for d in deps if "skip_reason" not in d]
    findings = []
    for dep in audited:
        for vuln in dep.get("vulns", []):
            fixed = ", ".join(vuln.get("fix_versions", [])) or "no release"
            name = f"{dep['name']} {dep.get('version', '?')}"
            findings.append(f"{name}: {vuln['id']} (fixed in {fixed})")
    return len(audited), len(deps) - len(audited), findings


def main() -> int:
    required = os.environ.get("AUDIT_REQUIRED") == "1"
    with tempfile.TemporaryDirectory() as tmp:
        requirements = Path(tmp) / "requirements.txt"
        requirements.write_text(locked_requirements())
        for service in SERVICES:
            report = run_audit(requirements, service)
            if report is None:
                continue
            audited, skipped, findings = summarise(report)
            if audited == 0:
                print(f"pip-audit ({service}): no package could be looked up ({skipped} skipped)")
                continue
            if findings:
                print(f"AUDIT FOUND VULNERABILITIES ({service}, {audited} packages audited):")
                for line in findings:
                    print(f"  {line}")
                return 1
            note = f", {skipped} not found by the service" if skipped else ""
            print(f"AUDIT OK ({service}): {audited} locked packages, no known vulnerability{note}")
            return 0
    print(
        "AUDIT NOT RUN: no vulnerability service (PyPI JSON API, OSV) could be reached from this "
        "machine, so the locked dependencies were not checked. Run `make audit` where one is "
        "reachable; see docs/security.md."
    )
    return 2 if required else 0


if __name__ == "__main__":
    sys.exit(main())
