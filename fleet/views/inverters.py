"""All inverters of an account across its groups, searchable, with a command for the ticked ones."""

from __future__ import annotations

from django.db.models import Q
from django.http import HttpResponse
from django.shortcuts import render
from django.utils.http import urlencode
from django.views.decorators.http import require_GET

from fleet.accounts.access import account_choice
from fleet.models import Inverter
from fleet.views.base import HtmxHttpRequest, paginate


@require_GET
def inverters(request: HtmxHttpRequest) -> HttpResponse:
    """Every member row of the account across its groups, searchable by inverter or dongle SN."""
    accounts, account = account_choice(request)
    context: dict[str, object] = {"accounts": accounts, "account": account}
    if account is not None:
        q = request.GET.get("q", "").strip()[:40]
        rows = Inverter.objects.filter(account=account, removed=False).select_related("group")
        if q:
            rows = rows.filter(Q(inverter_sn__icontains=q) | Q(dongle_sn__icontains=q) | Q(group__name__icontains=q))
        page = paginate(rows.order_by("inverter_sn", "pk").only(
            "code", "inverter_sn", "dongle_sn", "rated_power", "in_group", "group__name", "group__code"), request)
        context.update(page=page, q=q,
                       query=urlencode([(k, v) for k, v in (("account", str(account.code)), ("q", q)) if v]))
    if request.htmx and request.htmx.target == "inverter-list":
        return render(request, "fleet/inverters.html#list", context)
    return render(request, "fleet/inverters.html", context)
