"""Four eyes: commands over the safety envelope's size threshold wait here for a second operator,
who sees the plan and approves (the calls are queued) or rejects (nothing is sent)."""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from fleet.accounts import audit
from fleet.accounts.access import command_for_user, current_membership, require_operator
from fleet.commands import service
from fleet.commands.actions import CommandError
from fleet.models import Command, CommandState
from fleet.views.base import HtmxHttpRequest, paginate


@require_GET
def approval_list(request: HtmxHttpRequest) -> HttpResponse:
    organization = current_membership(request).organization
    waiting = (Command.objects.filter(account__organization=organization, state=CommandState.APPROVAL)
               .select_related("account", "created_by").order_by("created"))
    return render(request, "fleet/approvals.html", {"page": paginate(waiting, request)})


@require_POST
def command_approve(request: HtmxHttpRequest, code: uuid.UUID) -> HttpResponse:
    require_operator(request)
    command = command_for_user(request, code)
    decision = request.POST.get("decision")
    try:
        if decision == "approve":
            before = command.state
            approved = service.approve_command(command, user=request.user)
            audit.record(request, "command.approve", approved, changes={"state": [before, approved.state]})
            staged = " (the canary's first; the rest after its results)" if command.rollout_stage else ""
            messages.success(request, f"Approved: {command.label}. Its calls are queued{staged}.")
        elif decision == "reject":
            before = command.state
            rejected = service.reject_command(command, user=request.user)
            audit.record(request, "command.reject", rejected, changes={"state": [before, rejected.state]})
            messages.success(request, f"Rejected: {command.label}. Nothing was sent.")
        else:
            messages.error(request, "Choose approve or reject.")
    except CommandError as exc:
        messages.error(request, "; ".join(exc.errors.values()))
    return redirect("fleet-command-detail", code=command.code)
