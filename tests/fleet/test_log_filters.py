"""Ordinary 4xx answers log one line, not a traceback (fleet/log_filters.py)."""

from __future__ import annotations

import logging
import sys

import pytest

from fleet.log_filters import ClientErrorsWithoutTraceback

pytestmark = pytest.mark.django_db


def test_a_refused_permission_logs_a_line_without_traceback(viewer_client, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="django.request"):
        assert viewer_client.post("/groups/new/", {"name": "x"}).status_code == 403
        assert viewer_client.get("/groups/00000000-0000-0000-0000-000000000000/").status_code == 404
    records = [r for r in caplog.records if r.name == "django.request"]
    assert sorted(r.status_code for r in records) == [403, 404]  # type: ignore[attr-defined]
    assert all(r.exc_info is None for r in records)
    assert "Traceback" not in caplog.text


def test_a_server_error_keeps_its_traceback() -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        info = sys.exc_info()
    record = logging.LogRecord("django.request", logging.ERROR, __file__, 1, "Internal Server Error", (), info)
    record.status_code = 500
    assert ClientErrorsWithoutTraceback().filter(record) is True
    assert record.exc_info is info


def test_django_messages_print_once() -> None:
    """Only the root's handler prints: Django's own DEBUG console handler would print each line twice."""
    assert logging.getLogger("django").handlers == []
    assert logging.getLogger("django").propagate is True
    assert len(logging.getLogger().handlers) >= 1
