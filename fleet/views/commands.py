"""Control commands: the new-command page (target, action, cost plan, confirmation), the history
and a command's detail with its live progress."""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.core.paginator import Page, Paginator
from django.db.models import Count, Q
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseStopPolling

from fleet.accounts import audit, once
from fleet.accounts.access import account_choice, command_for_user, current_membership, require_operator
from fleet.commands import rollout, service, tracking
from fleet.commands.actions import CommandError
from fleet.commands.forms import CommandForm, initial_from_query
from fleet.models import (
    ApiCall,
    Charger,
    Command,
    CommandKind,
    CommandState,
    DeviceResult,
    DeviceState,
    Group,
    Inverter,
    Membership,
    RolloutStage,
    SolaxAccount,
    TargetKind,
)
from fleet.models.commands import ACTIVE_COMMAND_STATES
from fleet.views.base import HtmxHttpRequest
from fleet.views.filters import by_choice, by_days

PAGE_SIZE = 50
GROUPS_SEARCHED = 200
MAX_PAGE = 10_000  # a deeper page number is this one (an OFFSET must stay a number the database takes)


class PeekPage:
    """A page of the history without a total: it reads one row more than it shows to know whether an
    older page exists. ``COUNT(*)`` over 200,000 commands was half of every page's time; "page 3 ·
    commands 101-150" and "Older" need no count (see the benchmark in tests/bench/test_bench_commands.py)."""

    def __init__(self, rows: object, number: object, size: int) -> None:
        try:
            self.number = min(max(1, int(str(number))), MAX_PAGE)
        except ValueError:
            self.number = 1
        start = (self.number - 1) * size
        fetched = list(rows[start:start + size + 1])  # type: ignore[index]
        self.object_list = fetched[:size]
        self.has_next = len(fetched) > size
        self.has_previous = self.number > 1
        self.start_index = start + 1
        self.end_index = start + len(self.object_list)

    @property
    def next_page_number(self) -> int:
        return self.number + 1

    @property
    def previous_page_number(self) -> int:
        return self.number - 1



def _client_ip(request: HtmxHttpRequest) -> str | None:
    """The client's address behind the trusted proxies (the same the audit log keeps)."""
    return audit.address_of(request)


@require_http_methods(["GET", "POST"])
def command_new(request: HtmxHttpRequest) -> HttpResponse:
    require_operator(request)
    accounts, account = account_choice(request)
    context: dict[str, object] = {"account": account, "accounts": accounts}
    if account is None:
        return render(request, "fleet/command_new.html", context)
    if request.method == "GET":
        form = CommandForm(account=account, initial=initial_from_query(request.GET, account))
        context["form"] = form
        if request.htmx and request.htmx.target == "action-fields":
            return render(request, "fleet/command_new.html#fields", context)
        return render(request, "fleet/command_new.html", context)
    form = CommandForm(request.POST, account=account)
    context["form"] = form
    if not form.is_valid() or form.command_target is None:
        return render(request, "fleet/command_new.html", context, status=400)
    target = form.command_target
    purpose = f"command:{account.code}"
    named = (*target.sns, *(f"group:{g.code}" for g in target.groups),
             *((f"selection:{target.selection.code}",) if target.selection else ()))
    fingerprint = once.command_fingerprint(account, target.kind, target.group, named, form.action)
    if request.POST.get("confirm") != "yes":
        return _show_plan(request, context, form, purpose, fingerprint)
    try:
        # The plan's one-time key is consumed in the transaction that creates the command.
        with once.claim(request, purpose, fingerprint, identical=True) as claimed:
            command = service.create_command(account, target, form.action, user=request.user,
                                              ip=_client_ip(request),
                                              source="retry" if form.retry_command else "manual",
                                              retry_of=form.retry_command, start_by=form.start_by,
                                              staged=form.staged)
            audit.record(request, "command.create", command, organization=account.organization,
                         changes={"action": [None, command.action], "label": [None, command.label],
                                  "state": [None, command.state]})
            claimed.done(reverse("fleet-command-detail", args=[command.code]))
    except once.AlreadyDone as done:
        return once.replay(request, done)
    except once.Identical as exc:
        context["identical"] = exc.previous
        return _show_plan(request, context, form, purpose, fingerprint)
    except once.Refused as exc:
        context["once_error"] = exc.message
        return _show_plan(request, context, form, purpose, fingerprint, status=400)
    if command.state == CommandState.APPROVAL:
        messages.warning(request, f"Waiting for a second operator's approval: {command.label}. Nothing is sent before.")
    else:
        messages.success(request, f"Queued: {command.label}.")
    return redirect("fleet-command-detail", code=command.code)


def _show_plan(request: HtmxHttpRequest, context: dict[str, object], form: CommandForm, purpose: str,
               fingerprint: str, status: int = 200) -> HttpResponse:
    """The cost plan with its confirmation form, which carries a one-time key for exactly this plan."""
    skip = {"csrfmiddlewaretoken", "confirm", once.FIELD, once.IDENTICAL_FIELD}
    context.update(plan=form.plan, once_key=once.issue(request, purpose, fingerprint),
                   posted=[(k, v) for k, values in request.POST.lists() if k not in skip for v in values])
    return render(request, "fleet/command_new.html", context, status=status)


@require_GET
def command_list(request: HtmxHttpRequest) -> HttpResponse:
    membership = current_membership(request)
    accounts, account = account_choice(request)
    context: dict[str, object] = {"account": account, "accounts": accounts}
    if account is None:
        return render(request, "fleet/command_list.html", context)
    context.update(_history(request, account, membership))
    if request.htmx and request.htmx.target in ("command-history", "history-rows"):
        return render(request, "fleet/command_list.html#history", context)
    return render(request, "fleet/command_list.html", context)


def _history(request: HtmxHttpRequest, account: SolaxAccount, membership: Membership) -> dict[str, object]:
    history = Command.objects.filter(account=account)
    get = request.GET
    filters = {name: get.get(name, "").strip()[:100]
               for name in ("state", "kind", "target", "user", "since", "until", "sn", "group")}
    errors: list[str] = []
    history = by_choice(history, filters["state"], CommandState.values, "state", "Unknown state.", errors)
    history = by_choice(history, filters["kind"], CommandKind.values, "kind", "Unknown kind.", errors)
    history = by_choice(history, filters["target"], TargetKind.values, "target_kind", "Unknown target.", errors)
    people = list(membership.organization.memberships.select_related("user").order_by("user__username"))
    if filters["user"]:
        match = [m.user_id for m in people if m.user.username == filters["user"]]
        if match:
            history = history.filter(created_by_id=match[0])
        else:
            errors.append("No such person in your organization.")
    if filters["sn"]:
        # exact SN (inverter or charger): the (sn, command) index names the commands that reached it
        history = history.filter(id__in=DeviceResult.objects.filter(sn=filters["sn"].upper()).values("command_id"))
    if filters["group"]:
        # a group's name, in part: the account's few groups first, then the commands to them (one or several)
        group_ids = list(Group.objects.filter(account=account, name__icontains=filters["group"])
                         .values_list("id", flat=True)[:GROUPS_SEARCHED])
        if group_ids:
            several = Command.groups.through.objects.filter(group_id__in=group_ids).values("command_id")
            history = history.filter(Q(group_id__in=group_ids) | Q(id__in=several))
        else:
            errors.append(f"No group's name contains “{filters['group']}”.")
    history = by_days(history, filters["since"], filters["until"], "created", errors)
    if errors:
        history = history.none()
    history = history.select_related("created_by", "group").only(
        "code", "label", "kind", "target_kind", "state", "created", "created_by__username", "group__name",
        "devices_total", "devices_answered", "devices_succeeded", "devices_failed", "resolution", "source",
        "rollout_stage")
    page = PeekPage(history.order_by("-created", "-id"), get.get("page") or 1, PAGE_SIZE)
    query = urlencode([(k, v) for k, v in filters.items() if v])
    return {"page": page, "filters": filters, "filter_errors": errors, "states": CommandState.choices,
            "kinds": CommandKind.choices, "targets": TargetKind.choices, "people": people,
            "filter_query": query}


RESULTS_PAGE_SIZE = 100
SILENT = "silent"
SILENT_SHOWN = 100
CALLS_SHOWN = 50


def _batch_counts(command: Command) -> dict[str, int]:
    """How many of the command's batches are in each state, and how many have left (one query)."""
    counts = dict(command.batches.values_list("state").annotate(n=Count("id")).order_by())
    total = sum(counts.values())
    unsent = counts.get(CommandState.QUEUED, 0) + counts.get(CommandState.CANCELLED, 0)
    return {"total": total, "sent": total - unsent, "unsent": counts.get(CommandState.QUEUED, 0),
            "cancelled": counts.get(CommandState.CANCELLED, 0)}


@require_GET
def command_detail(request: HtmxHttpRequest, code: uuid.UUID) -> HttpResponse:
    """The command's progress (counts only: what the 2 s poll asks for), then its devices, paged and
    filterable by state or SN, and its first API calls. Flat in time and memory at 50,000 devices."""
    membership = current_membership(request)
    command = command_for_user(request, code, without_sns=True)
    done = command.state not in ACTIVE_COMMAND_STATES
    # a rollout that waits for an operator changes only when one clicks: no need to poll it
    waiting = command.rollout_stage in (RolloutStage.HALTED, RolloutStage.PASSED)
    batches = _batch_counts(command)
    progress = tracking.progress(command)
    context: dict[str, object] = {"command": command, "done": done or waiting, "membership": membership,
                                  "batches": batches, "rollout": _rollout_view(command, batches),
                                  "unmatched": tracking.unmatched_answers(command), "progress": progress}
    if command.state == CommandState.UNKNOWN and not command.resolution and membership.can_operate:
        context["resolve_once"] = once.issue(request, f"resolve:{command.code}")
    if request.htmx and request.htmx.target == "command-progress":
        response = render(request, "fleet/command_detail.html#progress", context)
        # 286 tells htmx to stop polling; the last state is still swapped in
        return HttpResponseStopPolling(response.content) if done or waiting else response
    state = request.GET.get("state", "")
    q = request.GET.get("q", "").strip()[:40]
    results = command.results.only("command_id", "sn", "dongle_sn", "state", "answer", "answered_at")
    silent_states = tracking.SILENT_STATES if command.state == CommandState.RUNNING else (DeviceState.NO_ANSWER,)
    if state in DeviceState.values:
        results = results.filter(state=state)
    elif state == SILENT:
        results = results.filter(state__in=silent_states)
    if progress.silent and not state and not q and request.GET.get("page", "1") == "1":
        # the silent devices first, in their own table (the (command, state) index: no sort of them all)
        context["silent_rows"] = list(command.results.filter(state__in=silent_states)
                                      .only("command_id", "sn", "dongle_sn", "state", "answer")
                                      .order_by("sn")[:SILENT_SHOWN])
    if q:
        results = results.filter(sn__icontains=q)
    calls = ApiCall.objects.filter(origin_code=command.code)
    results_page = Paginator(results.order_by("sn"), RESULTS_PAGE_SIZE).get_page(request.GET.get("page"))
    _link_devices(command, results_page)
    context.update(
        results=results_page,
        result_states=[(SILENT, "silent (offline?)"), *DeviceState.choices], state=state, q=q,
        result_query=urlencode([(k, v) for k, v in (("state", state), ("q", q)) if v]),
        api_calls=list(calls.only("code", "created", "endpoint", "state", "priority", "attempts", "http_status",
                                  "vendor_code", "error", "response", "sent_at", "finished_at", "purpose")
                       .order_by("created", "id")[:CALLS_SHOWN]),
        api_calls_total=calls.count(),
        retries=command.retries.order_by("-created").only("code", "label", "state", "created"),
        can_retry=done and command.devices_failed > 0,
        can_cancel=batches["unsent"] > 0 and membership.can_operate and command.state != CommandState.APPROVAL,
    )
    if request.htmx and request.htmx.target == "device-results":
        return render(request, "fleet/command_detail.html#devices", context)
    return render(request, "fleet/command_detail.html", context)


def _rollout_view(command: Command, batches: dict[str, int]) -> dict[str, object] | None:
    """What the detail page says of a staged rollout (no query: the counts are on the command)."""
    if not command.rollout_stage:
        return None
    return {"stage": command.rollout_stage, "stage_label": command.get_rollout_stage_display(),
            "canary": command.rollout_canary, "asked": command.rollout_canary_asked,
            "threshold": command.rollout_threshold, "auto": command.rollout_auto, "note": command.rollout_note,
            "can_continue": command.rollout_stage in (RolloutStage.HALTED, RolloutStage.PASSED),
            "held": command.rollout_stage in rollout.WAITING and batches["unsent"] > 0}


@require_POST
def command_rollout(request: HtmxHttpRequest, code: uuid.UUID) -> HttpResponse:
    """An operator continues a staged rollout that halted, or passed and waits for a click."""
    require_operator(request)
    command = command_for_user(request, code)
    try:
        before = command.rollout_stage
        continued = rollout.resume(command, user=request.user)
        audit.record(request, "command.continue", continued,
                     changes={"rollout stage": [before, continued.rollout_stage]})
    except CommandError as exc:
        messages.error(request, "; ".join(exc.errors.values()))
    else:
        messages.success(request, "Continued: the rest of the devices are queued.")
    return redirect("fleet-command-detail", code=command.code)


def _link_devices(command: Command, page: Page) -> None:  # type: ignore[type-arg]
    """Give each result on the page the code of its device page (one query for the page's SNs)."""
    rows = list(page.object_list)
    page.object_list = rows
    sns = [r.sn for r in rows]
    if not sns:
        return
    if command.kind == CommandKind.CHARGER_MODE:
        codes = dict(Charger.objects.filter(account_id=command.account_id, sn__in=sns).values_list("sn", "code"))
        url_name = "fleet-charger"
    else:
        codes = dict(Inverter.objects.filter(account_id=command.account_id, inverter_sn__in=sns, removed=False)
                     .order_by("-pk").values_list("inverter_sn", "code"))
        url_name = "fleet-inverter"
    for r in rows:
        code = codes.get(r.sn)
        r.device_url = reverse(url_name, args=[code]) if code else ""  # type: ignore[attr-defined]


@require_POST
def command_cancel(request: HtmxHttpRequest, code: uuid.UUID) -> HttpResponse:
    """Cancel what of a command has not been sent yet; sent batches are still followed."""
    require_operator(request)
    command = command_for_user(request, code)
    try:
        before = command.state
        cancelled = service.cancel_command(command, user=request.user)
        command.refresh_from_db(fields=["state"])
        audit.record(request, "command.cancel", command, changes={"state": [before, command.state],
                                                                  "batches cancelled": [None, cancelled]})
    except CommandError as exc:
        messages.error(request, "; ".join(exc.errors.values()))
    else:
        messages.success(request, f"Cancelled {cancelled} unsent batch{'es' if cancelled != 1 else ''}: "
                                  "they will not be sent.")
    return redirect("fleet-command-detail", code=command.code)


@require_POST
def command_resolve(request: HtmxHttpRequest, code: uuid.UUID) -> HttpResponse:
    require_operator(request)
    command = command_for_user(request, code)
    resolution = request.POST.get("resolution", "")
    try:
        # A second submit of the decision (double click, retry) is shown what the first one did.
        with once.claim(request, f"resolve:{command.code}", once.fingerprint("resolve", resolution)) as claimed:
            before = command.resolution
            again = service.resolve_unknown(command, resolution, user=request.user, ip=_client_ip(request))
            command.refresh_from_db(fields=["resolution"])
            changes: dict[str, list[object]] = {"resolution": [before, command.resolution]}
            if again is not None:
                changes["sent again as"] = [None, str(again.code)]
            audit.record(request, "command.resolve", command, changes=changes)
            claimed.done(reverse("fleet-command-detail", args=[(again or command).code]))
    except once.AlreadyDone as done:
        return once.replay(request, done)
    except once.Refused as exc:
        messages.error(request, exc.message)
        return redirect("fleet-command-detail", code=command.code)
    except CommandError as exc:
        messages.error(request, "; ".join(exc.errors.values()))
        return redirect("fleet-command-detail", code=command.code)
    if again is not None:
        messages.success(request, f"Sent again: {again.label}.")
        return redirect("fleet-command-detail", code=again.code)
    messages.success(request, f"Recorded: {command.get_resolution_display()}.")
    return redirect("fleet-command-detail", code=command.code)
