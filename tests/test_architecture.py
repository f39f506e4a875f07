"""The house rules that the import contracts (`make lint`) do not see."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from fleet.models import ApiCall, Priority
from fleet.models.calls import default_priority
from solax.endpoints import ENDPOINTS

ROOT = Path(__file__).resolve().parents[1]


def _imports_inside_functions(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for inner in ast.walk(node):
                if isinstance(inner, ast.Import | ast.ImportFrom):
                    found.append(f"{path.relative_to(ROOT)}:{inner.lineno} in {node.name}()")
    return found


def test_no_module_in_fleet_imports_inside_a_function():
    """An import inside a function hides a dependency (and usually a cycle) from the contracts.
    The one exception is AppConfig.ready, Django's place for importing what registers itself."""
    sources = [p for p in (ROOT / "fleet").rglob("*.py") if "migrations" not in p.parts]
    found = [hit for path in sources for hit in _imports_inside_functions(path)
             if not hit.startswith("fleet/apps.py:")]
    assert found == []


def test_the_checker_finds_an_import_inside_a_function():
    module = ROOT / "tests" / "_probe_for_the_checker.py"
    module.write_text("def f():\n    import os\n    return os\n")
    try:
        assert _imports_inside_functions(module) == ["tests/_probe_for_the_checker.py:2 in f()"]
    finally:
        module.unlink()


# One truth per rule: what each endpoint does is declared in solax.endpoints -------------------

EXPECTED_KINDS = {
    "control": {"single_control", "batch_control", "group_control", "pile_cmd"},
    "management": {"group_add", "group_update", "group_delete", "group_delete_batch", "inverter_add",
                   "inverter_delete", "inverter_delete_batch", "inverter_update", "bind_devices"},
    "poll": {"query_command", "query_result"},
    "read": {"group_query", "group_fuzzy_query", "inverter_query", "inverter_fuzzy_query", "pile_info"},
}
PRIORITY = {"control": Priority.CONTROL, "management": Priority.MANAGEMENT, "poll": Priority.POLL,
            "read": Priority.READ}


@pytest.mark.parametrize("name", sorted(ENDPOINTS))
def test_every_endpoint_declares_its_class_and_the_pipeline_follows_it(name):
    kind = next(k for k, names in EXPECTED_KINDS.items() if name in names)
    endpoint = ENDPOINTS[name]
    assert endpoint.kind == kind
    assert endpoint.write is (kind in ("control", "management"))
    assert ApiCall(endpoint=name).is_write is endpoint.write
    assert default_priority(name) == PRIORITY[kind]


def test_the_expected_classes_cover_every_endpoint():
    assert set().union(*EXPECTED_KINDS.values()) == set(ENDPOINTS)
