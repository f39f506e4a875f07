"""Authentication: the one seam between the client and SolaX's credentials.

Today every request carries ``tokenId`` (query string or JSON body); SolaX is moving accounts to an
OAuth "developer API" with bearer tokens. Anything with ``apply`` and ``redact`` (the :class:`Auth`
protocol) can replace :class:`TokenAuth` without touching the client.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Protocol

from solax.errors import InvalidTokenError, redact_secrets

__all__ = ["Auth", "TokenAuth", "install_log_filter"]

_TOKEN = re.compile(r"\d{20,30}")


class Auth(Protocol):
    """The authentication seam: today a tokenId parameter, tomorrow SolaX's OAuth bearer tokens."""

    def apply(self, params: dict[str, Any], headers: dict[str, str]) -> None:
        """Add the credentials to a request's parameters or headers (in place)."""

    def redact(self, text: str) -> str:
        """Return ``text`` with every credential masked."""
        ...


class TokenAuth:
    """Adds ``tokenId`` (20-30 digits) to every request; its repr never shows the token.

    A malformed token raises InvalidTokenError (an AuthError and a ValueError) without echoing it.
    """

    __slots__ = ("_token",)

    def __init__(self, token: str) -> None:
        token = token.strip() if isinstance(token, str) else ""
        if not _TOKEN.fullmatch(token):
            # Deliberately silent about the value: this message may end up in a log.
            raise InvalidTokenError("the SolaX tokenId must be 20 to 30 digits")
        self._token = token

    def apply(self, params: dict[str, Any], headers: dict[str, str]) -> None:
        """Add ``tokenId`` to the parameters (query string or JSON body alike)."""
        params["tokenId"] = self._token

    def redact(self, text: str) -> str:
        """Return ``text`` with the token, and any token-looking parameter, masked."""
        return redact_secrets(text.replace(self._token, "***"))

    def __repr__(self) -> str:
        return "TokenAuth(tokenId=***)"

    __str__ = __repr__


class _RedactFilter(logging.Filter):
    """Masks tokens in urllib3's debug lines, which print request URLs with their query strings."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record must not break the request: keep its template only
            message = str(record.msg)
        record.msg, record.args = redact_secrets(message), None
        return True


def install_log_filter() -> None:
    """Mask token parameters in urllib3's debug log lines (installed once, by every client)."""
    logger = logging.getLogger("urllib3.connectionpool")
    if not any(isinstance(existing, _RedactFilter) for existing in logger.filters):
        logger.addFilter(_RedactFilter())
