"""The package's shape, checked: the layers import only downwards, no module grows past ~400 lines, the
configuration table in the docs and ``gateway --help`` are the settings module's own, and nothing but the
settings module reads ``GATEWAY_*`` variables."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from click.testing import CliRunner

from gateway.cli.main import main
from gateway.settings import SETTINGS, markdown_table

PACKAGE = Path(__file__).resolve().parents[2] / "gateway"
DOCS = Path(__file__).resolve().parents[2] / "docs"

# Lower number = lower layer. A module may import its own layer or lower ones only.
LAYERS: dict[str, int] = {
    "errors": 0, "settings": 1, "logs": 1,
    "domain": 2,
    "routing": 3,
    "messages": 4,
    "oversikt": 4,  # pure computations over plain data: it imports nothing of the gateway
    "pipeline": 5,
    "store": 6,
    "delivery": 7,
    "standin": 7,
    "metrics": 7,
    "operations": 8,
    "console": 9, "cli": 9, "__main__": 10, "__init__": 10,
}


def _layer(module: str) -> tuple[str, int]:
    """``gateway.delivery.bus`` → ("delivery", 7)."""
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else "__init__"
    return top, LAYERS[top]


def _modules() -> list[tuple[str, Path]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "resources" in path.parts:
            continue
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        name = ".".join(rel.parts).removesuffix(".__init__")
        found.append((name, path))
    return found


def _imports(path: Path, module: str) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names if a.name.startswith("gateway")]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module.startswith("gateway"):
            out += [f"{node.module}.{a.name}" if node.module == "gateway" else node.module for a in node.names]
    return out


def test_every_module_has_a_layer() -> None:
    unknown = {name.split(".")[1] for name, _ in _modules() if "." in name} - set(LAYERS)
    assert unknown == set(), f"give these top-level modules/packages a layer in LAYERS: {unknown}"


@pytest.mark.parametrize(("module", "path"), _modules(), ids=lambda v: v if isinstance(v, str) else "")
def test_imports_point_down(module: str, path: Path) -> None:
    if module == "gateway":
        return
    own_top, own = _layer(module)
    for imported in _imports(path, module):
        if imported in ("gateway", "gateway.__version__"):
            continue
        top, level = _layer(imported)
        assert level <= own, f"{module} (layer {own_top}) imports {imported} (higher layer {top})"


def test_domain_and_oversikt_import_no_xml_and_no_io() -> None:
    forbidden = ("lxml", "kombu", "pika", "psycopg", "sqlite3", "httpx", "jinja2")
    for module, path in _modules():
        if module.split(".")[1:2] in (["domain"], ["oversikt"]):
            text = path.read_text(encoding="utf-8")
            for name in forbidden:
                assert f"import {name}" not in text and f"from {name}" not in text, f"{module} imports {name}"


@pytest.mark.parametrize(("module", "path"), _modules(), ids=lambda v: v if isinstance(v, str) else "")
def test_no_module_over_400_lines(module: str, path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= 420, f"{module} has {lines} lines; split it along a concern"


def test_only_the_settings_module_reads_gateway_variables() -> None:
    for module, path in _modules():
        if module == "gateway.settings":
            continue
        text = path.read_text(encoding="utf-8")
        for needle in ('environ.get("GATEWAY_', "environ['GATEWAY_", 'environ["GATEWAY_', 'getenv("GATEWAY_'):
            assert needle not in text, f"{module} reads a GATEWAY_ variable itself; add it to gateway.settings"


def test_help_lists_every_setting() -> None:
    text = CliRunner().invoke(main, ["--help"], terminal_width=200).output
    missing = [s.name for s in SETTINGS if s.name not in text]
    assert missing == []


def test_configuration_doc_is_generated_from_the_settings() -> None:
    doc = (DOCS / "configuration.md").read_text(encoding="utf-8")
    assert markdown_table() in doc, "regenerate it: python -m gateway.settings docs/configuration.md"
