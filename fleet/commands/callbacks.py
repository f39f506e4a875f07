"""EV charger callbacks: SolaX POSTs the progress of a pileCmd task to our ``callbackUrl``.

Each account has its own secret in that URL. A callback is kept once per (task, rspType, SN) in
CallbackReceipt, so a duplicate changes nothing. Refusals are logged without the secret or the body.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from fleet.commands import tracking
from fleet.models import (
    CallbackReceipt,
    Charger,
    CommandBatch,
    CommandKind,
    CommandState,
    DeviceResult,
    DeviceState,
    SolaxAccount,
)
from fleet.models.accounts import callback_secret_hash
from solax.errors import ResponseParseError
from solax.models import Callback
from solax.parsing import parse_callback

log = logging.getLogger("fleet.callbacks")

DEVICE_CODES = {"0": (DeviceState.SUCCEEDED, "success"), "1": (DeviceState.FAILED, "command not received"),
                "2": (DeviceState.FAILED, "execution failed")}


@dataclass(frozen=True)
class Receipt:
    """What became of a callback: the HTTP status to answer and a short reason."""

    status: int
    reason: str


def _refuse(status: int, reason: str, account: SolaxAccount | None, size: int) -> Receipt:
    log.warning("EV callback refused (%s): %s; account %s, %s bytes", status, reason,
                account.pk if account else "-", size)
    return Receipt(status, reason)


def refuse_oversized(size: int) -> Receipt:
    """Refuse a body announced larger than CALLBACK_MAX_BYTES without reading it."""
    return _refuse(413, "body too large", None, size)


@sensitive_variables("secret")
def receive(secret: str, body: bytes) -> Receipt:
    """Check, deduplicate and apply one callback. Returns the status to answer (200 or a 4xx)."""
    size = len(body)
    if size > settings.CALLBACK_MAX_BYTES:
        return _refuse(413, "body too large", None, size)
    account = (SolaxAccount.objects.filter(callback_secret_hash=callback_secret_hash(secret)).first()
               if secret else None)
    if account is None:
        return _refuse(404, "unknown callback address", None, size)
    try:
        callback = parse_callback(body)
    except ResponseParseError:
        return _refuse(400, "not a callback (bad JSON or shape)", account, size)
    if b"\x00" in body or _has_nul(callback):  # "\u0000" in the JSON: PostgreSQL stores no NUL in text
        return _refuse(400, "not a callback (a NUL character in a field)", account, size)
    batch = (CommandBatch.objects.filter(command__account=account, command__kind=CommandKind.CHARGER_MODE,
                                         task_id=callback.task_id).select_related("command").first())
    if batch is None:
        return _refuse(404, "unknown task", account, size)
    sn = (callback.sn or "") if callback.rsp_type == 2 else ""
    try:
        with transaction.atomic():
            CallbackReceipt.objects.create(account=account, task_id=callback.task_id, rsp_type=callback.rsp_type,
                                           sn=sn, body=body.decode("utf-8", "replace"))
            _apply(batch, callback)
    except IntegrityError:
        log.info("EV callback %s of task %s (%s) already received", callback.rsp_type, callback.task_id, sn or "-")
        return Receipt(200, "duplicate")
    return Receipt(200, "ok")


def _confirm_mode(batch: CommandBatch, sn: str, now: datetime) -> None:
    """Show the mode a charger confirmed by callback ("Fast, confirmed by the charger 18:47"): newer
    than its last status read, which may be minutes old."""
    mode = batch.command.action.get("chargerMode")
    if isinstance(mode, int):
        Charger.objects.filter(account_id=batch.command.account_id, sn=sn).update(
            mode=mode, mode_confirmed_at=now, refused="")


def _has_nul(callback: Callback) -> bool:
    """Return True when a field of the callback that is looked up or stored contains NUL."""
    texts = [callback.task_id, callback.sn or "", callback.code or "", callback.ack or "",
             *callback.failure_list, *callback.timeout_list]
    return any("\x00" in str(text) for text in texts)


def _apply(batch: CommandBatch, callback: Callback) -> None:
    now = timezone.now()
    pending = DeviceResult.objects.filter(batch=batch, state=DeviceState.PENDING)
    if callback.rsp_type == 1 and callback.failure_list:
        pending.filter(sn__in=callback.failure_list).update(
            state=DeviceState.FAILED, answer="not issued: the cloud refused this charger", answered_at=now)
    elif callback.rsp_type == 2 and callback.sn:
        state, text = DEVICE_CODES.get(callback.code or "", (DeviceState.FAILED, f"code {callback.code}"))
        answer = (callback.ack or text) if state == DeviceState.SUCCEEDED else text
        # a late answer still counts after the command expired and marked the charger silent
        late_or_pending = DeviceResult.objects.filter(
            batch=batch, state__in=[DeviceState.PENDING, DeviceState.NO_ANSWER])
        late_or_pending.filter(sn=callback.sn).update(state=state, answer=answer[:500], answered_at=now)
        if state == DeviceState.SUCCEEDED:  # the charger itself confirmed the command's mode
            _confirm_mode(batch, callback.sn, now)
    elif callback.rsp_type == 3:
        if callback.timeout_list:
            pending.filter(sn__in=callback.timeout_list).update(
                state=DeviceState.NO_ANSWER, answer="timed out (the charger did not answer)", answered_at=now)
        if not DeviceResult.objects.filter(batch=batch, state=DeviceState.PENDING).exists():
            CommandBatch.objects.filter(pk=batch.pk).update(state=CommandState.SUCCEEDED)
    tracking.refresh(batch.command)
