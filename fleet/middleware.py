"""Request hygiene before any view runs, and response headers after.

``RejectMalformedInput`` answers 400 to input no view could store or even parse: a NUL character in
the path, the query string or a form field (PostgreSQL refuses NUL in text, so a search for it was
a 500 there), and a Content-Length that is not a non-negative whole number (Django's own
``request.body`` raises ValueError on it); and 414 to a query string longer than MAX_QUERY_STRING
(no page takes more than a few hundred characters, and SQLite refuses LIKE patterns over 50,000
bytes, so a 1 MB search in Django admin was a 500). One check here instead of one per view.

``NoStoreForAuthenticated`` adds ``Cache-Control: private, no-store`` to every response to a
logged-in user, so a shared proxy or the browser's back button never shows one operator's fleet to
the next person at that machine. Static files are served by WhiteNoise before this runs.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.cache import patch_cache_control

NUL = "\x00"
#: Longest query string served, in bytes: the common limit of web servers and proxies (nginx: 8 KB).
MAX_QUERY_STRING = 8192
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _has_nul(data: object) -> bool:
    """Return True when a QueryDict's keys or values contain NUL."""
    for key, values in data.lists():  # type: ignore[attr-defined]
        if NUL in key or any(isinstance(value, str) and NUL in value for value in values):
            return True
    return False


def malformed_reason(request: HttpRequest) -> tuple[int, str] | None:
    """Return the status and the reason a request is refused before routing, or None when it may go on."""
    if len(request.META.get("QUERY_STRING", "")) > MAX_QUERY_STRING:
        return 414, f"The query string is longer than {MAX_QUERY_STRING} bytes."
    if NUL in request.path_info:
        return 400, "The address contains a NUL character."
    raw_length = request.META.get("CONTENT_LENGTH") or ""
    if raw_length and not (raw_length.strip().isascii() and raw_length.strip().isdigit()):  # "²".isdigit()
        return 400, "The Content-Length header is not a whole number."
    if _has_nul(request.GET):
        return 400, "A query parameter contains a NUL character."
    if request.method == "POST" and request.content_type in FORM_TYPES and _has_nul(request.POST):
        return 400, "A form field contains a NUL character."
    return None


class RejectMalformedInput:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        refusal = malformed_reason(request)
        if refusal is not None:
            status, reason = refusal
            response = HttpResponse(reason, status=status, content_type="text/plain; charset=utf-8")
            # the path may be a secret callback address: django.request must not log it
            response._has_been_logged = True  # type: ignore[attr-defined]
            return response
        return self.get_response(request)


class NoStoreForAuthenticated:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            patch_cache_control(response, private=True, no_store=True)
        return response


class ResetZone:
    """End the zone a request activated (fleet.accounts.access.activate_zone): a worker thread's next
    request starts in TIME_ZONE, not in the previous person's zone."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        timezone.deactivate()
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
