"""Handlers: what a caller wants done with a call's final outcome, run in the transaction that
records it. A service registers a handler by name at import (``@register("commands.sent")``), names it
in ``fleet.pipeline.queue.enqueue``, and receives the call and its Outcome once it is final."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from fleet.models import ApiCall, CallState
from fleet.models.calls import RESPONSE_LIMIT
from solax.errors import SolaxError
from solax.models import Envelope

log = logging.getLogger("fleet.calls")


@dataclass(frozen=True)
class Outcome:
    """What became of a call: ``state`` is succeeded, failed or unknown."""

    state: str
    envelope: Envelope | None = None
    error: SolaxError | None = None


Handler = Callable[[ApiCall, Outcome], None]
_HANDLERS: dict[str, Handler] = {}


def register(name: str) -> Callable[[Handler], Handler]:
    """Register a function that receives a call's final outcome, inside the transaction that
    records it. It may update the domain and enqueue follow-up calls."""

    def decorator(func: Handler) -> Handler:
        _HANDLERS[name] = func
        return func

    return decorator


def is_registered(name: str) -> bool:
    return name in _HANDLERS


def error_fields(error: SolaxError | None) -> dict[str, Any]:
    if error is None:
        return {}
    body = getattr(error, "body", None) or ""
    return {
        "http_status": getattr(error, "status", None),
        "vendor_code": "" if error.code is None else str(error.code)[:20],
        "error": f"{type(error).__name__}: {error}"[:2000],
        "response": str(body)[:RESPONSE_LIMIT],
    }


def finish(call: ApiCall, state: str, *, envelope: Envelope | None = None, error: SolaxError | None = None,
            duration_ms: int | None = None, expected: str = CallState.SENDING) -> Outcome | None:
    """Record a final state and run the handler in the same transaction. Returns the Outcome, or
    None if another process already finished the call."""
    fields: dict[str, Any] = {"state": state, "finished_at": timezone.now(), "duration_ms": duration_ms}
    if envelope is not None:
        fields.update(http_status=envelope.status, vendor_code=envelope.code or "",
                      error=(envelope.exception or "")[:2000], response=envelope.raw[:RESPONSE_LIMIT])
    fields.update(error_fields(error))
    outcome = Outcome(state=state, envelope=envelope, error=error)
    if not call.handler:  # one conditional UPDATE: atomic on its own
        if ApiCall.objects.filter(pk=call.pk, state=expected).update(**fields) != 1:
            return None
        for key, value in fields.items():
            setattr(call, key, value)
    else:
        with transaction.atomic():
            if ApiCall.objects.filter(pk=call.pk, state=expected).update(**fields) != 1:
                return None
            for key, value in fields.items():
                setattr(call, key, value)
            _run_handler(call, outcome)
    log.debug("call %s (%s) %s in %s ms", call.code, call.endpoint, state, duration_ms)
    return outcome


def _run_handler(call: ApiCall, outcome: Outcome) -> None:
    if not call.handler:
        return
    handler = _HANDLERS.get(call.handler)
    if handler is None:
        log.error("call %s names handler %r, which is not registered", call.code, call.handler)
        return
    try:
        with transaction.atomic():
            handler(call, outcome)
    except Exception:  # noqa: BLE001 - the call's own outcome is recorded whatever the handler does
        log.exception("handler %s failed for call %s", call.handler, call.code)
        ApiCall.objects.filter(pk=call.pk).update(error=(call.error + " [handler failed]")[:2000])
