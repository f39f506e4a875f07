"""The schedules pages: list with next fire times, week timeline, overlap and budget warnings;
create, edit, pause, delete; a schedule's occurrences with their commands; device-side windows."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Prefetch
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from fleet.accounts import audit, once
from fleet.accounts.access import account_choice, current_membership, require_operator, schedule_for_user
from fleet.accounts.forms import client_address
from fleet.commands import service as commands_service
from fleet.commands.actions import CommandError, describe_action
from fleet.commands.targets import Target
from fleet.models import DeviceResult, Occurrence, Schedule, TargetKind
from fleet.schedules import service, timeline
from fleet.schedules.forms import ACTION_PRESETS, DeviceWindowsForm, ScheduleForm
from fleet.views.base import HtmxHttpRequest

PAGE_SIZE = 25
OCCURRENCES_PAGE_SIZE = 20



@dataclass(frozen=True)
class Row:
    schedule: Schedule
    target: str
    days: str
    start_action: str
    end_action: str
    next_fire: str  # local time, or "" when nothing is coming


def _local(at: datetime, tz_name: str) -> str:
    local = at.astimezone(ZoneInfo(tz_name))
    return f"{local:%a %d %b %H:%M} {local.tzname()}"


def _row(schedule: Schedule, now: datetime) -> Row:
    upcoming = service.next_edge(schedule, now) if schedule.enabled else None
    next_fire = f"{upcoming.edge} {_local(upcoming.due_at, schedule.timezone)}" if upcoming else ""
    return Row(schedule, timeline.target_label(schedule), timeline.describe_days(schedule),
               describe_action(schedule.start_action), describe_action(schedule.end_action),
               next_fire)


@require_GET
def schedule_list(request: HtmxHttpRequest) -> HttpResponse:
    accounts, account = account_choice(request)
    context: dict[str, Any] = {"accounts": accounts, "account": account}
    if account is None:
        return render(request, "fleet/schedules.html", context)
    now = timezone.now()
    every = list(Schedule.objects.filter(account=account).select_related("group", "selection")
                 .prefetch_related("groups").order_by("name", "id"))
    query = request.GET.get("q", "").strip()
    matching = [s for s in every if query.lower() in s.name.lower()] if query else every
    page = Paginator(matching, PAGE_SIZE).get_page(request.GET.get("page"))
    context.update(page=page, rows=[_row(s, now) for s in page.object_list], query=query,
                   total=len(every))
    if request.htmx and request.htmx.target == "schedule-list":
        return render(request, "fleet/schedules.html#list", context)
    overlaps = timeline.find_overlaps(every, now)
    conflicting = {o.first.pk for o in overlaps} | {o.second.pk for o in overlaps}
    today = now.astimezone(account.tzinfo).date()
    context.update(
        overlaps=overlaps, timeline=timeline.week_timeline([s for s in every if s.enabled], today, conflicting),
        budget_warnings=service.budget_warnings(account, every, now), hours=range(0, 24, 3),
    )
    return render(request, "fleet/schedules.html", context)


def _assign(schedule: Schedule, data: dict[str, Any]) -> None:
    """Copy a valid ScheduleForm's values onto the schedule."""
    schedule.account = data["account"]
    schedule.name = data["name"]
    schedule.target_kind = data["target_kind"]
    schedule.group = data["group_obj"]
    schedule.selection = data.get("selection_obj")
    schedule.sns = data["sns_list"]
    for name in ("start_action", "end_action", "start_time", "end_time", "date", "weekdays", "timezone",
                 "valid_from", "valid_until", "enabled"):
        setattr(schedule, name, data[name])


def _save(schedule: Schedule, data: dict[str, Any]) -> None:
    """Save the schedule with its derived fields; several groups are a relation, set after the row."""
    service.prepare(schedule).save()
    schedule.groups.set(data.get("groups_objs") or ())
    if schedule.target_kind == TargetKind.GROUPS:  # its calls per edge depend on the groups just set
        service.prepare(schedule).save(update_fields=["calls_per_edge", "next_edge_at", "wake_at"])


def _warn_of_overlaps(request: HtmxHttpRequest, schedule: Schedule) -> None:
    """Name every other schedule whose windows conflict with this one on a shared device (saved all the
    same: the operator may mean one to replace the other, or pause one)."""
    others = list(Schedule.objects.filter(account=schedule.account, enabled=True).select_related(
        "group", "selection").prefetch_related("groups"))
    for overlap in timeline.find_overlaps(others, timezone.now(), involving=schedule):
        other = overlap.other(schedule)
        devices = ", ".join(overlap.devices) + (" …" if overlap.device_count > len(overlap.devices) else "")
        messages.warning(request, (
            f"“{schedule.name}” overlaps “{other.name}”: “{overlap.first.name}” and “{overlap.second.name}” "
            f"{overlap.reason} {overlap.device_count} device{'s' if overlap.device_count != 1 else ''} "
            f"({devices}), first on {_local(overlap.starts, schedule.account.timezone)}."))


AUDITED = ("account", "name", "target_kind", "group", "selection", "sns", "start_action", "end_action",
           "start_time", "end_time", "date", "weekdays", "timezone", "valid_from", "valid_until", "enabled")


def _audited(schedule: Schedule) -> dict[str, Any]:
    """The schedule's fields as the audit log compares them (its groups by name)."""
    values = audit.snapshot(schedule, AUDITED)
    values["groups"] = sorted(g.name for g in schedule.groups.all()) if schedule.pk else []
    return values


def _preset_or_custom(action: dict[str, int]) -> tuple[str, str]:
    """Return (preset key, "") for a preset action, else ("", its JSON) for the custom field."""
    for key, (_, preset) in ACTION_PRESETS.items():
        if preset == action:
            return key, ""
    return "", json.dumps(action)


def _initial(schedule: Schedule) -> dict[str, Any]:
    (start_preset, start_action), (end_preset, end_action) = (
        _preset_or_custom(schedule.start_action), _preset_or_custom(schedule.end_action))
    return {
        "start_preset": start_preset, "end_preset": end_preset,
        "account": schedule.account.code, "name": schedule.name, "target_kind": schedule.target_kind,
        "group": str(schedule.group.code) if schedule.group else "", "sns": ", ".join(schedule.sns),
        "groups": [str(g.code) for g in schedule.groups.all()],
        "selection": str(schedule.selection.code) if schedule.selection else "",
        "start_action": start_action, "end_action": end_action,
        "start_time": schedule.start_time, "end_time": schedule.end_time, "date": schedule.date,
        "repeat": "once" if schedule.date else "weekly",
        "weekdays": [str(d) for d in schedule.weekdays], "timezone": schedule.timezone,
        "valid_from": schedule.valid_from, "valid_until": schedule.valid_until, "enabled": schedule.enabled,
    }


@require_http_methods(["GET", "POST"])
def schedule_create(request: HtmxHttpRequest) -> HttpResponse:
    membership = require_operator(request)
    org = membership.organization
    initial: dict[str, Any] = {"weekdays": [str(d) for d in range(7)], "enabled": True, "repeat": "weekly"}
    form = ScheduleForm(request.POST or None, organization=org, initial=initial)
    status = 200
    if request.method == "POST" and form.is_valid():
        schedule = Schedule(created_by=request.user)  # type: ignore[misc]
        _assign(schedule, form.cleaned_data)
        try:
            # A double submit must not create the schedule twice (it would fire twice).
            with once.claim(request, "schedule-create", once.posted_fingerprint(request)) as claimed:
                _save(schedule, form.cleaned_data)
                audit.record(request, "schedule.create", schedule, organization=org,
                             changes=audit.diff({}, _audited(schedule)))
                claimed.done(reverse("fleet-schedule-detail", args=[schedule.code]))
        except once.AlreadyDone as done:
            return once.replay(request, done)
        except once.Refused as exc:
            form.add_error(None, exc.message)
            status = 400
        else:
            messages.success(request, f"Schedule “{schedule.name}” created.")
            _warn_of_overlaps(request, schedule)
            return redirect("fleet-schedule-detail", code=schedule.code)
    return render(request, "fleet/schedule_form.html", {
        "form": form, "schedule": None, "once_key": once.issue(request, "schedule-create")}, status=status)


@require_http_methods(["GET", "POST"])
def schedule_edit(request: HtmxHttpRequest, code: uuid.UUID) -> HttpResponse:
    membership = require_operator(request)
    schedule = schedule_for_user(request, code)
    form = ScheduleForm(request.POST or None, organization=membership.organization, initial=_initial(schedule))
    if request.method == "POST" and form.is_valid():
        before = _audited(schedule)
        _assign(schedule, form.cleaned_data)
        _save(schedule, form.cleaned_data)
        audit.record(request, "schedule.update", schedule, changes=audit.diff(before, _audited(schedule)))
        messages.success(request, f"Schedule “{schedule.name}” saved.")
        _warn_of_overlaps(request, schedule)
        return redirect("fleet-schedule-detail", code=schedule.code)
    return render(request, "fleet/schedule_form.html", {"form": form, "schedule": schedule})


@require_GET
def schedule_detail(request: HtmxHttpRequest, code: uuid.UUID) -> HttpResponse:
    current_membership(request)
    schedule = schedule_for_user(request, code)
    occurrences = (Occurrence.objects.filter(schedule=schedule).select_related("command")
                   .prefetch_related(Prefetch("command__results", queryset=DeviceResult.objects.order_by("sn"))))
    page = Paginator(occurrences, OCCURRENCES_PAGE_SIZE).get_page(request.GET.get("page"))
    context = {"schedule": schedule, "row": _row(schedule, timezone.now()), "page": page,
               "confirm_delete": False}
    if request.htmx and request.htmx.target == "occurrences":
        return render(request, "fleet/schedule_detail.html#occurrences", context)
    return render(request, "fleet/schedule_detail.html", context)


@require_POST
def schedule_pause(request: HtmxHttpRequest, code: uuid.UUID) -> HttpResponse:
    require_operator(request)
    schedule = schedule_for_user(request, code)
    schedule.enabled = not schedule.enabled
    service.prepare(schedule).save(update_fields=["enabled", "next_edge_at", "wake_at", "calls_per_edge"])
    audit.record(request, "schedule.pause", schedule, changes={"enabled": [not schedule.enabled, schedule.enabled]})
    messages.success(request, f"Schedule “{schedule.name}” {'resumed' if schedule.enabled else 'paused'}.")
    return redirect("fleet-schedule-detail", code=schedule.code)


@require_http_methods(["GET", "POST"])
def schedule_delete(request: HtmxHttpRequest, code: uuid.UUID) -> HttpResponse:
    """GET asks for confirmation; POST deletes (the commands it sent stay in the history)."""
    require_operator(request)
    schedule = schedule_for_user(request, code)
    if request.method == "POST":
        name = schedule.name
        audit.record(request, "schedule.delete", schedule, changes=audit.diff(_audited(schedule), {}))
        schedule.delete()
        messages.success(request, f"Schedule “{name}” deleted.")
        return redirect("fleet-schedules")
    return render(request, "fleet/schedule_detail.html", {
        "schedule": schedule, "row": _row(schedule, timezone.now()), "page": None, "confirm_delete": True})


@require_http_methods(["GET", "POST"])
def device_windows(request: HtmxHttpRequest) -> HttpResponse:
    """superType 2 / mode 10: send the charge/discharge windows that the inverters then follow daily."""
    membership = require_operator(request)
    form = DeviceWindowsForm(request.POST or None, organization=membership.organization,
                             initial={"target_kind": "group"})
    status = 200
    identical = None
    plan = None
    if request.method == "POST" and form.is_valid() and "yes" not in (request.POST.get("confirm"),
                                                                        request.POST.get("confirm_identical")):
        # first the cost plan, as for any command; nothing is written until it is confirmed
        data = form.cleaned_data
        target = Target(kind=data["target_kind"], group=data["group_obj"], sns=tuple(data["sns_list"]))
        try:
            plan = commands_service.plan_command(data["account"], target, data["action"])
        except CommandError as exc:
            form.add_error(None, "; ".join(exc.errors.values()))
            status = 400
    elif request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        fingerprint = once.command_fingerprint(data["account"], data["target_kind"], data["group_obj"],
                                               data["sns_list"], data["action"])
        try:
            with once.claim(request, "device-windows", fingerprint, identical=True) as claimed:
                command = service.send_action(data["account"], data["target_kind"], data["group_obj"],
                                              data["sns_list"], data["action"], user=request.user,
                                              ip=client_address(request), source="manual")
                audit.record(request, "command.create", command, organization=membership.organization,
                             changes={"action": [None, command.action], "label": [None, command.label],
                                      "state": [None, command.state]})
                claimed.done(reverse("fleet-command-detail", args=[command.code]))
        except service.EdgeRejected as exc:
            form.add_error(None, f"The command was not created: {exc}.")
        except once.AlreadyDone as done:
            return once.replay(request, done)
        except once.Identical as exc:
            identical = exc.previous
        except once.Refused as exc:
            form.add_error(None, exc.message)
            status = 400
        else:
            messages.success(request, f"Device windows sent as command {command.code}.")
            return redirect("fleet-schedules")
    skip = {"csrfmiddlewaretoken", "confirm", "confirm_identical", once.FIELD, once.IDENTICAL_FIELD}
    return render(request, "fleet/device_windows.html", {
        "form": form, "identical": identical, "once_key": once.issue(request, "device-windows"), "plan": plan,
        "posted": [(k, v) for k, values in request.POST.lists() if k not in skip for v in values]}, status=status)
