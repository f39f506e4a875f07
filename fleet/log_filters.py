"""Logging filters that keep secrets out of every line the project's processes write.

The EV callback address ``/solax/callback/<secret>/`` is a credential: whoever knows it can post
results for an account's chargers. Django's request logger ("Not Found: /solax/callback/…"), the
development server and gunicorn's access log all print request paths, so :class:`MaskSecrets` rewrites
the rendered message (and a traceback, if any) of each record that passes a handler it is attached
to. It is attached to every handler in settings.LOGGING, in the gunicorn configuration
(fleet/gunicorn_conf.py) and to Celery's handlers (fleet/celery.py).

It also masks the password of any ``scheme://user:password@host`` URL (a broker or database URL in
an error message).
"""

from __future__ import annotations

import logging
import re

MASK = "…"
CALLBACK_PATH = re.compile(r"(/solax/callback/)[^/\s?#\"']+")
URL_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^/\s:@]*:)[^@\s/]+@", re.IGNORECASE)


def mask(text: str) -> str:
    """Return ``text`` with callback secrets and URL passwords replaced by an ellipsis."""
    if "/solax/callback/" in text:
        text = CALLBACK_PATH.sub(r"\1" + MASK, text)
    if "://" in text:
        text = URL_PASSWORD.sub(r"\1" + MASK + "@", text)
    return text


class MaskSecrets(logging.Filter):
    """Render the record's message once, masked, and keep it as a plain message without arguments.

    Never drops a record. A record that fails to render is left alone for logging's own error report.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - logging reports a bad format string itself
            return True
        masked = mask(message)
        if masked != message or record.args:
            record.msg, record.args = masked, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask(record.exc_text)
        # Django's request logger hands the request to handlers (mail_admins renders its path)
        request = getattr(record, "request", None)
        if request is not None and "/solax/callback/" in getattr(request, "path", ""):
            record.request = None
        return True


def install(handlers: list[logging.Handler]) -> None:
    """Attach one MaskSecrets to each of ``handlers`` that has none yet (Celery's, set up at start)."""
    for handler in handlers:
        if not any(isinstance(f, MaskSecrets) for f in handler.filters):
            handler.addFilter(MaskSecrets())


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
