"""The import rules of docs/architecture.md: imports point down the layers, adapters are apart.

Every ``import`` of every module under ``service/`` is read (those under ``TYPE_CHECKING`` too: a
type-only import still ties the packages together) and checked against the layer order below.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SERVICE = Path(__file__).resolve().parents[2] / "service"

# Top to bottom: a package may import its own modules and those of any package below it.
LAYERS: list[set[str]] = [
    {"__main__"},
    {"app"},
    {"http"},
    {"observability"},
    {"api"},
    {"serving"},
    {"runtimes"},
    {"repository"},
    {"inputs"},
    {"codecs"},
    {"settings", "errors"},
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}
# The adapters of the api package: one per dialect (plus health and the page); they share
# helpers (common, routing, schemas, uploads) but never import each other.
ADAPTERS = {"own", "tfserving", "v2", "admin", "health", "ui", "operations"}


def _package(module: str) -> str:
    """``service.http.edge`` -> ``http``; ``service.settings`` -> ``settings``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "service"


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import of a ``service`` module in the file."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "service":
                found += [(node.lineno, f"service.{a.name}") for a in node.names]
            elif node.module.startswith("service."):
                found += [(node.lineno, node.module)]
                found += [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("service.")]
        elif isinstance(node, ast.ImportFrom) and node.level > 0:
            found.append((node.lineno, "<relative>"))
    return found


def _modules() -> list[Path]:
    return sorted(p for p in SERVICE.rglob("*.py") if "client" not in p.relative_to(SERVICE).parts)


def _own_package(path: Path, root: Path = SERVICE) -> str:
    return path.relative_to(root).with_suffix("").parts[0]


def violations(paths: list[Path], root: Path = SERVICE) -> list[str]:
    problems = []
    for path in paths:
        own = _own_package(path, root)
        if own == "__init__":
            continue
        for line, module in _imports(path):
            where = f"{path.relative_to(root.parent)}:{line}"
            if module == "<relative>":
                problems.append(f"{where}: relative import (use the absolute module)")
                continue
            target = _package(module)
            if target == "client":
                problems.append(f"{where}: the service imports the client ({module})")
            if target == own or target not in RANK or own not in RANK:
                continue
            if RANK[target] <= RANK[own]:
                problems.append(f"{where}: {own} imports from {target}, which is not below it")
        if own == "api" and path.stem in ADAPTERS:
            for line, module in _imports(path):
                parts = module.split(".")
                if len(parts) >= 3 and parts[1] == "api" and parts[2] in ADAPTERS - {path.stem}:
                    problems.append(
                        f"{path.relative_to(root.parent)}:{line}: adapter {path.stem} "
                        f"imports adapter {parts[2]}"
                    )
    return list(dict.fromkeys(problems))


def test_every_service_package_has_a_layer() -> None:
    packages = {_own_package(p) for p in _modules()} - {"__init__"}
    assert packages <= set(RANK), f"packages without a layer: {sorted(packages - set(RANK))}"


def test_imports_point_down_the_layers_and_adapters_stay_apart() -> None:
    assert violations(_modules()) == []


def test_the_client_stands_alone() -> None:
    for path in sorted((SERVICE / "client").rglob("*.py")):
        for line, module in _imports(path):
            assert module.startswith("service.client"), f"{path}:{line} imports {module}"


@pytest.mark.parametrize(
    ("package", "source", "expected"),
    [
        ("serving", "from service.http.limits import counted\n", "not below it"),
        ("codecs", "from service.inputs import arrays\n", "not below it"),
        ("serving", "import service.api.common\n", "not below it"),
        ("api", "from service.serving import inference\n", None),
    ],
)
def test_the_rule_catches_an_upward_import(
    tmp_path: Path, package: str, source: str, expected: str | None
) -> None:
    root = tmp_path / "service"
    (root / package).mkdir(parents=True)
    module = root / package / "mod.py"
    module.write_text(source)
    found = violations([module], root)
    if expected is None:
        assert found == []
    else:
        assert len(found) == 1 and expected in found[0]


def test_the_rule_catches_one_adapter_importing_another(tmp_path: Path) -> None:
    root = tmp_path / "service"
    (root / "api").mkdir(parents=True)
    module = root / "api" / "tfserving.py"
    module.write_text("from service.api.v2 import check\nfrom service.api.common import x\n")
    found = violations([module], root)
    assert len(found) == 1 and "adapter tfserving imports adapter v2" in found[0]
