"""Logging filters named in settings.LOGGING."""

from __future__ import annotations

import logging


class ClientErrorsWithoutTraceback(logging.Filter):
    """Keep django.request's line for a 4xx answer but drop its traceback.

    Django logs a refused permission (403) or a bad request (400) with the exception's traceback, so an
    ordinary "viewers cannot do that" fills the log like a crash. A 5xx keeps its traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if isinstance(status, int) and 400 <= status < 500:
            record.exc_info = None
            record.exc_text = None
        return True
