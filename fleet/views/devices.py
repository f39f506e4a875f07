"""A page per inverter (its group, dongle, rated power, status and the commands it got, with its own
result in each) and the header's SN search across the organization's accounts."""

from __future__ import annotations

import uuid

from django.core.paginator import Paginator
from django.db.models import Q
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from fleet.accounts.access import current_membership, inverter_for_user
from fleet.models import Charger, DeviceResult, Group, Inverter
from fleet.views.base import HtmxHttpRequest

HISTORY_PAGE_SIZE = 25
SEARCH_SHOWN = 50
SEARCH_MIN = 3


@require_GET
def inverter_detail(request: HtmxHttpRequest, code: uuid.UUID) -> HttpResponse:
    """One inverter row. Its command history reads the (sn, command) index backwards: newest first,
    one page at a time, flat however many commands the account has."""
    inverter = inverter_for_user(request, code)
    results = (DeviceResult.objects.filter(sn=inverter.inverter_sn, command__account_id=inverter.account_id)
               .select_related("command")
               .only("sn", "state", "answer", "answered_at", "command__code", "command__label", "command__state",
                     "command__created", "command__source")
               .order_by("-command_id"))
    page = Paginator(results, HISTORY_PAGE_SIZE).get_page(request.GET.get("page"))
    # The same inverter may be a member of other groups too (one row per group).
    others = list(Inverter.objects.filter(account_id=inverter.account_id, inverter_sn=inverter.inverter_sn)
                  .exclude(pk=inverter.pk).select_related("group")
                  .only("code", "removed", "in_group", "group__name", "group__code"))
    context = {"inverter": inverter, "account": inverter.account, "group": inverter.group, "page": page,
               "others": others, "last": page.object_list[0] if page.number == 1 and page.object_list else None}
    if request.htmx and request.htmx.target == "device-history":
        return render(request, "fleet/inverter_detail.html#history", context)
    return render(request, "fleet/inverter_detail.html", context)


@require_GET
def sn_search(request: HtmxHttpRequest) -> HttpResponse:
    """The header's search: an exact inverter or dongle SN that names one device opens its page;
    otherwise the inverters, chargers and groups whose SN or name contains the text, each linked."""
    organization = current_membership(request).organization
    q = request.GET.get("q", "").strip()[:40]
    context: dict[str, object] = {"q": q}
    if not q:
        return render(request, "fleet/search.html", context)
    if len(q) < SEARCH_MIN:
        context["error"] = f"Type at least {SEARCH_MIN} characters of an SN or a group name."
        return render(request, "fleet/search.html", context, status=400)
    sn = q.upper()
    inverters = Inverter.objects.filter(account__organization=organization)
    exact = list(inverters.filter(Q(inverter_sn=sn) | Q(dongle_sn=sn)).filter(removed=False).only("code")[:2])
    if len(exact) == 1:
        return redirect("fleet-inverter", code=exact[0].code)
    chargers = Charger.objects.filter(account__organization=organization)
    exact_chargers = list(chargers.filter(sn=sn).only("code")[:2])
    if not exact and len(exact_chargers) == 1:
        return redirect("fleet-charger", code=exact_chargers[0].code)
    context.update(
        inverters=list(inverters.filter(Q(inverter_sn__icontains=q) | Q(dongle_sn__icontains=q), removed=False)
                       .select_related("group", "account")
                       .only("code", "inverter_sn", "dongle_sn", "group__name", "group__code", "account__name")
                       .order_by("inverter_sn", "pk")[:SEARCH_SHOWN]),
        chargers=list(chargers.filter(Q(sn__icontains=q) | Q(label__icontains=q)).select_related("account")
                      .only("code", "sn", "label", "account__name").order_by("sn")[:SEARCH_SHOWN]),
        groups=list(Group.objects.filter(account__organization=organization, removed=False, name__icontains=q)
                    .select_related("account").only("code", "name", "device_count", "account__name")
                    .order_by("name")[:SEARCH_SHOWN]),
        shown=SEARCH_SHOWN)
    return render(request, "fleet/search.html", context)
