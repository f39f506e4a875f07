"""A person's own settings: the zone every page shows times in."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from fleet.accounts.access import activate_zone, current_membership
from fleet.accounts.forms import ZoneForm
from fleet.views.base import HtmxHttpRequest


@require_http_methods(["GET", "POST"])
def my_zone(request: HtmxHttpRequest) -> HttpResponse:
    """Choose the zone of every time shown (per organization membership); a viewer may too."""
    membership = current_membership(request)
    default_zone = getattr(membership, "default_zone", None) or "UTC"
    if request.method == "GET":
        form = ZoneForm(initial={"timezone": membership.timezone}, default_zone=default_zone)
        return render(request, "fleet/my_zone.html", {"form": form, "default_zone": default_zone})
    form = ZoneForm(request.POST, default_zone=default_zone)
    if not form.is_valid():
        return render(request, "fleet/my_zone.html", {"form": form, "default_zone": default_zone}, status=400)
    membership.timezone = form.cleaned_data["timezone"]
    membership.save(update_fields=["timezone"])
    activate_zone(membership)
    messages.success(request, f"Times are shown in {membership.timezone or default_zone}.")
    return redirect("fleet-my-zone")
