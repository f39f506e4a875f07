"""The SolaX client's error tree.

Every failure of a request surfaces as a :class:`SolaxError` subclass carrying the HTTP status, the
vendor ``code`` and a bounded copy of the response body. ``may_have_reached_cloud`` tells the call
pipeline whether a write could have taken effect (never resend it automatically) or provably did not
(safe to retry). Messages, bodies and URLs are scrubbed of tokens before they are stored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import ClassVar

__all__ = [
    "ApiError",
    "AuthError",
    "ControlValidationError",
    "HTTPStatusError",
    "InvalidTokenError",
    "ListTooLongError",
    "NotSentError",
    "RateLimitedError",
    "RequestValidationError",
    "ResponseParseError",
    "SolaxError",
    "SolaxTimeout",
    "TransportError",
    "bound_text",
    "error_for_vendor_failure",
    "in_operator_words",
    "redact_secrets",
]

#: Longest body kept on an error (characters); enough to diagnose, small enough to store in a ledger.
MAX_ERROR_BODY_CHARS = 4096

# Query-string or JSON token parameters, whatever the value; the client also replaces the exact token.
_QUERY_SECRET = re.compile(r"(?i)\b(tokenId|token|access_token|client_secret)=([^&\s'\"#]+)")
_JSON_SECRET = re.compile(r"(?i)(['\"](?:tokenId|token|access_token|client_secret)['\"]\s*:\s*)(['\"])[^'\"]*\2")


def redact_secrets(text: str) -> str:
    """Return ``text`` with the values of token parameters (``tokenId=...``, ``"tokenId": "..."``) masked."""
    text = _QUERY_SECRET.sub(r"\1=***", text)
    return _JSON_SECRET.sub(r"\1\2***\2", text)


def bound_text(text: str, limit: int) -> str:
    """Return ``text`` cut to ``limit`` characters, with a marker saying how much was dropped."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}...[{len(text) - limit} more characters]"


class SolaxError(Exception):
    """Base of every error raised by ``solax``; ``status``, ``code`` (str) and ``body`` may be None."""

    #: Conservative default: unless a subclass knows better, assume the request may have had an effect.
    reached_cloud: ClassVar[bool] = True

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | int | None = None,
        body: str | None = None,
        endpoint: str | None = None,
    ) -> None:
        self.message = redact_secrets(message)
        super().__init__(self.message)
        self.status = status
        self.code = None if code is None else str(code)
        self.body = None if body is None else redact_secrets(bound_text(body, MAX_ERROR_BODY_CHARS))
        self.endpoint = endpoint

    @property
    def may_have_reached_cloud(self) -> bool:
        """Return True when the request may have been received (and acted on) by SolaX Cloud."""
        return self.reached_cloud

    def __str__(self) -> str:
        pairs = (("status", self.status), ("code", self.code))
        details = [f"{name}={value}" for name, value in pairs if value is not None]
        prefix = f"{self.endpoint}: " if self.endpoint else ""
        return prefix + self.message + (f" ({', '.join(details)})" if details else "")

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(message={self.message!r}, endpoint={self.endpoint!r}, "
            f"status={self.status!r}, code={self.code!r})"
        )


class NotSentError(SolaxError):
    """The request never left: connection refused, DNS failure, connect timeout, invalid URL."""

    reached_cloud = False


class SolaxTimeout(SolaxError):
    """No answer within the read timeout after the request was sent; it may have been executed."""


class TransportError(SolaxError):
    """The connection broke after the request was sent (reset, aborted, truncated answer)."""


class HTTPStatusError(SolaxError):
    """The cloud (or a proxy in front of it) answered with a non-2xx status; ``status`` is set."""


class ResponseParseError(SolaxError):
    """A 2xx answer that is not an understandable SolaX envelope; ``body`` holds the raw text."""


class AuthError(SolaxError):
    """The token was refused: 103 "token invalid!", 1001 "Interface Unauthorized", 1003 "no auth!"."""

    reached_cloud = False


class InvalidTokenError(AuthError, ValueError):
    """The token is malformed (not 20-30 digits): refused by the client itself, nothing was sent."""


class RateLimitedError(SolaxError):
    """The account is over its call budget; wait ``retry_after`` seconds (an hour when ``lockout``)."""

    reached_cloud = False

    def __init__(
        self,
        message: str,
        *,
        lockout: bool,
        retry_after: int,
        status: int | None = None,
        code: str | int | None = None,
        body: str | None = None,
        endpoint: str | None = None,
    ) -> None:
        super().__init__(message, status=status, code=code, body=body, endpoint=endpoint)
        self.lockout = lockout
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return f"{super().__repr__()[:-1]}, lockout={self.lockout!r}, retry_after={self.retry_after!r})"


class ApiError(SolaxError):
    """The cloud answered ``success: false``; ``message`` is the vendor's exception text."""

    reached_cloud = False


class ListTooLongError(ApiError):
    """The cloud refused a list parameter (``snList``) as too long: a definite ``success: false`` answer,
    so nothing executed (NOTES.md: batchTempControl states no maximum; a refusal for length executed
    nothing and may be split and resent). ``limit`` is the maximum the answer named, if any.

    Recognised by the answer's text: "The number of snList cannot exceed 100" (the shape of the cloud's
    other parameter errors, code 1002), "snList too long", "too many SNs"."""

    reached_cloud = False

    def __init__(self, message: str, *, limit: int | None = None, **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.limit = limit


class RequestValidationError(SolaxError):
    """A request was refused before any HTTP; ``errors`` maps each bad field to what is wrong with it."""

    reached_cloud = False

    def __init__(self, errors: Mapping[str, str], message: str | None = None) -> None:
        self.errors = dict(errors)
        summary = "; ".join(f"{field}: {problem}" for field, problem in self.errors.items())
        super().__init__(message or f"invalid request: {summary}")


class ControlValidationError(RequestValidationError):
    """A control command (inverter or EV charger) failed validation; nothing was sent."""


# Vendor codes and message fragments, from public integrations (see solax-api/NOTES.md).
_MINUTE_LIMIT_CODES = frozenset({"3", "104"})
_AUTH_CODES = frozenset({"103", "1001", "1003"})
_AUTH_TEXTS = ("token invalid", "interface unauthorized", "no auth")
_LOCKOUT_TEXTS = ("several violations", "prohibit calls within the next hour")
_MINUTE_TEXTS = ("within the current minute",)
_LIST_TOO_LONG = re.compile(r"(?i)\b(?:snlist|sns|sn list|list)\b[^.]*?(?:cannot exceed|too long|exceeds?)\D*(\d+)?"
                            r"|too many (?:sns|serial numbers)\D*(\d+)?")


def error_for_vendor_failure(
    message: str | None,
    code: str | int | None,
    *,
    status: int | None = None,
    body: str | None = None,
    endpoint: str | None = None,
) -> SolaxError:
    """Return the error for a ``success: false`` answer, chosen by vendor code and message text.

    Rate limits win over everything (a lockout pauses the whole account for an hour), then
    authentication, then a plain :class:`ApiError` with the vendor's text.
    """
    text = (message or "").strip() or "the cloud answered success=false without a message"
    lowered = text.lower()
    code_str = None if code is None else str(code).strip()
    if any(fragment in lowered for fragment in _LOCKOUT_TEXTS):
        return RateLimitedError(
            text, lockout=True, retry_after=3600, status=status, code=code_str, body=body, endpoint=endpoint
        )
    if code_str in _MINUTE_LIMIT_CODES or any(fragment in lowered for fragment in _MINUTE_TEXTS):
        return RateLimitedError(
            text, lockout=False, retry_after=60, status=status, code=code_str, body=body, endpoint=endpoint
        )
    too_long = _LIST_TOO_LONG.search(text)
    if too_long and code_str not in _AUTH_CODES:
        digits = too_long.group(1) or too_long.group(2)
        return ListTooLongError(text, limit=int(digits) if digits else None, status=status, code=code_str,
                                body=body, endpoint=endpoint)
    kind = AuthError if code_str in _AUTH_CODES or any(f in lowered for f in _AUTH_TEXTS) else ApiError
    return kind(text, status=status, code=code_str, body=body, endpoint=endpoint)


# What an operator reads for a failure, in one place. A stored error is "<ErrorClass>: <endpoint>:
# <message> (status=..., code=...)" (fleet/calls.py) or the vendor's bare text; the vendor's words
# are matched first (lowercase fragments), then the error class.
_VENDOR_WORDS: tuple[tuple[str, str], ...] = (
    ("no auth", "SolaX does not know this serial number or it belongs to another account"),
    ("token invalid", "SolaX refused the account's token; an admin must check it in Settings"),
    ("interface unauthorized", "SolaX does not let this account use the API; ask SolaX to enable it"),
    ("several violations", "SolaX locked the account for an hour after repeated calls over its limit"),
    ("prohibit calls within the next hour", "SolaX locked the account for an hour after repeated calls over its limit"),
    ("within the current minute", "SolaX's limit of calls a minute was reached; the call waits and goes again"),
    ("cannot exceed", "SolaX refused the list as too long; nothing was executed, so it is sent again in halves"),
    ("the group name already exists", "SolaX already has a group with this name"),
    ("the inverter already exists in a group", "This inverter is already in a group in SolaX"),
    ("the inverter id does not exist", "SolaX no longer has this group member; a sync will refresh the list"),
    ("the group does not exist", "SolaX no longer has this group; a sync will refresh the list"),
    ("the task does not exist", "SolaX no longer knows this command's task"),
    ("the command does not exist", "SolaX no longer knows this command"),
)
_CLASS_WORDS: dict[str, str] = {
    "SolaxTimeout": "SolaX did not answer in time; delivery unknown",
    "TransportError": "The connection to SolaX broke after the request was sent; delivery unknown",
    "NotSentError": "SolaX could not be reached; nothing was sent",
    "HTTPStatusError": "SolaX answered with an HTTP error instead of a result",
    "ResponseParseError": "SolaX's answer could not be read",
    "RateLimitedError": "SolaX's call limit was reached; the call waits and goes again",
    "InvalidTokenError": "The account's token is not a SolaX token (20 to 30 digits); an admin must fix it in Settings",
    "AuthError": "SolaX refused the account's token; an admin must check it in Settings",
}
_UNEXPECTED = "unexpected failure: "


def in_operator_words(text: str) -> str | None:
    """Return what `text` (a stored call error or a vendor message) means for an operator, or None
    when it is not a known failure (then show the text itself)."""
    lowered = text.lower()
    for fragment, words in _VENDOR_WORDS:
        if fragment in lowered:
            return words
    kind = text.split(":", 1)[0].strip() if ":" in text else ""
    if kind in _CLASS_WORDS:
        words = _CLASS_WORDS[kind]
        status = re.search(r"\bstatus=(\d{3})\b", text)
        if kind == "HTTPStatusError" and status:
            words = f"SolaX answered HTTP {status.group(1)} instead of a result"
        return words
    if _UNEXPECTED in text:
        return "solax-fleet failed while sending (a bug); the worker's log has the details"
    return None
