"""Ungrouped devices: the account's inverters in no group, each with "add to group", and "look up in
the cloud" (the cloud's fuzzy member query, one budgeted read)."""

from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_POST

from fleet.accounts import audit
from fleet.accounts.access import account_choice, parse_code, require_operator
from fleet.mirror import ungrouped as service
from fleet.mirror import writes
from fleet.mirror.forms import CloudLookupForm, UngroupedAddForm
from fleet.models import ApiCall, Group, Inverter, SolaxAccount
from fleet.views.base import HtmxHttpRequest, paginate


def _context(request: HtmxHttpRequest, accounts: object, account: SolaxAccount | None) -> dict[str, object]:
    """The page: the ungrouped devices (a count and one page, both in SQL), the groups to add to, and
    the last look-up in the cloud when the address names one."""
    context: dict[str, object] = {"accounts": accounts, "account": account}
    if account is not None:
        q = request.GET.get("q", "").strip()[:40]
        page = paginate(service.ungrouped_devices(account, q), request)
        groups = Group.objects.filter(account=account, removed=False).only("code", "name").order_by("name")
        context.update(page=page, q=q, groups=list(groups), lookup_form=context.get("lookup_form"),
                       query=urlencode([(k, v) for k, v in (("account", str(account.code)), ("q", q)) if v]))
        lookup = request.GET.get("lookup")
        if lookup:
            call = ApiCall.objects.filter(account=account, code=parse_code(lookup), handler=service.LOOKUP_HANDLER,
                                          endpoint="inverter_fuzzy_query").first()
            context.update(cloud_call=call, cloud_items=writes.search_result(call) if call else None)
    return context


@require_GET
def ungrouped(request: HtmxHttpRequest) -> HttpResponse:
    accounts, account = account_choice(request)
    return render(request, "fleet/ungrouped.html", _context(request, accounts, account))


@require_POST
def ungrouped_add(request: HtmxHttpRequest) -> HttpResponse:
    """Queue a member add of an ungrouped device to a group of the same account."""
    require_operator(request)
    accounts, account = account_choice(request)
    form = UngroupedAddForm(request.POST, account=account)
    if account is not None and form.is_valid():
        sn = form.cleaned_data["sn"]
        if Inverter.objects.filter(account=account, inverter_sn=sn, removed=False).exists():
            form.add_error("sn", f"{sn} is a member of a group already.")
    if account is None or not form.is_valid():
        context = _context(request, accounts, account)
        context["form"] = form
        return render(request, "fleet/ungrouped.html", context, status=400)
    group = form.cleaned_data["group"]
    writes.request_member_add(group, form.cleaned_data["sn"])
    audit.record(request, "member.add", None, kind="member", name=form.cleaned_data["sn"],
                 organization=account.organization,
                 changes={"group": [None, group.name], "inverter_sn": [None, form.cleaned_data["sn"]]})
    return redirect(f"{reverse('fleet-group', args=[group.code])}")


@require_POST
def ungrouped_lookup(request: HtmxHttpRequest) -> HttpResponse:
    """Queue one look-up of a device in the cloud (fuzzy member query by dongle or inverter SN)."""
    require_operator(request)
    accounts, account = account_choice(request)
    form = CloudLookupForm(request.POST, account=account)
    if account is None or not form.is_valid():
        context = _context(request, accounts, account)
        context["lookup_form"] = form
        return render(request, "fleet/ungrouped.html", context, status=400)
    data = form.cleaned_data
    try:
        call = service.request_lookup(data["group"], data["wifi_sn"] or None, data["inverter_sn"] or None)
    except writes.MirrorError as exc:
        for field, problem in exc.errors.items():
            form.add_error("wifi_sn" if field == "wifiSn" else "inverter_sn" if field == "inverterSn" else None,
                           problem)
        context = _context(request, accounts, account)
        context["lookup_form"] = form
        return render(request, "fleet/ungrouped.html", context, status=400)
    query = urlencode({"account": str(account.code), "lookup": str(call.code)})
    return redirect(f"{reverse('fleet-ungrouped')}?{query}")
