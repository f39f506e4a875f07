"""The container descriptions name modules and files that exist."""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _compose_commands() -> dict[str, list[str]]:
    text = (ROOT / "docker" / "compose.yml").read_text()
    commands: dict[str, list[str]] = {}
    service = None
    for line in text.splitlines():
        header = re.match(r"^  (\w+):\s*$", line)
        if header:
            service = header.group(1)
        command = re.match(r"^\s+command:\s*(\[.*\])\s*$", line)
        if command and service:
            commands[service] = json.loads(command.group(1))
    return commands


def _assert_runs_real_code(argv: list[str]) -> None:
    joined = " ".join(argv)
    for target in re.findall(r"(\w[\w.]*):application", joined):
        module = importlib.import_module(target)
        assert hasattr(module, "application"), target
    if "celery" in argv:
        app_name = argv[argv.index("-A") + 1]
        module = importlib.import_module(app_name)
        assert hasattr(module, "celery_app"), app_name
    if "manage.py" in joined:
        assert (ROOT / "manage.py").exists()


def test_every_service_has_a_command_or_an_image():
    commands = _compose_commands()
    assert set(commands) == {"web", "worker", "beat"}
    text = (ROOT / "docker" / "compose.yml").read_text()
    assert "image: postgres" in text and "image: redis" in text


@pytest.mark.parametrize("service", ["web", "worker", "beat"])
def test_each_service_command_names_a_real_module(service):
    _assert_runs_real_code(_compose_commands()[service])


def test_the_dockerfile_runs_gunicorn_on_the_wsgi_module_as_non_root():
    text = (ROOT / "docker" / "Dockerfile").read_text()
    cmd = json.loads(re.search(r"^CMD (\[.*\])$", text, re.M).group(1))  # type: ignore[union-attr]
    assert cmd[0] == "gunicorn"
    _assert_runs_real_code(cmd)
    assert re.search(r"^USER (?!root)\w+", text, re.M)
    assert "-slim" in text


def test_the_installed_package_includes_every_subpackage():
    """The image installs the project with `pip install .`: every package must be found."""
    import fnmatch
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    packages = [
        ".".join(init.parent.relative_to(ROOT).parts)
        for top in ("fleet", "solax") for init in (ROOT / top).rglob("__init__.py")
    ]
    assert "fleet.management.commands" in packages and "solax.simulator" in packages
    missing = [p for p in packages if not any(fnmatch.fnmatch(p, pattern) for pattern in config["include"])]
    assert missing == []
