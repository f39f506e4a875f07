"""EV chargers: the list (add and remove by SN) and a detail page with status, its age and "refresh now"."""

from __future__ import annotations

import uuid

from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseStopPolling

from fleet.accounts import audit, once
from fleet.accounts.access import account_choice, charger_for_user, current_membership, require_operator
from fleet.mirror import chargers as service
from fleet.mirror.forms import ChargerForm
from fleet.models import ApiCall, Charger, SolaxAccount
from fleet.views.base import HtmxHttpRequest, confirmation, paginate


def _labels(charger: Charger) -> dict[str, str]:
    return {"status": service.STATUS_LABELS.get(charger.status, str(charger.status))
            if charger.status is not None else "",
            "mode": service.MODE_LABELS.get(charger.mode, str(charger.mode)) if charger.mode is not None else "",
            "confirmed": _confirmed(charger)}


def _confirmed(charger: Charger) -> str:
    """ "confirmed by the charger 18:47" when a callback confirmed the mode after the last status read."""
    at = charger.mode_confirmed_at
    if at is None or (charger.read_at is not None and charger.read_at > at):
        return ""
    return f"confirmed by the charger {timezone.localtime(at):%H:%M %Z}"


def _add_purpose(account: SolaxAccount) -> str:
    return f"charger-add:{account.code}"


@require_http_methods(["GET", "POST"])
def chargers(request: HtmxHttpRequest) -> HttpResponse:
    """GET lists the chargers; POST adds one by SN (and reads its status)."""
    accounts, account = account_choice(request)
    context: dict[str, object] = {"accounts": accounts, "account": account}
    if account is None:
        if request.method == "POST":
            raise Http404("No SolaX account yet.")
        return render(request, "fleet/chargers.html", context)
    form = ChargerForm(account=account)
    status = 200
    if request.method == "POST":
        require_operator(request)
        form = ChargerForm(request.POST, account=account)
        fingerprint = once.posted_fingerprint(request)
        if (earlier := once.already_done(request, _add_purpose(account), fingerprint)) is not None:
            return once.replay(request, earlier, "the charger was added once.")
        if form.is_valid():
            try:
                with once.claim(request, _add_purpose(account), fingerprint) as claimed:
                    charger = service.add_charger(account, form.cleaned_data["sn"], form.cleaned_data["label"])
                    audit.record(request, "charger.add", charger, changes=audit.created(charger, ["sn", "label"]))
                    claimed.done(reverse("fleet-charger", args=[charger.code]))
                return redirect("fleet-charger", code=charger.code)
            except once.AlreadyDone as done:
                return once.replay(request, done, "the charger was added once.")
            except once.Refused as refused:
                form.add_error(None, refused.message)
            except service.ChargerExists:
                form.add_error("sn", f"Charger {form.cleaned_data['sn']} is in the list already.")
        status = 400
    if current_membership(request).can_operate:
        context["once_key"] = once.issue(request, _add_purpose(account))
    q = request.GET.get("q", "").strip()[:40]
    rows = Charger.objects.filter(account=account)
    if q:
        rows = rows.filter(sn__icontains=q) | rows.filter(label__icontains=q)
    page = paginate(rows.order_by("sn"), request)
    context.update(form=form, q=q, page=page, share=service.daily_allowance(account),
                   rows=[(c, _labels(c)) for c in page.object_list])
    return render(request, "fleet/chargers.html", context, status=status)


@require_GET
def charger_detail(request: HtmxHttpRequest, code: uuid.UUID) -> HttpResponse:
    charger = charger_for_user(request, code)
    last = (ApiCall.objects.filter(account=charger.account, endpoint="pile_info", context__charger=charger.pk)
            .order_by("-id").first())
    context = {"charger": charger, "labels": _labels(charger), "last_call": last,
               "pending": last is not None and last.state in ("queued", "sending")}
    if request.htmx and request.htmx.target == "charger-status":
        response = render(request, "fleet/charger_detail.html#status", context)
        if not context["pending"]:
            response.status_code = HttpResponseStopPolling.status_code
        return response
    return render(request, "fleet/charger_detail.html", context)


@require_POST
def charger_refresh(request: HtmxHttpRequest, code: uuid.UUID) -> HttpResponse:
    require_operator(request)
    charger = charger_for_user(request, code)
    service.request_status(charger)
    if request.htmx:
        last = service.pending_status(charger)
        return render(request, "fleet/charger_detail.html#status", {
            "charger": charger, "labels": _labels(charger), "last_call": last, "pending": True})
    return redirect("fleet-charger", code=charger.code)


@require_http_methods(["GET", "POST"])
def charger_remove(request: HtmxHttpRequest, code: uuid.UUID) -> HttpResponse:
    """GET asks for confirmation; POST removes the charger from the dashboard (nothing in the cloud)."""
    require_operator(request)
    charger = charger_for_user(request, code)
    if request.method == "GET":
        return render(request, "fleet/charger_detail.html#confirm", {"confirm": confirmation(
            label="Confirm removal", title=f"Remove charger {charger.sn} from the dashboard?",
            text="Nothing changes in SolaX Cloud; you can add it again by its SN.",
            action=reverse("fleet-charger-remove", args=[charger.code]), button="Remove",
            cancel_url=reverse("fleet-charger", args=[charger.code]))})
    account = charger.account
    audit.record(request, "charger.remove", charger, changes={"sn": [charger.sn, None]})
    charger.delete()
    return redirect(f"{reverse('fleet-chargers')}?account={account.code}")
