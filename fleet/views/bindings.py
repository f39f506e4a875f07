"""Device binding: paste or upload registration numbers; requests of at most 100; each SN's outcome."""

from __future__ import annotations

from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods
from django_htmx.http import HttpResponseStopPolling

from fleet.accounts import audit, once
from fleet.accounts.access import account_choice, current_membership, require_operator
from fleet.mirror import bindings
from fleet.mirror.forms import MAX_SNS_PER_SUBMISSION, BindingForm
from fleet.models import BindingRequest, SolaxAccount
from fleet.views.base import HtmxHttpRequest

RECENT_REQUESTS = 20


@require_http_methods(["GET", "POST"])
def binding(request: HtmxHttpRequest) -> HttpResponse:
    accounts, account = account_choice(request)
    context: dict[str, object] = {"accounts": accounts, "account": account, "limit": MAX_SNS_PER_SUBMISSION}
    if account is None:
        if request.method == "POST":
            raise Http404("No SolaX account yet.")
        return render(request, "fleet/binding.html", context)
    form = BindingForm()
    status = 200
    if request.method == "POST":
        require_operator(request)
        form = BindingForm(request.POST, request.FILES)
        if form.is_valid():
            back = f"{reverse('fleet-binding')}?account={account.code}"
            sns = form.cleaned_data["sn_list"]
            try:
                with once.claim(request, _purpose(account), once.fingerprint("binding", sorted(sns))) as claimed:
                    for submitted in bindings.request_bindings(account, sns, request.user):
                        audit.record(request, "binding.submit", submitted, organization=account.organization,
                                     name=f"{len(submitted.sns)} registration number(s) in {account.name}",
                                     changes={"sns": [None, submitted.sns]})
                    claimed.done(back)
            except once.AlreadyDone as done:
                return once.replay(request, done)
            except once.Refused as exc:
                form.add_error(None, exc.message)
            else:
                return redirect(back)
        status = 400
    if current_membership(request).can_operate:
        context["once_key"] = once.issue(request, _purpose(account))
    requests_ = list(BindingRequest.objects.filter(account=account).order_by("-created", "-id")[:RECENT_REQUESTS])
    context.update(form=form, requests=requests_, categories=bindings.CATEGORIES,
                   pending=any(r.state == "queued" for r in requests_))
    if request.htmx and request.htmx.target == "binding-requests":
        response = render(request, "fleet/binding.html#requests", context)
        if not context["pending"]:
            response.status_code = HttpResponseStopPolling.status_code
        return response
    return render(request, "fleet/binding.html", context, status=status)


def _purpose(account: SolaxAccount) -> str:
    return f"binding:{account.code}"
