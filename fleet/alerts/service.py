"""Raising and resolving alerts: one alert per episode of a condition, resolved when it ends.

Events come from below (fleet.events: an account paused, a command's state changed, a sync ended)
and from above (the schedules' and price plans' ticks call ``edge_missed``/``edge_sent``, and
the budget forecast calls ``raise_alert``/``resolve_alerts``); ``evaluate`` is the periodic part
for conditions that end without an event (an account that sends again).

An episode is an active alert (open or acknowledged) of one (organization, kind, subject); a partial
unique constraint keeps it single even when two workers raise it at once. Each write runs in a
savepoint, so a lost race or a failure never breaks the caller's transaction; the channels'
deliveries are rows written with the alert and sent by Celery after the commit.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F, QuerySet, Window
from django.db.models.functions import RowNumber
from django.dispatch import receiver
from django.urls import reverse
from django.utils import timezone

from fleet import events
from fleet.alerts import channels
from fleet.commands.tracking import FINAL_STATES
from fleet.models import (
    ACTIVE_ALERT_STATES,
    Alert,
    AlertKind,
    AlertState,
    CallAttempt,
    CallState,
    Command,
    CommandState,
    DeviceResult,
    DeviceState,
    Organization,
    Severity,
    SolaxAccount,
    SyncRun,
)
from fleet.models.alerts import SEVERITY_RANK

log = logging.getLogger("fleet.alerts")

SILENT_STREAK = 3  # commands in a row without an answer before a device counts as silent
SILENT_SNS_KEPT = 1000  # the SNs an alert remembers (its count is exact)
ALERT_COMMAND_STATES = (CommandState.PARTIAL, CommandState.FAILED, CommandState.UNKNOWN)
RETRY_CHAIN = 5  # how far back a successful retry resolves its originals' alerts


# Raising and resolving -------------------------------------------------------------------------

def raise_alert(organization: Organization | int, kind: str, subject: str, *, title: str, detail: str = "",
                severity: str = Severity.WARNING, account: SolaxAccount | None = None, link: str = "",
                context: dict[str, Any] | None = None) -> Alert | None:
    """Open an episode of ``kind`` about ``subject`` unless one is active; return the new alert, or
    None when the episode was already open (its text is brought up to date, its severity only ever
    raised, and nothing is delivered again)."""
    org_id = organization if isinstance(organization, int) else organization.pk
    subject = str(subject)[:64]
    fields = {"title": title[:200], "detail": detail, "link": link[:200], "context": context or {}}
    active = Alert.objects.filter(organization_id=org_id, kind=kind, subject=subject, state__in=ACTIVE_ALERT_STATES)
    try:
        with transaction.atomic():
            current = active.first()
            if current is None:
                alert = Alert.objects.create(organization_id=org_id, account=account, kind=kind, subject=subject,
                                             severity=severity, **fields)
                channels.queue_deliveries(alert, channels.RAISED)
                log.info("alert raised: %s %s (%s)", kind, subject, severity)
                return alert
            if SEVERITY_RANK[Severity(severity)] > SEVERITY_RANK[Severity(current.severity)]:
                fields["severity"] = severity
            active.filter(pk=current.pk).update(**fields)
            return None
    except IntegrityError:
        return None  # another worker opened the same episode a moment ago


def resolve_alerts(organization: Organization | int, kind: str, subject: str, resolution: str) -> int:
    """End the active episode of ``kind`` about ``subject``; returns how many alerts were resolved
    (0 or 1). Each resolved alert tells its channels."""
    org_id = organization if isinstance(organization, int) else organization.pk
    resolved = 0
    with transaction.atomic():
        for alert in Alert.objects.filter(organization_id=org_id, kind=kind, subject=str(subject)[:64],
                                          state__in=ACTIVE_ALERT_STATES):
            now = timezone.now()
            if Alert.objects.filter(pk=alert.pk, state__in=ACTIVE_ALERT_STATES).update(
                    state=AlertState.RESOLVED, resolved_at=now, resolution=resolution[:200]) == 1:
                alert.state, alert.resolved_at, alert.resolution = AlertState.RESOLVED, now, resolution[:200]
                channels.queue_deliveries(alert, channels.RESOLVED)
                log.info("alert resolved: %s %s (%s)", kind, alert.subject, resolution)
                resolved += 1
    return resolved


# Kinds about a finished event rather than a lasting condition: nothing ends them by itself except
# the operator's decision or a retry, so acknowledging one resolves it.
ACKNOWLEDGE_RESOLVES = (AlertKind.COMMAND,)


def acknowledge(alert: Alert, user: Any, *, by: str | None = None) -> bool:
    """An operator has seen an open alert: it stays active until its condition ends (a command's alert
    is resolved by it). Returns False when it was not open (already acknowledged or resolved).
    ``by`` names who acknowledged when it was not a person (an API key)."""
    now = timezone.now()
    name = by or getattr(user, "username", "an operator")
    with transaction.atomic():
        if alert.kind in ACKNOWLEDGE_RESOLVES:
            fields = {"state": AlertState.RESOLVED, "resolved_at": now, "resolution": f"acknowledged by {name}"}
        else:
            fields = {"state": AlertState.ACKNOWLEDGED}
        done = Alert.objects.filter(pk=alert.pk, state=AlertState.OPEN).update(
            acknowledged_by=user, acknowledged_at=now, **fields) == 1
        if done:
            alert.acknowledged_by, alert.acknowledged_at = user, now
            for key, value in fields.items():
                setattr(alert, key, value)
            if alert.state == AlertState.RESOLVED:
                channels.queue_deliveries(alert, channels.RESOLVED)
    return done


def alerts_for(organization: Organization, state: str | None = None) -> QuerySet[Alert]:
    """The organization's alerts, newest first; ``state`` narrows to open, acknowledged or resolved."""
    alerts = Alert.objects.filter(organization=organization)
    if state:
        alerts = alerts.filter(state=state)
    return alerts.select_related("account", "acknowledged_by").order_by("-raised_at", "-pk")


def open_alerts_for(organization: Organization) -> QuerySet[Alert]:
    """The organization's active alerts (open or acknowledged), newest first: the API's list."""
    return (Alert.objects.filter(organization=organization, state__in=ACTIVE_ALERT_STATES)
            .select_related("account", "acknowledged_by").order_by("-raised_at", "-pk"))


def active_of_kind(kind: str) -> list[tuple[int, str, int | None]]:
    """(organization id, subject, account id) of every active alert of ``kind`` (indexed)."""
    return list(Alert.objects.filter(state__in=ACTIVE_ALERT_STATES, kind=kind)
                .values_list("organization_id", "subject", "account_id"))


def open_count(organization_id: int) -> int:
    """How many alerts of the organization nobody has acknowledged yet (the nav's badge; one query)."""
    return Alert.objects.filter(organization_id=organization_id, state=AlertState.OPEN).count()


# Accounts ---------------------------------------------------------------------------------------

PAUSE_SEVERITY = {"rate_limit": Severity.WARNING, "lockout": Severity.CRITICAL,
                  "token_rejected": Severity.CRITICAL, "token_unreadable": Severity.CRITICAL}


@receiver(events.account_paused, dispatch_uid="alerts.account_paused")
def on_account_paused(sender: object, *, account: SolaxAccount, until: datetime, reason: str, cause: str,
                      **_: Any) -> None:
    tz = account.tzinfo
    raise_alert(account.organization_id, AlertKind.ACCOUNT_PAUSED, str(account.code), account=account,
                severity=PAUSE_SEVERITY.get(cause, Severity.WARNING),
                title=f"Account {account.name} paused", link=reverse("fleet-budget"),
                detail=f"{reason}. Nothing is sent for it until {until.astimezone(tz):%Y-%m-%d %H:%M %Z}.",
                context={"cause": cause})


def resolve_resumed_accounts(now: datetime | None = None) -> int:
    """Resolve the pause episodes of accounts that send again: no longer paused, and a call sent
    after the pause succeeded. Returns how many resolved (a query per active pause episode)."""
    now = now or timezone.now()
    resolved = 0
    for alert in (Alert.objects.filter(state__in=ACTIVE_ALERT_STATES, kind=AlertKind.ACCOUNT_PAUSED)
                  .select_related("account")):
        account = alert.account
        if account is None or account.is_paused(now):
            continue
        since = max(alert.raised_at, account.paused_until or alert.raised_at)
        if CallAttempt.objects.filter(account=account, sent_at__gte=since, call__state=CallState.SUCCEEDED).exists():
            resolved += resolve_alerts(alert.organization_id, alert.kind, alert.subject, "the account sends again")
    return resolved


# Commands ---------------------------------------------------------------------------------------

@receiver(events.command_state_changed, dispatch_uid="alerts.command_state_changed")
def on_command_state_changed(sender: object, *, command: Command, previous: str, **_: Any) -> None:
    finished = command.state in FINAL_STATES + (CommandState.UNKNOWN,) and previous not in FINAL_STATES
    # Any move into a final state, even from another final one: the delivery's unique constraint, not
    # this test, keeps it to one command.finished per channel.
    into_final = command.state in FINAL_STATES and command.state != previous
    if not (finished or into_final or command.resolution):
        return  # queued -> running and the like: no query at all
    org_id = SolaxAccount.objects.filter(pk=command.account_id).values_list("organization_id", flat=True).first()
    if org_id is None:
        return
    if into_final:
        channels.queue_command_finished(org_id, command)
    if command.resolution:
        resolve_alerts(org_id, AlertKind.COMMAND, str(command.code),
                       f"an operator decided: {command.get_resolution_display()}")
    elif command.state in ALERT_COMMAND_STATES and previous not in FINAL_STATES:
        raise_alert(org_id, AlertKind.COMMAND, str(command.code), account=SolaxAccount(pk=command.account_id),
                    **_command_alert(command))
    elif command.state == CommandState.SUCCEEDED and command.retry_of_id:
        original_id: int | None = command.retry_of_id
        for _step in range(RETRY_CHAIN):
            if original_id is None:
                break
            row = Command.objects.filter(pk=original_id).values_list("code", "retry_of_id").first()
            if row is None:
                break
            resolve_alerts(org_id, AlertKind.COMMAND, str(row[0]), f"retry {command.code} succeeded")
            original_id = row[1]
    if command.state in FINAL_STATES and previous not in FINAL_STATES:
        check_silent_devices(org_id, command)


def _command_alert(command: Command) -> dict[str, Any]:
    if command.state == CommandState.UNKNOWN:
        severity, what = Severity.CRITICAL, "ended unknown: delivery is uncertain and an operator must decide"
    elif command.state == CommandState.FAILED:
        severity, what = Severity.CRITICAL, "failed on every device"
    else:
        severity, what = Severity.WARNING, "ended partial"
    return {"severity": severity, "title": f"Command {command.label} {what.split(':')[0]}"[:200],
            "detail": (f"{command.label} {what}: {command.devices_succeeded} of {command.devices_total} "
                       f"device(s) succeeded, {command.devices_failed} failed."),
            "link": reverse("fleet-command-detail", args=[command.code])}


def check_silent_devices(org_id: int, command: Command) -> None:
    """Keep the account's "devices silent" episode up to date after a command ended: a device whose
    last SILENT_STREAK results had no answer joins it, a device that answered leaves it."""
    answers = list(DeviceResult.objects.filter(command=command).exclude(state=DeviceState.PENDING)
                   .values_list("sn", "state"))
    answered = {sn for sn, state in answers if state in (DeviceState.SUCCEEDED, DeviceState.FAILED)}
    silent_now = [sn for sn, state in answers if state == DeviceState.NO_ANSWER]
    streak = _silent_streak(command, silent_now)
    subject = str(SolaxAccount.objects.filter(pk=command.account_id).values_list("code", flat=True).first())
    current = Alert.objects.filter(organization_id=org_id, kind=AlertKind.DEVICES_SILENT, subject=subject,
                                   state__in=ACTIVE_ALERT_STATES).first()
    known = set(current.context.get("sns", [])) if current else set()
    if not streak and not (known & answered):
        return
    silent = sorted((known - answered) | streak)
    if not silent:
        resolve_alerts(org_id, AlertKind.DEVICES_SILENT, subject, "every device answered again")
        return
    shown = ", ".join(silent[:10]) + (f" and {len(silent) - 10} more" if len(silent) > 10 else "")
    raise_alert(org_id, AlertKind.DEVICES_SILENT, subject, account=SolaxAccount(pk=command.account_id),
                severity=Severity.WARNING, link=reverse("fleet-inverters"),
                title=f"{len(silent)} device(s) silent across {SILENT_STREAK} commands in a row",
                detail=f"No answer to the last {SILENT_STREAK} commands (offline?): {shown}.",
                context={"sns": silent[:SILENT_SNS_KEPT], "count": len(silent)})


def _silent_streak(command: Command, sns: Iterable[str]) -> set[str]:
    """Return the SNs among ``sns`` whose last SILENT_STREAK results (up to this command) all had no
    answer: one windowed query per 500 SNs."""
    sns = list(sns)
    streak: set[str] = set()
    for start in range(0, len(sns), 500):
        chunk = sns[start:start + 500]
        recent = (DeviceResult.objects.filter(command__account_id=command.account_id, sn__in=chunk,
                                              command_id__lte=command.pk)
                  .annotate(n=Window(RowNumber(), partition_by=[F("sn")], order_by=F("command_id").desc()))
                  .filter(n__lte=SILENT_STREAK).values_list("sn", "state"))
        counts: dict[str, int] = {}
        for sn, state in recent:
            counts[sn] = counts.get(sn, 0) + (1 if state == DeviceState.NO_ANSWER else -SILENT_STREAK)
        streak |= {sn for sn, n in counts.items() if n >= SILENT_STREAK}
    return streak


# Schedules and price plans (called by fleet.schedules and fleet.prices) ------------------------

def edge_missed(account: SolaxAccount, subject: str, *, title: str, detail: str, link: str) -> Alert | None:
    """A schedule's or a price plan's edge was not sent (missed or refused): one episode per
    schedule or price rule until one of its edges goes out again."""
    return raise_alert(account.organization_id, AlertKind.EDGE_MISSED, subject, account=account,
                       severity=Severity.CRITICAL, title=title, detail=detail, link=link)


def edge_sent(account: SolaxAccount, subject: str) -> int:
    """An edge of the schedule or price rule ``subject`` went out on time: its episode ends."""
    return resolve_alerts(account.organization_id, AlertKind.EDGE_MISSED, subject, "an edge was sent on time again")


# Syncs ------------------------------------------------------------------------------------------

@receiver(events.sync_finished, dispatch_uid="alerts.sync_finished")
def on_sync_finished(sender: object, *, run: SyncRun, state: str, **_: Any) -> None:
    account = SolaxAccount.objects.filter(pk=run.account_id).only("pk", "code", "name", "organization_id").first()
    if account is None:
        return
    subject = str(account.code)
    if state == "done":
        resolve_alerts(account.organization_id, AlertKind.SYNC, subject, f"sync {run.code} read everything")
        return
    failed = state == "failed"
    raise_alert(account.organization_id, AlertKind.SYNC, subject, account=account,
                severity=Severity.CRITICAL if failed else Severity.WARNING,
                link=reverse("fleet-sync-run", args=[run.code]),
                title=f"Sync of {account.name} {'failed' if failed else 'incomplete'}",
                detail=((run.error if failed else run.incomplete) or state)[:2000])


# The periodic evaluation -------------------------------------------------------------------------

def evaluate(now: datetime | None = None) -> dict[str, int]:
    """The beat task's alert work that no event triggers: accounts that send again, and deliveries
    whose task was lost (broker down). Indexed queries only. Returns what it did."""
    now = now or timezone.now()
    return {"resumed": resolve_resumed_accounts(now),
            "requeued": channels.requeue_lost(now - timedelta(minutes=10))}
