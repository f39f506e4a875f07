from __future__ import annotations

import uuid

from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from fleet.accounts.access import SESSION_KEY, current_membership
from fleet.models import Charger, Command, CommandState, Group, Inverter, Membership
from fleet.models.commands import ACTIVE_COMMAND_STATES
from fleet.pipeline.report import budget_view
from fleet.views.base import HtmxHttpRequest


@require_GET
def dashboard(request: HtmxHttpRequest) -> HttpResponse:
    membership = current_membership(request)
    accounts = list(membership.organization.accounts.all())
    views = [budget_view(account) for account in accounts]
    org = membership.organization
    fleet_size = {
        "groups": Group.objects.filter(account__organization=org, removed=False).count(),
        "inverters": Inverter.objects.filter(account__organization=org, removed=False).count(),
        "chargers": Charger.objects.filter(account__organization=org).count(),
    }
    mine = Command.objects.filter(account__organization=org)
    in_flight = mine.filter(state__in=ACTIVE_COMMAND_STATES).only(
        "code", "label", "state", "devices_answered", "devices_total").order_by("-created")[:10]
    attention = mine.filter(state=CommandState.UNKNOWN).select_related("created_by").only(
        "code", "label", "created", "created_by__username").order_by("-created")[:20]
    awaiting = mine.filter(state=CommandState.APPROVAL).select_related("created_by").only(
        "code", "label", "created", "created_by__username").order_by("created")[:20]
    context = {"accounts": accounts, "budget_views": views, "fleet_size": fleet_size,
               "in_flight": list(in_flight), "attention": list(attention), "awaiting": list(awaiting)}
    if request.htmx and request.htmx.target == "dashboard-panels":
        return render(request, "fleet/dashboard.html#panels", context)
    return render(request, "fleet/dashboard.html", context)


@require_POST
def switch_organization(request: HtmxHttpRequest) -> HttpResponse:
    """Make another of the user's organizations the current one."""
    code = request.POST.get("organization", "")
    membership = None
    if _is_uuid(code):
        mine = Membership.objects.filter(user_id=request.user.pk)  # type: ignore[misc]
        membership = mine.filter(organization__code=code).select_related("organization").first()
    if membership is None:
        raise PermissionDenied("You are not a member of that organization.")
    request.session[SESSION_KEY] = str(membership.organization.code)
    return redirect("fleet-dashboard")


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
