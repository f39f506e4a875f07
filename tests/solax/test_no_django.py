"""``solax/`` (the simulator included) must never import Django: it is the vendor SDK."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

SOLAX = Path(__file__).resolve().parents[2] / "solax"
TEXTUAL = re.compile(r"^\s*(?:import\s+django\b|from\s+django\b)|import_module\(\s*['\"]django", re.MULTILINE)


def _django_imports(path: Path) -> list[str]:
    source = path.read_text(encoding="utf-8")
    found = [match.group(0).strip() for match in TEXTUAL.finditer(source)]
    try:
        tree = ast.parse(source, filename=str(path))
    except SyntaxError:
        return found  # the textual check still applies to a file being edited
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if alias.name.split(".")[0] == "django"]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "django":
            found.append(f"from {node.module}")
    return found


def test_the_package_exists() -> None:
    assert (SOLAX / "__init__.py").is_file()
    assert len(list(SOLAX.rglob("*.py"))) >= 6


def test_no_module_under_solax_imports_django() -> None:
    offenders = {
        str(path.relative_to(SOLAX.parent)): imports
        for path in sorted(SOLAX.rglob("*.py"))
        if (imports := _django_imports(path))
    }
    assert offenders == {}


def test_importing_the_client_does_not_load_django() -> None:
    code = (
        "import sys\n"
        "import solax, solax.client, solax.control, solax.endpoints, solax.errors, solax.models, solax.parsing\n"
        "assert not [m for m in sys.modules if m.split('.')[0] == 'django'], 'django was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=SOLAX.parent, timeout=60)
