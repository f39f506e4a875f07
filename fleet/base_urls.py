"""Where a SolaX token may be sent: only to base URLs under ``SOLAX_ALLOWED_BASE_URLS``.

An account's base URLs receive its token with every request, so an admin who could point them anywhere
could make the worker send the token (and requests) to any host, the project's own internals included.
The rule lives here once and is read by the model field validator (settings form, Django admin), the
settings loader (the configured prefixes themselves) and the dispatcher (refuse at send time a URL
that is no longer allowed).

Matching is on parsed components, never on text: scheme, host and port must be equal (a prefix may
say ``:*`` for any port, which only tests use) and the path must be the prefix's path or continue it
after a ``/``. A URL with a query, a fragment, a user name or password, a dot segment, an escape or a
backslash is refused whatever the prefixes say.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError

ANY_PORT = -1
DEFAULT_PORTS = {"http": 80, "https": 443}
_SEGMENT = re.compile(r"[A-Za-z0-9._~!$&'()*+,;=:-]+")  # RFC 3986 pchar without '%' and '@'


@dataclass(frozen=True)
class Place:
    """A base URL (or an allowed prefix) by its components; ``path`` has no trailing slash."""

    scheme: str
    host: str
    port: int  # ANY_PORT in a prefix that allows every port
    path: str

    def covers(self, url: Place) -> bool:
        """Return True when ``url`` lies under this prefix."""
        return (self.scheme == url.scheme and self.host == url.host
                and self.port in (ANY_PORT, url.port)
                and (url.path == self.path or url.path.startswith(self.path + "/")))


def parse(text: str, *, prefix: bool = False) -> Place:
    """Return the components of an http(s) URL, or raise ValueError saying what is wrong with it.
    ``prefix`` allows ``:*`` as the port."""
    if not isinstance(text, str) or not text:
        raise ValueError("enter a URL")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in text) or "\\" in text:
        raise ValueError("a URL has no spaces, control characters or backslashes")
    if "?" in text or "#" in text:
        raise ValueError("a base URL has no query (?) or fragment (#)")
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise ValueError("only http and https URLs")
    if "@" in parts.netloc:
        raise ValueError("a base URL has no user name or password")
    netloc = parts.netloc
    any_port = prefix and netloc.endswith(":*")
    if any_port:
        netloc = netloc[:-2]
    try:
        checked = urlsplit(f"{scheme}://{netloc}")
        host = (checked.hostname or "").lower()
        port = checked.port
    except ValueError:
        raise ValueError("the port must be a number from 1 to 65535")
    if not host:
        raise ValueError("the URL needs a host name")
    segments = parts.path.split("/")[1:]
    if segments and segments[-1] == "":
        segments = segments[:-1]  # one trailing slash is the same base URL
    for segment in segments:
        if segment in ("", ".", "..") or not _SEGMENT.fullmatch(segment):
            raise ValueError("the path may not contain empty, '.' or '..' segments or escapes (%)")
    return Place(scheme, host, ANY_PORT if any_port else (port or DEFAULT_PORTS[scheme]),
                 "".join("/" + s for s in segments))


def parse_allowed(prefixes: Iterable[str], *, debug: bool) -> list[str]:
    """Check the configured prefixes (https only unless ``debug``) and return them without their
    trailing slash. Raises ValueError naming the bad one."""
    checked = []
    for text in prefixes:
        text = text.strip().rstrip("/")
        if not text:
            continue
        try:
            place = parse(text, prefix=True)
        except ValueError as exc:
            raise ValueError(f"{text!r}: {exc}")
        if place.scheme != "https" and not debug:
            raise ValueError(f"{text!r}: only https outside DEBUG")
        checked.append(text)
    if not checked:
        raise ValueError("at least one URL prefix is needed")
    return checked


@functools.lru_cache(maxsize=8)
def _prefixes(allowed: tuple[str, ...]) -> tuple[Place, ...]:
    return tuple(parse(text, prefix=True) for text in allowed)


def problem(url: str) -> str | None:
    """Return why ``url`` may not receive a token, or None when it is allowed."""
    try:
        place = parse(url)
    except ValueError as exc:
        return str(exc)
    allowed = tuple(settings.SOLAX_ALLOWED_BASE_URLS)
    if any(prefix.covers(place) for prefix in _prefixes(allowed)):
        return None
    return "not an allowed SolaX base URL (allowed: " + ", ".join(allowed) + ")"


def validate_base_url(value: str) -> None:
    """Model field validator: raise ValidationError unless ``value`` is an allowed base URL."""
    reason = problem(value)
    if reason is not None:
        raise ValidationError(f"Refused: {reason}.", code="base_url_not_allowed")
