"""Binding devices to the account (VPP 5, regsn): registration numbers in requests of at most 100.

The registration number is the dongle's (``SW...``), not the inverter SN: an inverter SN comes back as
"Non-existent sn". Each request is a BindingRequest and one management-priority ApiCall; its handler
files every SN under one of the cloud's four answers.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import transaction

from fleet.mirror import ungrouped
from fleet.models import ApiCall, BindingRequest, CallState, Priority, SolaxAccount
from fleet.pipeline import handlers, queue
from solax import endpoints
from solax.control import MAX_SNS_PER_CALL
from solax.errors import RequestValidationError

ORIGIN = "binding"
CATEGORIES = (("bound", "Bound"), ("already_bound", "Already bound"), ("failed", "Failed"),
              ("unknown", "Unknown SN"))


class BindingError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def chunks(sns: Sequence[str], size: int = MAX_SNS_PER_CALL) -> list[list[str]]:
    """Return ``sns`` split into lists of at most ``size``, in order."""
    return [list(sns[i:i + size]) for i in range(0, len(sns), size)]


def request_binding(account: SolaxAccount, sns: Sequence[str],
                    user: AbstractBaseUser | AnonymousUser | None = None) -> BindingRequest:
    """Queue one regsn call for at most 100 distinct, well-formed registration numbers.

    Raises BindingError (nothing queued) for more than 100, duplicates or a malformed SN.
    """
    if len(sns) > MAX_SNS_PER_CALL:
        raise BindingError(f"One request takes at most {MAX_SNS_PER_CALL} registration numbers, not {len(sns)}.")
    if len(set(sns)) != len(sns):
        raise BindingError("The same registration number appears twice in one request.")
    try:
        params = endpoints.bind_devices_params(list(sns))
    except RequestValidationError as exc:
        raise BindingError("; ".join(exc.errors.values())) from exc
    with transaction.atomic():
        request = BindingRequest(account=account, sns=list(sns))
        if user is not None and user.is_authenticated:
            request.created_by_id = user.pk
        request.save()
        queue.enqueue(account, "bind_devices", params, purpose=f"bind {len(sns)} device(s)",
                      priority=Priority.MANAGEMENT, handler="bindings.result", context={"request": request.pk},
                      origin_kind=ORIGIN, origin_code=request.code)
    return request


def request_bindings(account: SolaxAccount, sns: Sequence[str],
                     user: AbstractBaseUser | AnonymousUser | None = None) -> list[BindingRequest]:
    """Split ``sns`` into requests of at most 100 and queue them all in one transaction."""
    with transaction.atomic():
        return [request_binding(account, part, user) for part in chunks(sns)]


@handlers.register("bindings.result")
def on_result(call: ApiCall, outcome: handlers.Outcome) -> None:
    request = BindingRequest.objects.filter(pk=call.context.get("request")).first()
    if request is None:
        return
    if outcome.state == CallState.SUCCEEDED and outcome.envelope is not None:
        result = endpoints.RESULT_PARSERS["bind_devices"](outcome.envelope)
        request.bound, request.failed = result.bound, result.failed
        request.already_bound, request.unknown = result.already_bound, result.unknown
        request.state = "done"
        request.error = ""
        # the account holds these dongles now: they are listed as ungrouped at once
        ungrouped.record_bound(request.account_id, [*result.bound, *result.already_bound])
    else:
        request.state = "unknown" if outcome.state == CallState.UNKNOWN else "failed"
        text = str(outcome.error) if outcome.error else ""
        request.error = (text or "SolaX did not answer") + (
            " It may have been applied; the next answer for these numbers will say 'already bound'."
            if request.state == "unknown" else "")
    request.save(update_fields=["bound", "failed", "already_bound", "unknown", "state", "error"])
