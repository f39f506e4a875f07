"""Groups: the paged, sorted, searchable list; create, rename, delete, batch delete; sync; CSV export."""

from __future__ import annotations

import uuid

from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseStopPolling, trigger_client_event

from fleet.accounts import audit, once
from fleet.accounts.access import (
    account_choice,
    account_or_404,
    cloud_search_for_user,
    current_membership,
    group_for_user,
    parse_code,
    require_operator,
    sync_run_for_user,
)
from fleet.mirror import sync, writes
from fleet.mirror.forms import CloudSearchForm, GroupNameForm, SelectionForm
from fleet.models import ApiCall, Group, SolaxAccount, SyncRun
from fleet.views.base import HtmxHttpRequest, confirmation, csv_response, error_status, paginate, to_list

SORTS = {"name": "name", "-name": "-name", "members": "device_count", "-members": "-device_count",
         "updated": "remote_updated", "-updated": "-remote_updated"}




# The page ---------------------------------------------------------------------------------

def _list_context(request: HtmxHttpRequest, account: SolaxAccount) -> dict[str, object]:
    q = request.GET.get("q", "").strip()[:100]
    sort = request.GET.get("sort", "name")
    if sort not in SORTS:
        sort = "name"
    show_removed = request.GET.get("removed") == "1"
    groups = Group.objects.filter(account=account, removed=show_removed)
    if q:
        groups = groups.filter(name__icontains=q)
    page = paginate(groups.order_by(SORTS[sort], "pk").only(
        "code", "name", "device_count", "remote_updated", "synced_at", "removed"), request)
    changes = writes.changes_for(account, "group")
    rows = [(group, changes.by_code.get(str(group.code))) for group in page.object_list]
    query = urlencode([(k, v) for k, v in (("account", str(account.code)), ("q", q), ("sort", sort),
                                            ("removed", "1" if show_removed else "")) if v])
    context: dict[str, object] = {"page": page, "rows": rows, "changes": changes, "q": q, "sort": sort,
                                  "query": query, "show_removed": show_removed}
    if current_membership(request).can_operate:
        context["once_key"] = once.issue(request, _group_add_purpose(account))
    return context


def _group_add_purpose(account: SolaxAccount) -> str:
    return f"group-add:{account.code}"


def _render_page(request: HtmxHttpRequest, accounts: list[SolaxAccount], account: SolaxAccount | None,
                 *, form: GroupNameForm | None = None, search_form: CloudSearchForm | None = None,
                 selection_errors: object = None, status: int = 200) -> HttpResponse:
    context: dict[str, object] = {"accounts": accounts, "account": account, "selection_errors": selection_errors}
    if account is None:
        return render(request, "fleet/groups.html", context)
    context.update(_list_context(request, account))
    context["form"] = form or GroupNameForm(account=account)
    if request.htmx and request.htmx.target == "groups-list":
        return render(request, "fleet/groups.html#list", context, status=error_status(request, status))
    context["run"] = SyncRun.objects.filter(account=account).first()
    context["sync_estimate"] = sync.estimated_calls(account)
    context["search_form"] = search_form or CloudSearchForm()
    cloud = request.GET.get("cloud")
    if cloud:
        call = ApiCall.objects.filter(account=account, code=parse_code(cloud), endpoint="group_fuzzy_query").first()
        context.update(cloud_call=call, cloud_items=writes.search_result(call) if call else None)
    return render(request, "fleet/groups.html", context, status=status)


@require_GET
def groups(request: HtmxHttpRequest) -> HttpResponse:
    accounts, account = account_choice(request)
    return _render_page(request, accounts, account)


def _back(request: HtmxHttpRequest, account: SolaxAccount) -> HttpResponse:
    """After a write: the list again (HTMX) or the page (plain POST, redirect-after-POST)."""
    if request.htmx:
        context = _list_context(request, account)
        return render(request, "fleet/groups.html#list", {"account": account, **context})
    return redirect(f"{reverse('fleet-groups')}?account={account.code}")


@require_POST
def group_add(request: HtmxHttpRequest) -> HttpResponse:
    require_operator(request)
    accounts, account = account_or_404(request)
    form = GroupNameForm(request.POST, account=account)
    if not form.is_valid():
        return _render_page(request, accounts, account, form=form, status=400)
    try:
        with once.claim(request, _group_add_purpose(account), once.posted_fingerprint(request)) as claimed:
            writes.request_group_add(account, form.cleaned_data["name"])
            audit.record(request, "group.create", None, kind="group", organization=account.organization,
                         name=form.cleaned_data["name"], changes={"name": [None, form.cleaned_data["name"]],
                                                                  "account": [None, account.name]})
            claimed.done(f"{reverse('fleet-groups')}?account={account.code}")
    except once.AlreadyDone as done:
        return once.replay(request, done)
    except once.Refused as exc:
        form.add_error(None, exc.message)
        return _render_page(request, accounts, account, form=form, status=400)
    return _back(request, account)


@require_POST
def group_rename(request: HtmxHttpRequest, code: uuid.UUID) -> HttpResponse:
    require_operator(request)
    group = group_for_user(request, code)
    form = GroupNameForm(request.POST, account=group.account, group=group)
    if not form.is_valid():
        return render(request, "fleet/groups.html#rename", {"group": group, "rename_form": form,
                                                            "account": group.account}, status=error_status(request))
    writes.request_group_rename(group, form.cleaned_data["name"])
    audit.record(request, "group.rename", group, changes={"name": [group.name, form.cleaned_data["name"]]})
    return to_list(_back(request, group.account), "#groups-list")


@require_http_methods(["GET", "POST"])
def group_delete(request: HtmxHttpRequest, code: uuid.UUID) -> HttpResponse:
    """GET asks for confirmation; POST sends the delete."""
    require_operator(request)
    group = group_for_user(request, code)
    if request.method == "GET":
        return _confirm_delete(request, group.account, [group], reverse("fleet-group-delete", args=[code]))
    return _send_delete(request, group.account, [group])


@require_POST
def groups_delete(request: HtmxHttpRequest) -> HttpResponse:
    """Batch delete: the first POST shows the ticked groups for confirmation, ``confirm=1`` sends."""
    require_operator(request)
    accounts, account = account_or_404(request)
    codes = [parse_code(c) for c in request.POST.getlist("codes")]
    choices = [str(c) for c in Group.objects.filter(account=account, removed=False, code__in=codes)
               .values_list("code", flat=True)]
    form = SelectionForm(request.POST, choices=choices)
    if not form.is_valid():
        context = {"account": account, "selection_errors": form.errors["codes"], **_list_context(request, account)}
        if request.htmx:
            return render(request, "fleet/groups.html#list", context, status=error_status(request))
        return _render_page(request, accounts, account, selection_errors=form.errors["codes"], status=400)
    selected = list(Group.objects.filter(account=account, code__in=form.cleaned_data["codes"]))
    if request.POST.get("confirm") != "1":
        return _confirm_delete(request, account, selected, reverse("fleet-groups-delete"))
    return _send_delete(request, account, selected)


def _delete_once(account: SolaxAccount, groups: list[Group]) -> tuple[str, str]:
    """The purpose and fingerprint of a delete confirmation: exactly these groups."""
    return f"group-delete:{account.code}", once.fingerprint("group-delete", sorted(str(g.code) for g in groups))


def _confirm_delete(request: HtmxHttpRequest, account: SolaxAccount, selected: list[Group],
                    action: str) -> HttpResponse:
    n = len(selected)
    key = once.issue(request, *_delete_once(account, selected))
    fields = [("account", account.code), ("confirm", "1"), ("once", key), *(("codes", g.code) for g in selected)]
    return render(request, "fleet/groups.html#confirm", {"confirm": confirmation(
        label="Confirm deletion", title=f"Delete {n} group{'s' if n != 1 else ''} in SolaX Cloud?",
        items=[f"{g.name} ({g.device_count} member{'s' if g.device_count != 1 else ''})" for g in selected],
        text="Their members leave the group; the devices stay bound to the account. This cannot be undone.",
        action=action, button="Delete", cancel_url=f"{reverse('fleet-groups')}?account={account.code}",
        fields=fields, hx_target="#groups-list")})


def _send_delete(request: HtmxHttpRequest, account: SolaxAccount, selected: list[Group]) -> HttpResponse:
    """Send a confirmed delete once: a second submit of the confirmation is shown the list."""
    try:
        with once.claim(request, *_delete_once(account, selected)) as claimed:
            writes.request_groups_delete(account, selected)
            for group in selected:
                audit.record(request, "group.delete", group, organization=account.organization,
                             changes={"name": [group.name, None]})
            claimed.done(f"{reverse('fleet-groups')}?account={account.code}")
    except once.AlreadyDone as done:
        return once.replay(request, done)
    except once.Refused as exc:
        if request.htmx:
            context = {"account": account, "selection_errors": [exc.message], **_list_context(request, account)}
            return render(request, "fleet/groups.html#list", context)
        accounts = list(current_membership(request).organization.accounts.order_by("name"))
        return _render_page(request, accounts, account, selection_errors=[exc.message], status=400)
    return _back(request, account)


@require_POST
def group_cloud_search(request: HtmxHttpRequest) -> HttpResponse:
    """Queue the cloud's fuzzy search by name; the page polls the call until it answers."""
    require_operator(request)
    accounts, account = account_or_404(request)
    form = CloudSearchForm(request.POST)
    if not form.is_valid():
        return _render_page(request, accounts, account, search_form=form, status=400)
    call = writes.request_group_search(account, form.cleaned_data["q"])
    return redirect(f"{reverse('fleet-groups')}?account={account.code}&cloud={call.code}")


@require_GET
def cloud_result(request: HtmxHttpRequest, code: uuid.UUID) -> HttpResponse:
    """The answer of a fuzzy query (groups or members), polled by the page while it is pending."""
    call = cloud_search_for_user(request, code, ("group_fuzzy_query", "inverter_fuzzy_query"))
    response = render(request, "fleet/groups.html#cloud", {"cloud_call": call,
                                                           "cloud_items": writes.search_result(call)})
    if request.htmx and call.state not in writes.PENDING:
        response.status_code = HttpResponseStopPolling.status_code
    return response


# Sync -------------------------------------------------------------------------------------

@require_POST
def sync_start(request: HtmxHttpRequest) -> HttpResponse:
    require_operator(request)
    _, account = account_or_404(request)
    run = sync.start_sync(account)
    if request.htmx:
        return render(request, "fleet/groups.html#sync", {"run": run, "account": account})
    return redirect(f"{reverse('fleet-groups')}?account={account.code}")


@require_GET
def sync_run(request: HtmxHttpRequest, code: uuid.UUID) -> HttpResponse:
    run = sync_run_for_user(request, code)
    response = render(request, "fleet/groups.html#sync", {"run": run, "account": run.account})
    if request.htmx and run.state != sync.RUNNING:
        response.status_code = HttpResponseStopPolling.status_code
        trigger_client_event(response, "fleetSynced")  # the list below reloads itself
    return response


@require_GET
def groups_export(request: HtmxHttpRequest) -> StreamingHttpResponse:
    _, account = account_or_404(request)
    rows = (Group.objects.filter(account=account, removed=False).order_by("name")
            .values_list("name", "remote_id", "device_count", "remote_created", "remote_updated", "synced_at")
            .iterator(chunk_size=2000))
    return csv_response("groups.csv", ["name", "group id", "members", "created", "updated", "synced"], rows)
