"""Ungrouped devices: the account's inverters in no group, each with "add to group"."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_POST

from fleet.accounts import audit
from fleet.accounts.access import account_choice, require_operator
from fleet.mirror import writes
from fleet.mirror.forms import UngroupedAddForm
from fleet.mirror.ungrouped import ungrouped_devices
from fleet.models import Group, Inverter, SolaxAccount
from fleet.views.base import PAGE_SIZE, HtmxHttpRequest


def _context(request: HtmxHttpRequest, accounts: object, account: SolaxAccount | None) -> dict[str, object]:
    context: dict[str, object] = {"accounts": accounts, "account": account}
    if account is not None:
        q = request.GET.get("q", "").strip()[:40]
        page = Paginator(ungrouped_devices(account, q), PAGE_SIZE).get_page(request.GET.get("page"))
        groups = Group.objects.filter(account=account, removed=False).only("code", "name").order_by("name")
        context.update(page=page, q=q, groups=list(groups),
                       query=urlencode([(k, v) for k, v in (("account", str(account.code)), ("q", q)) if v]))
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
