"""Control commands: the new-command page (target, action, cost plan, confirmation), the history
and a command's detail with its live progress."""

from __future__ import annotations

import uuid
from datetime import datetime, time, timedelta

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseStopPolling

from fleet import command_tracking, commands
from fleet.access import account_choice, current_membership, require_operator
from fleet.command_forms import CommandForm, initial_from_query
from fleet.models import ApiCall, Command, CommandKind, CommandState, Membership, Resolution, SolaxAccount, TargetKind
from fleet.views.base import HtmxHttpRequest

PAGE_SIZE = 50
LIVE_STATES = (CommandState.QUEUED, CommandState.SENDING, CommandState.ACCEPTED, CommandState.RUNNING)


def _command_for(request: HtmxHttpRequest, code: uuid.UUID) -> Command:
    from django.http import Http404

    org = current_membership(request).organization
    command = (Command.objects.select_related("account", "group", "created_by", "resolved_by", "retry_of")
               .filter(code=code, account__organization=org).first())
    if command is None:
        raise Http404("No such command in your organization.")
    return command


def _client_ip(request: HtmxHttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


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
    if request.POST.get("confirm") != "yes":
        context["plan"] = form.plan
        context["posted"] = [(k, v) for k, values in request.POST.lists() if k != "csrfmiddlewaretoken"
                             for v in values]
        return render(request, "fleet/command_new.html", context)
    command = commands.create_command(account, form.command_target, form.action, user=request.user,
                                      ip=_client_ip(request),
                                      source="retry" if form.retry_command else "manual",
                                      retry_of=form.retry_command)
    messages.success(request, f"Queued: {command.label}.")
    return redirect("fleet-command-detail", code=command.code)


@require_GET
def command_list(request: HtmxHttpRequest) -> HttpResponse:
    membership = current_membership(request)
    accounts, account = account_choice(request)
    context: dict[str, object] = {"account": account, "accounts": accounts}
    if account is None:
        return render(request, "fleet/command_list.html", context)
    context.update(_history(request, account, membership))
    if request.htmx and request.htmx.target == "command-history":
        return render(request, "fleet/command_list.html#history", context)
    return render(request, "fleet/command_list.html", context)


def _parse_day(text: str) -> datetime | None:
    try:
        day = datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError:
        return None
    return timezone.make_aware(datetime.combine(day, time.min))


def _history(request: HtmxHttpRequest, account: SolaxAccount, membership: Membership) -> dict[str, object]:
    history = Command.objects.filter(account=account)
    get = request.GET
    filters = {name: get.get(name, "").strip() for name in ("state", "kind", "target", "user", "since", "until")}
    errors = []
    if filters["state"]:
        if filters["state"] in CommandState.values:
            history = history.filter(state=filters["state"])
        else:
            errors.append("Unknown state.")
    if filters["kind"]:
        if filters["kind"] in CommandKind.values:
            history = history.filter(kind=filters["kind"])
        else:
            errors.append("Unknown kind.")
    if filters["target"]:
        if filters["target"] in TargetKind.values:
            history = history.filter(target_kind=filters["target"])
        else:
            errors.append("Unknown target.")
    people = list(membership.organization.memberships.select_related("user").order_by("user__username"))
    if filters["user"]:
        match = [m.user_id for m in people if m.user.username == filters["user"]]
        if match:
            history = history.filter(created_by_id=match[0])
        else:
            errors.append("No such person in your organization.")
    for name, op in (("since", "gte"), ("until", "lt")):
        if filters[name]:
            start = _parse_day(filters[name])
            if start is None:
                errors.append(f"'{name}' must be a date like 2026-01-31.")
                continue
            history = history.filter(**{f"created__{op}": start + (timedelta(days=1) if op == "lt" else timedelta())})
    if errors:
        history = history.none()
    history = history.select_related("created_by", "group").only(
        "code", "label", "kind", "target_kind", "state", "created", "created_by__username", "group__name",
        "devices_total", "devices_answered", "devices_succeeded", "devices_failed", "resolution", "source", "sns")
    page = Paginator(history.order_by("-created", "-id"), PAGE_SIZE).get_page(get.get("page"))
    query = urlencode([(k, v) for k, v in filters.items() if v])
    return {"page": page, "filters": filters, "filter_errors": errors, "states": CommandState.choices,
            "kinds": CommandKind.choices, "targets": TargetKind.choices, "people": people,
            "filter_query": query}


@require_GET
def command_detail(request: HtmxHttpRequest, code: uuid.UUID) -> HttpResponse:
    membership = current_membership(request)
    command = _command_for(request, code)
    done = command.state not in LIVE_STATES
    context: dict[str, object] = {
        "command": command, "done": done, "membership": membership, "resolutions": Resolution.choices,
        "results": command.results.order_by("sn"),
        "unmatched": command_tracking.unmatched_answers(command),
        "api_calls": (ApiCall.objects.filter(origin_code=command.code)
                      .only("code", "created", "endpoint", "state", "priority", "attempts", "http_status",
                            "vendor_code", "error", "response", "sent_at", "finished_at", "purpose")
                      .order_by("created", "id")),
    }
    if request.htmx and request.htmx.target == "command-progress":
        response = render(request, "fleet/command_detail.html#progress", context)
        # 286 tells htmx to stop polling; the last state is still swapped in
        return HttpResponseStopPolling(response.content) if done else response
    context["retries"] = command.retries.order_by("-created").only("code", "label", "state", "created")
    context["can_retry"] = done and (command.devices_failed > 0)
    return render(request, "fleet/command_detail.html", context)


@require_POST
def command_resolve(request: HtmxHttpRequest, code: uuid.UUID) -> HttpResponse:
    require_operator(request)
    command = _command_for(request, code)
    try:
        again = commands.resolve_unknown(command, request.POST.get("resolution", ""), user=request.user,
                                         ip=_client_ip(request))
    except commands.CommandError as exc:
        messages.error(request, "; ".join(exc.errors.values()))
        return redirect("fleet-command-detail", code=command.code)
    if again is not None:
        messages.success(request, f"Sent again: {again.label}.")
        return redirect("fleet-command-detail", code=again.code)
    messages.success(request, f"Recorded: {command.get_resolution_display()}.")
    return redirect("fleet-command-detail", code=command.code)
