"""HTTP client of the SolaX Cloud VPP control API and EV charger API.

One method per endpoint (their docstrings name the vendor document section), all built on
:meth:`SolaxClient.call`, which the call pipeline uses directly with parameters it stored earlier.
Every request has a connect and a read timeout, is never retried here (writes are at most once; the
caller decides), and failures surface as the :mod:`solax.errors` tree. The token lives in one
:class:`TokenAuth` object and never reaches a log line, an exception or a repr.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError, ReadTimeoutError

from solax import endpoints as ep
from solax.auth import Auth, TokenAuth, install_log_filter
from solax.control import PileMode
from solax.endpoints import ENDPOINTS, Endpoint
from solax.errors import (
    HTTPStatusError,
    NotSentError,
    RequestValidationError,
    ResponseParseError,
    SolaxError,
    SolaxTimeout,
    TransportError,
    bound_text,
    error_for_vendor_failure,
)
from solax.models import BindResult, Envelope, Group, Member, Page, PileInfo
from solax.parsing import parse_envelope

__all__ = ["DEFAULT_EV_BASE_URL", "DEFAULT_VPP_BASE_URL", "ENDPOINTS", "Auth", "SolaxClient", "TokenAuth"]

DEFAULT_VPP_BASE_URL = "https://www.solaxcloud.com:9443/proxy"
DEFAULT_EV_BASE_URL = "https://www.solaxcloud.com/proxyApp/proxy/api"
MAX_BODY_BYTES = 2 * 1024 * 1024  # a page of members is tens of kB; more is not a SolaX answer

T = TypeVar("T")
log = logging.getLogger("solax")

_NOT_SENT = (ConnectTimeoutError, NewConnectionError, ConnectionRefusedError, socket.gaierror)
_NOT_SENT_REQUESTS = (
    requests.exceptions.ConnectTimeout,
    requests.exceptions.InvalidURL,
    requests.exceptions.MissingSchema,
    requests.exceptions.InvalidSchema,
    requests.exceptions.InvalidHeader,
    requests.exceptions.URLRequired,
)


_TRANSPORT_WORDS: dict[type[SolaxError], str] = {
    NotSentError: "not sent",
    SolaxTimeout: "no answer within the read timeout after sending",
}


def _base_url(value: str, which: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{which} must be an http(s) URL")
    return value.rstrip("/")


def _wire(endpoint: Endpoint, params: Mapping[str, object] | None) -> dict[str, Any]:
    """Return the parameters as sent: strings, lists joined by commas except in JSON, None dropped."""
    wire: dict[str, Any] = {}
    for key, value in (params or {}).items():
        if key.lower() in ("tokenid", "token"):
            raise RequestValidationError({key: "the client adds the token; never pass it"})
        if value is None:
            continue
        if isinstance(value, bool):
            raise RequestValidationError({key: "booleans are ambiguous here; pass 0/1"})
        if isinstance(value, (list, tuple)):
            items = [str(item) for item in value]
            wire[key] = items if endpoint.placement == "json" else ",".join(items)
        else:
            wire[key] = str(value)
    return wire


def _causes(exc: BaseException) -> Iterable[BaseException]:
    """Yield ``exc`` and everything it wraps (args, ``reason``, cause, context), each once."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending and len(seen) < 20:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        linked = [*current.args, getattr(current, "reason", None), current.__cause__, current.__context__]
        pending.extend(item for item in linked if isinstance(item, BaseException))


def _transport_error_class(exc: BaseException) -> type[SolaxError]:
    """Return which error a requests/socket failure is: never sent, timed out after sending, or broken."""
    if isinstance(exc, _NOT_SENT_REQUESTS):
        return NotSentError
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return SolaxTimeout
    chain = list(_causes(exc))
    if any(isinstance(cause, _NOT_SENT) for cause in chain):
        return NotSentError
    # requests raises ConnectionError, not ReadTimeout, for a timeout while reading the body.
    if any(isinstance(cause, (ReadTimeoutError, TimeoutError)) for cause in chain):
        return SolaxTimeout
    return TransportError


class SolaxClient:
    """A SolaX Cloud account: ``call(name, params)`` plus one typed method per endpoint.

    Pass ``token`` (or ``auth`` for another scheme). Base URLs default to the vendor's. A ``session``
    you pass is used as is and must not retry (urllib3 ``Retry``): writes go out at most once.
    """

    def __init__(
        self,
        token: str | None = None,
        *,
        vpp_base_url: str = DEFAULT_VPP_BASE_URL,
        ev_base_url: str = DEFAULT_EV_BASE_URL,
        connect_timeout: float = 5.0,
        read_timeout: float = 20.0,
        session: requests.Session | None = None,
        auth: Auth | None = None,
        endpoints: Mapping[str, Endpoint] | None = None,
    ) -> None:
        if (token is None) == (auth is None):
            raise ValueError("pass exactly one of token and auth")
        self._auth: Auth = auth if auth is not None else TokenAuth(token or "")
        self._bases = {
            "vpp": _base_url(vpp_base_url, "vpp_base_url"),
            "ev": _base_url(ev_base_url, "ev_base_url"),
        }
        if not (connect_timeout > 0 and read_timeout > 0):
            raise ValueError("timeouts must be positive seconds")
        self._timeout = (float(connect_timeout), float(read_timeout))
        self._own_session = session is None
        self._session = session if session is not None else requests.Session()
        self._endpoints = dict(endpoints if endpoints is not None else ENDPOINTS)
        install_log_filter()

    def __repr__(self) -> str:
        return f"SolaxClient(vpp_base_url={self._bases['vpp']!r}, ev_base_url={self._bases['ev']!r}, token=***)"

    __str__ = __repr__

    def close(self) -> None:
        """Close the HTTP session if this client created it."""
        if self._own_session:
            self._session.close()

    def __enter__(self) -> SolaxClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- the generic call -------------------------------------------------------------------------

    def call(self, name: str, params: Mapping[str, object] | None = None) -> Envelope:
        """Send one request to endpoint ``name`` and return its Envelope (``success`` is true).

        ``params`` are the vendor's names without the token (see the ``solax.endpoints`` builders).
        Raises a SolaxError subclass: NotSentError, SolaxTimeout, TransportError, HTTPStatusError,
        ResponseParseError, AuthError, RateLimitedError, ApiError, RequestValidationError.
        """
        endpoint = self._endpoints.get(name)
        if endpoint is None:
            raise RequestValidationError({"endpoint": f"unknown endpoint {name!r}"})
        wire = _wire(endpoint, params)
        headers = {"Accept": "application/json"}
        self._auth.apply(wire, headers)
        started = time.monotonic()
        status, text = self._send(endpoint, wire, headers)
        elapsed_ms = (time.monotonic() - started) * 1000
        log.debug("solax %s -> HTTP %s in %.0f ms", name, status, elapsed_ms)
        return self._envelope(endpoint, status, text)

    def _send(self, endpoint: Endpoint, wire: dict[str, Any], headers: dict[str, str]) -> tuple[int, str]:
        """Return the status and body text of one HTTP exchange; raise the transport errors."""
        url = self._bases[endpoint.base] + endpoint.path
        failure: SolaxError | None = None
        try:
            response = self._session.request(
                endpoint.method,
                url,
                params=wire if endpoint.placement == "query" else None,
                data=wire if endpoint.placement == "form" else None,
                json=wire if endpoint.placement == "json" else None,
                headers=headers,
                timeout=self._timeout,
                allow_redirects=False,  # a redirected POST could be replayed as something else
                stream=True,
            )
            try:
                body, complete = self._read(response)
            finally:
                response.close()
        except Exception as exc:  # whatever broke, the caller gets a token-free SolaxError
            failure = self._transport_failure(endpoint, exc)
        # Raised outside the except block so that no __context__ drags the token-bearing URL along.
        if failure is not None:
            raise failure
        status, text = response.status_code, body.decode("utf-8", errors="replace")
        if not 200 <= status < 300:
            raise HTTPStatusError(f"HTTP {status}", status=status, body=self._auth.redact(text), endpoint=endpoint.name)
        if not complete:
            raise ResponseParseError(
                f"answer larger than {MAX_BODY_BYTES} bytes",
                status=status,
                body=self._auth.redact(text),
                endpoint=endpoint.name,
            )
        return status, text

    @staticmethod
    def _read(response: requests.Response) -> tuple[bytes, bool]:
        """Return the body (at most MAX_BODY_BYTES) and whether it was read completely."""
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_content(chunk_size=65536):
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                return b"".join(chunks), False
            chunks.append(chunk)
        return b"".join(chunks), True

    def _transport_failure(self, endpoint: Endpoint, exc: Exception) -> SolaxError:
        # requests' exceptions are OSErrors; anything else is unexpected, hence "may have been sent".
        kind = _transport_error_class(exc) if isinstance(exc, OSError) else TransportError
        what = _TRANSPORT_WORDS.get(kind, "connection broke after sending")
        detail = bound_text(self._auth.redact(f"{type(exc).__name__}: {exc}"), 500)
        log.warning("solax %s: %s: %s", endpoint.name, what, detail)
        return kind(f"{what}: {detail}", endpoint=endpoint.name)

    def _envelope(self, endpoint: Endpoint, status: int, text: str) -> Envelope:
        """Return the parsed answer; raise ResponseParseError or the vendor error for success=false."""
        failure: SolaxError | None = None
        try:
            envelope = parse_envelope(text, status=status)
        except ResponseParseError as exc:
            failure = ResponseParseError(
                self._auth.redact(exc.message),
                status=status,
                body=self._auth.redact(text),
                endpoint=endpoint.name,
            )
        if failure is not None:
            raise failure
        if envelope.success:
            return envelope
        message = envelope.exception or (envelope.result if isinstance(envelope.result, str) else None)
        error = error_for_vendor_failure(
            self._auth.redact(message or ""),
            envelope.code,
            status=status,
            body=self._auth.redact(envelope.raw),
            endpoint=endpoint.name,
        )
        log.info("solax %s refused: %s", endpoint.name, error)
        raise error

    def _typed(self, name: str, params: dict[str, Any], reader: Callable[[Envelope], T]) -> T:
        """Return ``reader`` applied to the answer of ``call(name, params)``; shape errors carry the body."""
        envelope = self.call(name, params)
        failure: SolaxError | None = None
        try:
            return reader(envelope)
        except ResponseParseError as exc:
            failure = ResponseParseError(
                exc.message, status=envelope.status, body=self._auth.redact(envelope.raw), endpoint=name
            )
        raise failure

    # -- VPP 1: remote control ------------------------------------------------------------------

    def single_control(self, sn: str, spec: Mapping[str, object]) -> str:
        """Control one inverter (VPP 1.1 Single Control); return the command id.

        ``spec`` is the output of :func:`solax.control.build_control_params` (or the same fields)."""
        return self._typed("single_control", ep.single_control_params(sn, spec), ep.read_command_id)

    def batch_control(self, sns: Iterable[str] | str, spec: Mapping[str, object]) -> str:
        """Control several inverters (VPP 1.2 Batch Control); return the command id."""
        return self._typed("batch_control", ep.batch_control_params(sns, spec), ep.read_command_id)

    def group_control(self, group_id: str, spec: Mapping[str, object]) -> str:
        """Control every inverter of a group (VPP 1.3 Group Control); return the command id."""
        return self._typed("group_control", ep.group_control_params(group_id, spec), ep.read_command_id)

    # -- VPP 2: groups ----------------------------------------------------------------------------

    def group_add(self, name: str) -> str:
        """Create a group (VPP 2.1 Group Add); return its id."""
        return self._typed("group_add", ep.group_add_params(name), ep.read_new_id)

    def group_update(self, id: str, name: str) -> None:
        """Rename a group (VPP 2.2 Group Update); return None."""
        self.call("group_update", ep.group_update_params(id, name))

    def group_delete(self, id: str) -> None:
        """Delete a group (VPP 2.3 Group Delete); return None."""
        self.call("group_delete", ep.group_delete_params(id))

    def group_delete_batch(self, ids: Iterable[str] | str) -> None:
        """Delete several groups (VPP 2.4 Group Batch Deletion); return None."""
        self.call("group_delete_batch", ep.group_delete_batch_params(ids))

    def group_query(self, current: int, size: int) -> Page[Group]:
        """Return one page of all groups (VPP 2.5 Group Query); ``current`` is 1-based."""
        return self._typed("group_query", ep.group_query_params(current, size), ep.read_group_page)

    def group_fuzzy_query(self, name: str) -> Page[Group]:
        """Return the groups whose name contains ``name`` (VPP 2.6 Group Fuzzy Query)."""
        return self._typed("group_fuzzy_query", ep.group_fuzzy_query_params(name), ep.read_group_page)

    # -- VPP 3: group members ("inverters") -------------------------------------------------------

    def inverter_add(self, group_id: str, inverter_sn: str) -> str:
        """Add an inverter to a group (VPP 3.1 Inverter Add); return the membership ("inverter") id."""
        return self._typed("inverter_add", ep.inverter_add_params(group_id, inverter_sn), ep.read_new_id)

    def inverter_delete(self, id: str) -> None:
        """Remove a membership (VPP 3.2 Inverter Delete); return None."""
        self.call("inverter_delete", ep.inverter_delete_params(id))

    def inverter_delete_batch(self, ids: Iterable[str] | str) -> None:
        """Remove several memberships (VPP 3.3 Inverter Batch Deletion); return None."""
        self.call("inverter_delete_batch", ep.inverter_delete_batch_params(ids))

    def inverter_update(self, id: str, new_inverter_sn: str) -> None:
        """Replace the inverter of a membership (VPP 3.4 Inverter Update); return None.

        The cloud answers ``exception: "update succeeded"`` with success true: that is not an error."""
        self.call("inverter_update", ep.inverter_update_params(id, new_inverter_sn))

    def inverter_query(self, group_id: str, current: int, size: int) -> Page[Member]:
        """Return one page of a group's members (VPP 3.5 Inverter Query)."""
        params = ep.inverter_query_params(group_id, current, size)
        return self._typed("inverter_query", params, ep.read_member_page)

    def inverter_fuzzy_query(
        self, group_id: str, wifi_sn: str | None = None, inverter_sn: str | None = None
    ) -> Page[Member]:
        """Return a group's members matching the SN filters (VPP 3.6 Inverter Fuzzy query)."""
        params = ep.inverter_fuzzy_query_params(group_id, wifi_sn, inverter_sn)
        return self._typed("inverter_fuzzy_query", params, ep.read_member_page)

    # -- VPP 4: command progress ------------------------------------------------------------------

    def query_command(self, command_id: str) -> str | None:
        """Return the task id of a command (VPP 4.1 Command Query), None while it has none yet."""
        return self._typed("query_command", ep.query_command_params(command_id), ep.read_task_id)

    def query_result(self, task_id: str) -> dict[str, str | None]:
        """Return dongle SN -> answer of a task (VPP 4.2 Result Query); None = not answered yet."""
        return self._typed("query_result", ep.query_result_params(task_id), ep.read_query_result)

    # -- VPP 5: binding ---------------------------------------------------------------------------

    def bind_devices(self, sns: Iterable[str] | str) -> BindResult:
        """Bind up to 100 dongle registration numbers to the account (VPP 5 Device Binding)."""
        return self._typed("bind_devices", ep.bind_devices_params(sns), ep.read_bind_result)

    # -- EV chargers ------------------------------------------------------------------------------

    def pile_cmd(self, sns: Iterable[str] | str, mode: PileMode | int, callback_url: str) -> str:
        """Set the work mode of up to 100 EV chargers (EV 3.1 pileCmd); return the task id.

        The outcome arrives later as callbacks to ``callback_url`` (see ``solax.parsing.parse_callback``)."""
        return self._typed("pile_cmd", ep.pile_cmd_params(sns, mode, callback_url), ep.read_pile_task_id)

    def pile_info(self, pile_sn: str) -> PileInfo:
        """Return an EV charger's status, mode, power and energy (EV 3.2 getPileInfo)."""
        return self._typed("pile_info", ep.pile_info_params(pile_sn), ep.read_pile_info)
