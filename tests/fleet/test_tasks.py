"""The beat schedule names real tasks, and every service's call handlers are registered."""

from __future__ import annotations

import pytest
from django.conf import settings

from fleet.celery import app


@pytest.mark.parametrize("name", sorted(settings.CELERY_BEAT_SCHEDULE))
def test_every_beat_entry_names_a_registered_task_that_expires(name):
    entry = settings.CELERY_BEAT_SCHEDULE[name]
    app.loader.import_default_modules()
    assert entry["task"] in app.tasks, entry["task"]
    assert entry["options"]["expires"] <= max(entry["schedule"], 600)


def test_every_handler_declared_in_the_services_is_registered_at_start_up():
    """A call whose handler is not registered in the worker would lose its outcome's effect."""
    import re
    from pathlib import Path

    import fleet
    from fleet.pipeline import handlers

    source = Path(fleet.__file__).parent
    declared = {name for path in source.rglob("*.py")
                for name in re.findall(r'handlers\.register\("([^"]+)"\)', path.read_text())}
    assert len(declared) >= 10
    assert declared <= set(handlers._HANDLERS), declared - set(handlers._HANDLERS)
