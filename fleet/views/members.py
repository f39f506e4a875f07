"""A group's detail page: its members (search, add, replace an SN, remove, batch remove, cloud search,
CSV export)."""

from __future__ import annotations

import uuid

from django.db.models import Q
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from fleet.accounts import audit, once
from fleet.accounts.access import (
    current_membership,
    group_for_user,
    member_for_user,
    parse_code,
    require_operator,
)
from fleet.mirror import writes
from fleet.mirror.forms import SelectionForm, SnForm
from fleet.models import ApiCall, Group, Inverter
from fleet.views.base import HtmxHttpRequest, confirmation, csv_response, error_status, paginate, to_list


def _members_context(request: HtmxHttpRequest, group: Group) -> dict[str, object]:
    q = request.GET.get("q", "").strip()[:40]
    members = Inverter.objects.filter(group=group, removed=False)
    if q:
        members = members.filter(Q(inverter_sn__icontains=q) | Q(dongle_sn__icontains=q))
    page = paginate(members.order_by("inverter_sn", "pk").only(
        "code", "inverter_sn", "dongle_sn", "rated_power", "in_group", "remote_created"), request)
    changes = writes.changes_for(group.account, "member", group_code=str(group.code))
    rows = [(member, changes.by_code.get(str(member.code))) for member in page.object_list]
    query = urlencode({"q": q}) if q else ""
    context: dict[str, object] = {"group": group, "account": group.account, "page": page, "rows": rows,
                                  "changes": changes, "q": q, "query": query}
    if current_membership(request).can_operate and not group.removed:
        context["once_key"] = once.issue(request, _member_add_purpose(group))
    return context


def _member_add_purpose(group: Group) -> str:
    return f"member-add:{group.code}"


def _render_detail(request: HtmxHttpRequest, group: Group, *, form: SnForm | None = None,
                   status: int = 200) -> HttpResponse:
    context = _members_context(request, group)
    context["form"] = form or SnForm()
    if request.htmx and request.htmx.target == "members":
        return render(request, "fleet/group_detail.html#members", context, status=error_status(request, status))
    cloud = request.GET.get("cloud")
    if cloud:
        call = (ApiCall.objects.filter(account=group.account, code=parse_code(cloud), endpoint="inverter_fuzzy_query")
                .first())
        context.update(cloud_call=call, cloud_items=writes.search_result(call) if call else None)
    return render(request, "fleet/group_detail.html", context, status=status)


@require_GET
def group_detail(request: HtmxHttpRequest, code: uuid.UUID) -> HttpResponse:
    group = group_for_user(request, code)
    return _render_detail(request, group)


def _back(request: HtmxHttpRequest, group: Group) -> HttpResponse:
    if request.htmx:
        context = _members_context(request, group)
        context["form"] = SnForm()
        return render(request, "fleet/group_detail.html#members", context)
    return redirect("fleet-group", code=group.code)


@require_POST
def member_add(request: HtmxHttpRequest, code: uuid.UUID) -> HttpResponse:
    require_operator(request)
    group = group_for_user(request, code)
    if group.removed:
        raise Http404("This group has left the cloud.")
    form = SnForm(request.POST)
    if form.is_valid():
        sn = form.cleaned_data["sn"]
        if Inverter.objects.filter(account=group.account, inverter_sn=sn, removed=False).exists():
            form.add_error("sn", f"{sn} is a member of a group already; remove it there first.")
    if not form.is_valid():
        return _render_detail(request, group, form=form, status=400)
    try:
        with once.claim(request, _member_add_purpose(group), once.posted_fingerprint(request)) as claimed:
            writes.request_member_add(group, form.cleaned_data["sn"])
            audit.record(request, "member.add", None, kind="member", name=form.cleaned_data["sn"],
                         organization=group.account.organization,
                         changes={"group": [None, group.name], "inverter_sn": [None, form.cleaned_data["sn"]]})
            claimed.done(reverse("fleet-group", args=[group.code]))
    except once.AlreadyDone as done:
        return once.replay(request, done)
    except once.Refused as exc:
        form.add_error(None, exc.message)
        return _render_detail(request, group, form=form, status=400)
    return _back(request, group)


@require_POST
def member_replace(request: HtmxHttpRequest, code: uuid.UUID) -> HttpResponse:
    require_operator(request)
    member = member_for_user(request, code)
    form = SnForm(request.POST)
    if form.is_valid() and form.cleaned_data["sn"] == member.inverter_sn:
        form.add_error("sn", "That is the SN it has already.")
    if not form.is_valid():
        return render(request, "fleet/group_detail.html#replace", {"member": member, "replace_form": form},
                      status=error_status(request))
    writes.request_member_replace(member, form.cleaned_data["sn"])
    audit.record(request, "member.replace", member,
                 changes={"inverter_sn": [member.inverter_sn, form.cleaned_data["sn"]]})
    return to_list(_back(request, member.group), "#members")


@require_http_methods(["GET", "POST"])
def member_remove(request: HtmxHttpRequest, code: uuid.UUID) -> HttpResponse:
    """GET asks for confirmation; POST sends the removal."""
    require_operator(request)
    member = member_for_user(request, code)
    if request.method == "GET":
        return _confirm_remove(request, member.group, [member],
                               reverse("fleet-group-member-remove", args=[member.code]))
    return _send_remove(request, member.group, [member])


@require_POST
def members_remove(request: HtmxHttpRequest, code: uuid.UUID) -> HttpResponse:
    """Batch removal: the first POST confirms the ticked members, ``confirm=1`` sends."""
    require_operator(request)
    group = group_for_user(request, code)
    codes = [parse_code(c) for c in request.POST.getlist("codes")]
    choices = [str(c) for c in Inverter.objects.filter(group=group, removed=False, code__in=codes)
               .values_list("code", flat=True)]
    form = SelectionForm(request.POST, choices=choices)
    if not form.is_valid():
        context = _members_context(request, group)
        context.update(form=SnForm(), selection_errors=form.errors["codes"])
        return render(request, "fleet/group_detail.html#members", context, status=error_status(request))
    selected = list(Inverter.objects.filter(group=group, code__in=form.cleaned_data["codes"]))
    if request.POST.get("confirm") != "1":
        return _confirm_remove(request, group, selected, reverse("fleet-group-members-remove", args=[group.code]))
    return _send_remove(request, group, selected)


def _remove_once(group: Group, members: list[Inverter]) -> tuple[str, str]:
    """The purpose and fingerprint of a removal confirmation: exactly these members."""
    return f"member-remove:{group.code}", once.fingerprint("member-remove", sorted(str(m.code) for m in members))


def _confirm_remove(request: HtmxHttpRequest, group: Group, selected: list[Inverter], action: str) -> HttpResponse:
    n = len(selected)
    fields = [("confirm", "1"), ("once", once.issue(request, *_remove_once(group, selected))),
              *(("codes", m.code) for m in selected)]
    return render(request, "fleet/group_detail.html#confirm", {"confirm": confirmation(
        label="Confirm removal", title=f"Remove {n} member{'s' if n != 1 else ''} from {group.name}?",
        items=[m.inverter_sn for m in selected], code_items=True, text="The devices stay bound to the account.",
        action=action, button="Remove", cancel_url=reverse("fleet-group", args=[group.code]), fields=fields,
        hx_target="#members")})


def _send_remove(request: HtmxHttpRequest, group: Group, selected: list[Inverter]) -> HttpResponse:
    """Send a confirmed removal once: a second submit of the confirmation is shown the group."""
    try:
        with once.claim(request, *_remove_once(group, selected)) as claimed:
            writes.request_members_delete(group, selected)
            for member in selected:
                audit.record(request, "member.remove", member, organization=group.account.organization,
                             changes={"group": [group.name, None]})
            claimed.done(reverse("fleet-group", args=[group.code]))
    except once.AlreadyDone as done:
        return once.replay(request, done)
    except once.Refused as exc:
        context = _members_context(request, group)
        context.update(form=SnForm(), selection_errors=[exc.message])
        if request.htmx:
            return render(request, "fleet/group_detail.html#members", context)
        return render(request, "fleet/group_detail.html", context, status=400)
    return _back(request, group)


@require_POST
def member_cloud_search(request: HtmxHttpRequest, code: uuid.UUID) -> HttpResponse:
    """The cloud's fuzzy member search (VPP 3.6) by dongle or inverter SN."""
    require_operator(request)
    group = group_for_user(request, code)
    wifi_sn = request.POST.get("wifi_sn", "").strip() or None
    inverter_sn = request.POST.get("inverter_sn", "").strip() or None
    if wifi_sn is None and inverter_sn is None:
        context = _members_context(request, group)
        context.update(form=SnForm(), search_error="Enter part of a dongle SN or an inverter SN.")
        return render(request, "fleet/group_detail.html", context, status=400)
    try:
        call = writes.request_member_search(group, wifi_sn, inverter_sn)
    except writes.MirrorError as exc:
        context = _members_context(request, group)
        context.update(form=SnForm(), search_error="; ".join(exc.errors.values()))
        return render(request, "fleet/group_detail.html", context, status=400)
    return redirect(f"{reverse('fleet-group', args=[group.code])}?cloud={call.code}")


@require_GET
def members_export(request: HtmxHttpRequest, code: uuid.UUID) -> StreamingHttpResponse:
    group = group_for_user(request, code)
    rows = (Inverter.objects.filter(group=group, removed=False).order_by("inverter_sn")
            .values_list("inverter_sn", "dongle_sn", "remote_id", "rated_power", "in_group", "remote_created")
            .iterator(chunk_size=2000))
    return csv_response(f"members-{group.name[:40]}.csv",
                        ["inverter sn", "dongle sn", "member id", "rated power", "in group", "added"], rows)
