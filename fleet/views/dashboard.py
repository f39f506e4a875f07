from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from fleet.access import SESSION_KEY, current_membership
from fleet.budget import budget_view
from fleet.models import Membership
from fleet.views.base import HtmxHttpRequest


@require_GET
def dashboard(request: HtmxHttpRequest) -> HttpResponse:
    membership = current_membership(request)
    accounts = list(membership.organization.accounts.all())
    views = [budget_view(account) for account in accounts]
    return render(request, "fleet/dashboard.html", {"accounts": accounts, "budget_views": views})


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
    import uuid

    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
