"""The resources as the API and the webhooks show them (dicts of the shapes in ``fleet.shapes.responses``),
from model rows."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Q, QuerySet
from django.urls import reverse

from fleet.models import (
    Alert,
    ApiCall,
    Charger,
    Command,
    DayPlan,
    Group,
    Inverter,
    SavedSelection,
    Schedule,
    SolaxAccount,
)
from fleet.pipeline.report import budget_view


def account(row: SolaxAccount) -> dict[str, Any]:
    view = budget_view(row)
    b = view.budget
    return {"code": row.code, "name": row.name, "timezone": row.timezone, "token_readable": row.token_readable,
            "max_sns_per_call": row.max_sns_per_call,
            "budget": {"minute_used": b.minute_used, "minute_limit": b.minute_limit, "minute_free": b.minute_free,
                       "day_used": b.day_used, "day_limit": b.day_limit, "day_free": b.day_free,
                       "queued": view.queued_total, "drain_seconds": view.drain_seconds,
                       "paused_until": row.paused_until if view.paused_seconds_left else None,
                       "pause_reason": row.pause_reason if view.paused_seconds_left else ""}}


def call(row: ApiCall) -> dict[str, Any]:
    return {"code": row.code, "account": row.account.code, "endpoint": row.endpoint, "purpose": row.purpose,
            "state": row.state, "error": row.error, "created": row.created, "sent_at": row.sent_at,
            "finished_at": row.finished_at, "objects": list((row.context or {}).get("codes", [])),
            "url": reverse("api-v1:call", args=[row.code])}


def group(row: Group) -> dict[str, Any]:
    return {"code": row.code, "account": row.account.code, "name": row.name, "remote_id": row.remote_id,
            "device_count": row.device_count, "removed": row.removed, "synced_at": row.synced_at,
            "remote_updated": row.remote_updated}


def inverter(row: Inverter) -> dict[str, Any]:
    return {"code": row.code, "account": row.account.code, "group": row.group.code, "group_name": row.group.name,
            "inverter_sn": row.inverter_sn, "dongle_sn": row.dongle_sn, "rated_power_kw": row.rated_power,
            "in_group": row.in_group}


def charger(row: Charger) -> dict[str, Any]:
    return {"code": row.code, "account": row.account.code, "sn": row.sn, "label": row.label, "status": row.status,
            "mode": row.mode, "power": row.power, "energy": row.energy, "read_at": row.read_at,
            "refused": row.refused}


def selection(row: SavedSelection, *, with_sns: bool = False) -> dict[str, Any]:
    out = {"code": row.code, "account": row.account.code, "name": row.name, "size": len(row.sns),
           "created": row.created, "updated": row.updated}
    if with_sns:
        out["sns"] = list(row.sns)
    return out


def command(row: Command) -> dict[str, Any]:
    return {"code": row.code, "account": row.account.code, "label": row.label, "kind": row.kind,
            "target_kind": row.target_kind, "group": row.group.code if row.group else None, "action": row.action,
            "state": row.state, "source": row.source, "created": row.created,
            "created_by": row.created_by.get_username() if row.created_by else None,
            "api_key": row.api_key.name if row.api_key else None, "created_from": row.created_from,
            "start_by": row.start_by, "expires_at": row.expires_at, "finished_at": row.finished_at,
            "resolution": row.resolution,
            "devices": {"total": row.devices_total, "answered": row.devices_answered,
                        "succeeded": row.devices_succeeded, "failed": row.devices_failed},
            "url": reverse("api-v1:command", args=[row.code]),
            "results": reverse("api-v1:command-results", args=[row.code])}


def command_rows() -> QuerySet[Command]:
    """Commands with what ``command`` reads, in one query."""
    return Command.objects.select_related("account", "group", "created_by", "api_key")


def command_detail(row: Command) -> dict[str, Any]:
    """One command and its progress (GET /commands/{code}, the command.finished webhook): ``command``
    with the calls sent of total and the answers for SNs the mirror does not know (two queries)."""
    batches = row.batches.aggregate(total=Count("pk"), sent=Count("pk", filter=~Q(vendor_command_id="")))
    unmatched: dict[str, str] = {}
    for answers in row.batches.exclude(unmatched={}).values_list("unmatched", flat=True):
        unmatched.update({str(k): str(v) for k, v in (answers or {}).items()})
    return {**command(row), "calls_total": batches["total"], "calls_sent": batches["sent"], "unmatched": unmatched}


def schedule(row: Schedule) -> dict[str, Any]:
    return {"code": row.code, "account": row.account.code, "name": row.name, "target_kind": row.target_kind,
            "group": row.group.code if row.group else None,
            "selection": row.selection.code if row.selection else None, "sns": list(row.sns),
            "start_action": row.start_action, "end_action": row.end_action,
            "start_time": row.start_time.strftime("%H:%M"), "end_time": row.end_time.strftime("%H:%M"),
            "date": row.date, "weekdays": list(row.weekdays), "timezone": row.timezone, "enabled": row.enabled,
            "valid_from": row.valid_from, "valid_until": row.valid_until, "calls_per_edge": row.calls_per_edge,
            "next_edge_at": row.next_edge_at}


def price_plan(row: DayPlan) -> dict[str, Any]:
    rule = row.rule
    group = rule.group  # a rule may target several groups or a selection instead (then None)
    return {"code": row.code, "account": rule.zone.account.code, "zone": rule.zone.name,
            "rule": rule.code, "target_kind": getattr(rule, "target_kind", "group"),
            "group": group.code if group else None, "group_name": group.name if group else None,
            "day": row.day, "form": row.form, "state": row.state, "calls": row.calls,
            "avg_charge": str(row.avg_charge) if row.avg_charge is not None else None,
            "avg_discharge": str(row.avg_discharge) if row.avg_discharge is not None else None,
            "periods": list(row.periods), "edges": list(row.edges), "notes": list(row.notes),
            "created": row.created, "accepted_at": row.accepted_at}


def alert(row: Alert) -> dict[str, Any]:
    return {"code": row.code, "kind": row.kind, "severity": row.severity, "subject": row.subject, "title": row.title,
            "detail": row.detail, "state": row.state, "account": row.account.code if row.account else None,
            "raised_at": row.raised_at, "acknowledged_at": row.acknowledged_at,
            "acknowledged_by": row.acknowledged_by.username if row.acknowledged_by else None,
            "resolved_at": row.resolved_at, "resolution": row.resolution, "link": row.link}
