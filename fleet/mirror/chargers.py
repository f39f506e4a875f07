"""EV chargers: added by SN (the cloud has no list), their status read with getPileInfo.

Status reads spend at most FLEET_CHARGER_STATUS_SHARE_PERCENT of an account's daily budget, spread
evenly over the day, oldest reading first (round-robin); "refresh now" reads one at once, at poll
priority, ahead of the sync. A charger the cloud refuses ("no auth!") is marked refused with the reason
and left out of the round-robin until "refresh now" (the operator's re-check) reads it successfully.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from fleet.models import ApiCall, CallState, Charger, Priority, SolaxAccount
from fleet.pipeline import handlers, queue
from solax import endpoints
from solax.errors import AuthError, SolaxError

ROUND_ROBIN = "charger-status"  # origin_kind of the budgeted background reads
MANUAL = "charger"

STATUS_LABELS = {
    0: "Available", 1: "Preparing", 2: "Charging", 3: "Finish", 4: "Faulted", 5: "Unavailable", 6: "Reserved",
    7: "Suspended EV", 8: "Suspended EVSE", 9: "Update", 10: "Card activation", 11: "Start delay",
    12: "Charge pause", 13: "Stopping",
}
MODE_LABELS = {0: "Stop", 1: "Fast", 2: "ECO", 3: "Green"}
NO_AUTH_CODE = "1003"  # "no auth!": the SN is unknown to the cloud or not this account's


class ChargerExists(Exception):
    """The account has a charger with this SN already (added by another tab or operator meanwhile)."""


def add_charger(account: SolaxAccount, sn: str, label: str = "") -> Charger:
    """Create the charger (the form checked the SN) and read it at once: until the cloud answers it
    is unchecked, and an SN the cloud refuses is marked refused with the reason. Raises ChargerExists
    when the SN was added since the form checked it."""
    try:
        with transaction.atomic():
            charger = Charger.objects.create(account=account, sn=sn, label=label)
    except IntegrityError:
        raise ChargerExists(sn) from None
    request_status(charger, origin_kind=MANUAL)
    return charger


def pending_status(charger: Charger) -> ApiCall | None:
    return (ApiCall.objects.filter(account_id=charger.account_id, endpoint="pile_info",
                                   context__charger=charger.pk, state__in=(CallState.QUEUED, CallState.SENDING))
            .order_by("-id").first())


def request_status(charger: Charger, *, origin_kind: str = MANUAL) -> ApiCall:
    """Queue a getPileInfo for the charger, or return the one already queued."""
    pending = pending_status(charger)
    if pending is not None:
        return pending
    priority = Priority.POLL if origin_kind == MANUAL else Priority.READ
    return queue.enqueue(charger.account, "pile_info", endpoints.pile_info_params(charger.sn),
                         purpose=f"status of charger {charger.sn}", priority=priority, handler="chargers.status",
                         context={"charger": charger.pk}, origin_kind=origin_kind, origin_code=charger.code)


def refusal_text(error: SolaxError | None, call: ApiCall) -> str:
    """The vendor's refusal of a charger in plain words, or "" when the failure is not a refusal."""
    code = (error.code if error is not None else None) or call.vendor_code or ""
    if code == NO_AUTH_CODE or (isinstance(error, AuthError) and "no auth" in str(error).lower()):
        vendor = (error.message if error is not None else call.error) or "no auth!"
        return (f"SolaX does not know this charger or does not let this account control it "
                f"(the cloud answered “{vendor[:80]}”, code {NO_AUTH_CODE}). Check the SN on the charger's "
                "label and that it is bound to this account, then check it again.")[:300]
    return ""


@handlers.register("chargers.status")
def on_status(call: ApiCall, outcome: handlers.Outcome) -> None:
    charger = Charger.objects.filter(pk=call.context.get("charger"))
    if outcome.state != CallState.SUCCEEDED or outcome.envelope is None:
        refused = refusal_text(outcome.error, call)
        if refused:  # not read in the background again until an operator checks it
            charger.update(refused=refused)
        return
    info = endpoints.RESULT_PARSERS["pile_info"](outcome.envelope)
    charger.update(status=info.status, mode=info.mode, power=info.power, energy=info.energy,
                   read_at=timezone.now(), refused="")


def daily_allowance(account: SolaxAccount) -> int:
    """Return how many status reads a day the account's budget share allows."""
    return account.day_limit * settings.FLEET_CHARGER_STATUS_SHARE_PERCENT // 100


def status_tick(account: SolaxAccount, now: datetime | None = None) -> ApiCall | None:
    """Queue the next round-robin status read if the share allows one now; return it or None.

    At most one is in the queue at a time, and they are spaced a day / allowance apart, so the share
    is spent evenly instead of in a burst at midnight.
    """
    now = now or timezone.now()
    allowance = daily_allowance(account)
    if allowance <= 0:
        return None
    reads = ApiCall.objects.filter(account=account, endpoint="pile_info", origin_kind=ROUND_ROBIN)
    if reads.filter(state__in=(CallState.QUEUED, CallState.SENDING)).exists():
        return None
    spacing = timedelta(seconds=86400 / allowance)
    last = reads.order_by("-created").values_list("created", flat=True).first()
    if last is not None and last > now - spacing:
        return None
    if reads.filter(created__gt=now - timedelta(days=1)).count() >= allowance:
        return None
    charger = (Charger.objects.filter(account=account, refused="")
               .order_by(F("read_at").asc(nulls_first=True), "pk").first())
    if charger is None:
        return None
    return request_status(charger, origin_kind=ROUND_ROBIN)


def status_tick_all() -> int:
    """The beat tick over every account with chargers; returns how many reads were queued."""
    queued = 0
    for account in SolaxAccount.objects.filter(chargers__isnull=False).distinct():
        if status_tick(account) is not None:
            queued += 1
    return queued
