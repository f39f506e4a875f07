from __future__ import annotations

import pytest
from django.core.management import call_command

from fleet.pipeline import queue
from tests.conftest import TOKEN

pytestmark = pytest.mark.django_db


def test_queue_prints_the_queue_without_the_token(sim_account, capsys):
    queue.enqueue(sim_account, "group_add", {"name": "Queued"}, purpose="create group Queued")
    call_command("queue")
    out = capsys.readouterr().out
    assert "management write 1" in out
    assert "create group Queued" in out
    assert TOKEN not in out and "••••" in out


def test_pump_drains_without_a_worker(sim_account, capsys):
    for name in ("A", "B"):
        queue.enqueue(sim_account, "group_add", {"name": name})
    call_command("pump")
    assert "Sent 2 call(s)." in capsys.readouterr().out
