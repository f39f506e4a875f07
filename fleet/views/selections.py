"""Saved selections: the list, a new one (from ticked rows, a paste, a file or a filter), edit and
delete. Operators write; viewers read."""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from fleet.accounts import audit, once
from fleet.accounts.access import account_choice, account_or_404, require_operator, selection_for_user
from fleet.commands import selections
from fleet.commands.actions import CommandError
from fleet.commands.selection_forms import SelectionForm
from fleet.models import SavedSelection
from fleet.views.base import HtmxHttpRequest, paginate


@require_GET
def selection_list(request: HtmxHttpRequest) -> HttpResponse:
    accounts, account = account_choice(request)
    context: dict[str, object] = {"accounts": accounts, "account": account}
    if account is not None:
        q = request.GET.get("q", "").strip()[:100]
        rows = SavedSelection.objects.filter(account=account).select_related("created_by").order_by("name")
        if q:
            rows = rows.filter(name__icontains=q)
        context.update(page=paginate(rows, request), q=q)
    return render(request, "fleet/selections.html", context)


def _save(request: HtmxHttpRequest, form: SelectionForm, selection: SavedSelection | None) -> SavedSelection | None:
    data = form.cleaned_data
    chosen = dict.fromkeys(data["sns"] + data["upload"])  # ordered, and a set for the filter's SNs
    if data.get("use_filter"):
        chosen.update(dict.fromkeys(selections.matching(form.account, group=data.get("group"),
                                                        min_power=data.get("min_power"),
                                                        max_power=data.get("max_power"))))
    sns = list(chosen)
    before_name, before_sns = (selection.name, list(selection.sns)) if selection is not None else (None, [])
    try:
        saved = selections.save(form.account, data["name"], sns, user=request.user, selection=selection)
    except CommandError as exc:
        for name, problem in exc.errors.items():
            form.add_error(name if name in form.fields else "sns", problem)
        return None
    audit.record(request, "selection.create" if selection is None else "selection.update", saved,
                 organization=form.account.organization,
                 changes=audit.diff({"name": before_name, **_sns_changes(before_sns, saved.sns)} if selection else {},
                                    {"name": saved.name, **_sns_changes(saved.sns, before_sns)}))
    return saved


AUDITED_SNS = 100  # a 50,000-inverter selection is logged by its count and the first SNs it gained or lost


def _sns_changes(sns: list[str], other: list[str]) -> dict[str, object]:
    """What the log keeps of a selection's SNs: how many, and (capped) those not in ``other``."""
    others = set(other)
    return {"inverters": len(sns), "sns": [sn for sn in sns if sn not in others][:AUDITED_SNS] or None}


@require_http_methods(["GET", "POST"])
def selection_new(request: HtmxHttpRequest) -> HttpResponse:
    require_operator(request)
    accounts, account = account_or_404(request)
    purpose = f"selection-create:{account.code}"
    if request.method == "POST":
        form = SelectionForm(request.POST, request.FILES, account=account)
        listed = f"{reverse('fleet-selections')}?account={account.code}"
        # an upload is part of what was submitted: the same form with another file is another request
        files = sorted((upload.name, upload.size) for upload in request.FILES.getlist("upload"))
        fingerprint = once.fingerprint(once.posted_fingerprint(request), files)
        if (earlier := once.already_done(request, purpose, fingerprint)) is not None:
            return once.replay(request, earlier, "the selection was saved once.")
        if form.is_valid():
            try:
                with once.claim(request, purpose, fingerprint) as claimed:
                    saved = _save(request, form, None)
                    if saved is None:
                        raise _NotSaved  # the form has the errors; the key stays unused
                    claimed.done(listed)
                messages.success(request, f"Saved the selection {saved.name} ({len(saved.sns)} inverters).")
                return redirect(listed)
            except once.AlreadyDone as done:
                return once.replay(request, done, "the selection was saved once.")
            except once.Refused as refused:
                form.add_error(None, refused.message)
            except _NotSaved:
                pass
        status = 400
    else:
        form = SelectionForm(account=account, initial={"sns": "\n".join(request.GET.getlist("sn"))})
        status = 200
    return render(request, "fleet/selection_form.html", {"accounts": accounts, "account": account, "form": form,
                                                         "once_key": once.issue(request, purpose)}, status=status)


class _NotSaved(Exception):
    """Raised inside a claim to roll it back when the selection could not be saved."""


@require_http_methods(["GET", "POST"])
def selection_edit(request: HtmxHttpRequest, code: uuid.UUID) -> HttpResponse:
    require_operator(request)
    selection = selection_for_user(request, code)
    account = selection.account
    if request.method == "POST":
        form = SelectionForm(request.POST, request.FILES, account=account)
        if form.is_valid() and _save(request, form, selection) is not None:
            messages.success(request, f"Saved the selection {selection.name}.")
            return redirect(f"{reverse('fleet-selections')}?account={account.code}")
        status = 400
    else:
        form = SelectionForm(account=account, initial={"name": selection.name, "sns": "\n".join(selection.sns)})
        status = 200
    return render(request, "fleet/selection_form.html",
                  {"account": account, "form": form, "selection": selection}, status=status)


@require_http_methods(["GET", "POST"])
def selection_delete(request: HtmxHttpRequest, code: uuid.UUID) -> HttpResponse:
    """GET asks for the confirmation, POST deletes. Commands and schedules keep their history."""
    require_operator(request)
    selection = selection_for_user(request, code)
    if request.method == "POST":
        name, account = selection.name, selection.account
        audit.record(request, "selection.delete", selection, organization=account.organization,
                     changes={"name": [name, None], "inverters": [len(selection.sns), None]})
        selection.delete()
        messages.success(request, f"Deleted the selection {name}.")
        return redirect(f"{reverse('fleet-selections')}?account={account.code}")
    return render(request, "fleet/selection_delete.html", {"selection": selection, "account": selection.account})
