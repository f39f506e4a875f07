"""Accounts, the mirror (groups, members, inverters, chargers, saved selections), the calls a write
became, schedules, price plans and alerts. Writes go through ``fleet.mirror.writes`` like the pages: they answer
202 with the queued call, and the mirror changes when the cloud confirms (follow ``/calls/{code}``)."""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import Q
from django.http import Http404, HttpRequest
from ninja import Query, Router, Schema, Status
from pydantic import Field

from fleet.accounts.access import (
    account_for_user,
    alert_for_user,
    api_key_of,
    call_for_user,
    current_membership,
    day_plan_for_user,
    group_for_user,
    member_for_user,
    require_operator,
    schedule_for_user,
    selection_for_user,
)
from fleet.alerts import service as alerts
from fleet.api import schemas
from fleet.api.actor import changed
from fleet.api.core import DEFAULT_LIMIT, MAX_LIMIT, Invalid, Problem, keyset
from fleet.mirror import writes
from fleet.mirror.forms import GroupNameForm, SnForm
from fleet.models import (
    AlertState,
    Charger,
    DayPlan,
    Group,
    Inverter,
    Organization,
    SavedSelection,
    Schedule,
    SolaxAccount,
)
from fleet.shapes import responses, serialize

router = Router()
PROBLEMS: dict[int, Any] = {401: responses.ProblemOut, 403: responses.ProblemOut, 404: responses.ProblemOut,
                            422: responses.ProblemOut}


class Paging(Schema):
    cursor: str | None = Field(None, max_length=2000)
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)


def _org(request: HttpRequest) -> Organization:
    return current_membership(request).organization


def account_of(request: HttpRequest, code: uuid.UUID | None) -> SolaxAccount:
    """The account a request names (``account``), or the organization's first; 422 when it names none of
    the organization's accounts, or the organization has none."""
    if code is not None:
        try:
            return account_for_user(request, code)
        except Http404:
            raise Invalid({"account": "no such account in your organization"}) from None
    first = SolaxAccount.objects.filter(organization=_org(request)).order_by("name").first()
    if first is None:
        raise Invalid({"account": "your organization has no SolaX account yet"})
    return first


def _form_errors(form: Any, prefix: str = "") -> dict[str, str]:
    return {(prefix + name if name != "__all__" else "body"): " ".join(str(m) for m in messages)
            for name, messages in form.errors.items()}


# Accounts --------------------------------------------------------------------------------------

@router.get("/accounts", response={200: responses.AccountPage, **PROBLEMS}, url_name="accounts", tags=["accounts"])
def accounts(request: HttpRequest, paging: Query[Paging]) -> dict[str, Any]:
    """The organization's SolaX accounts with their budget state (never the token)."""
    return keyset(request, SolaxAccount.objects.filter(organization=_org(request)), ("name", "pk"),
                  cursor=paging.cursor, limit=paging.limit, salt="accounts", serialize=serialize.account)


@router.get("/accounts/{uuid:code}", response={200: responses.AccountOut, **PROBLEMS}, url_name="account",
            tags=["accounts"])
def account(request: HttpRequest, code: uuid.UUID) -> dict[str, Any]:
    return serialize.account(account_for_user(request, code))


# Calls: what a write became --------------------------------------------------------------------

@router.get("/calls/{uuid:code}", response={200: responses.CallOut, **PROBLEMS}, url_name="call", tags=["calls"])
def call(request: HttpRequest, code: uuid.UUID) -> dict[str, Any]:
    """A queued request to SolaX Cloud: queued, sending, then succeeded, failed or unknown (with the
    vendor's error). A write's objects change in the mirror only when it succeeded."""
    return serialize.call(call_for_user(request, code))


# Groups ----------------------------------------------------------------------------------------

class GroupFilters(Paging):
    account: uuid.UUID | None = None
    q: str = Field("", max_length=100)
    removed: bool = False


@router.get("/groups", response={200: responses.GroupPage, **PROBLEMS}, url_name="groups", tags=["groups"])
def groups(request: HttpRequest, filters: Query[GroupFilters]) -> dict[str, Any]:
    """Groups of the mirror, by name; ``q`` searches names, ``removed=true`` lists those that left the cloud."""
    rows = Group.objects.filter(account__organization=_org(request), removed=filters.removed).select_related("account")
    if filters.account is not None:
        rows = rows.filter(account=account_of(request, filters.account))
    if filters.q.strip():
        rows = rows.filter(name__icontains=filters.q.strip())
    return keyset(request, rows, ("name", "pk"), cursor=filters.cursor, limit=filters.limit, salt="groups",
                  serialize=serialize.group)


@router.post("/groups", response={202: responses.CallOut, **PROBLEMS}, url_name="group-create", tags=["groups"])
def group_create(request: HttpRequest, payload: schemas.GroupIn) -> Status:
    """Ask the cloud to create a group: 202 with the queued call; the group appears when the cloud answers."""
    require_operator(request)
    target = account_of(request, payload.account)
    form = GroupNameForm({"name": payload.name}, account=target)
    if not form.is_valid():
        raise Invalid(_form_errors(form))
    queued = writes.request_group_add(target, form.cleaned_data["name"])
    changed(request, "group.create", "call", queued.code, after={"name": form.cleaned_data["name"]})
    return Status(202, serialize.call(queued))


@router.get("/groups/{uuid:code}", response={200: responses.GroupDetailOut, **PROBLEMS}, url_name="group",
            tags=["groups"])
def group(request: HttpRequest, code: uuid.UUID) -> dict[str, Any]:
    """A group and the latest write to it (pending or recently answered)."""
    row = group_for_user(request, code)
    change = writes.changes_for(row.account, "group").by_code.get(str(row.code))
    if change is not None:
        change.account = row.account
    return {**serialize.group(row), "last_change": serialize.call(change) if change else None}


@router.patch("/groups/{uuid:code}", response={202: responses.CallOut, **PROBLEMS}, url_name="group-rename",
              tags=["groups"])
def group_rename(request: HttpRequest, code: uuid.UUID, payload: schemas.GroupRenameIn) -> Status:
    require_operator(request)
    row = group_for_user(request, code)
    if row.removed:
        raise Http404("This group has left the cloud.")
    form = GroupNameForm({"name": payload.name}, account=row.account, group=row)
    if not form.is_valid():
        raise Invalid(_form_errors(form))
    queued = writes.request_group_rename(row, form.cleaned_data["name"])
    changed(request, "group.rename", "group", row.code, before={"name": row.name},
            after={"name": form.cleaned_data["name"]})
    return Status(202, serialize.call(queued))


@router.delete("/groups/{uuid:code}", response={202: responses.CallOut, **PROBLEMS}, url_name="group-delete",
               tags=["groups"])
def group_delete(request: HttpRequest, code: uuid.UUID) -> Status:
    require_operator(request)
    row = group_for_user(request, code)
    if row.removed:
        raise Http404("This group has left the cloud.")
    queued = writes.request_groups_delete(row.account, [row])
    changed(request, "group.delete", "group", row.code, before={"name": row.name})
    return Status(202, serialize.call(queued))


# Members ---------------------------------------------------------------------------------------

class MemberFilters(Paging):
    q: str = Field("", max_length=40)


@router.get("/groups/{uuid:code}/members", response={200: responses.InverterPage, **PROBLEMS},
            url_name="group-members", tags=["groups"])
def group_members(request: HttpRequest, code: uuid.UUID, filters: Query[MemberFilters]) -> dict[str, Any]:
    """A group's members by SN; ``q`` searches inverter and dongle SNs."""
    row = group_for_user(request, code)
    rows = Inverter.objects.filter(group=row, removed=False).select_related("group", "account")
    q = filters.q.strip()
    if q:
        rows = rows.filter(Q(inverter_sn__icontains=q) | Q(dongle_sn__icontains=q))
    return keyset(request, rows, ("inverter_sn", "pk"), cursor=filters.cursor, limit=filters.limit,
                  salt=f"members:{row.code}", serialize=serialize.inverter)


@router.post("/groups/{uuid:code}/members", response={202: responses.CallOut, **PROBLEMS},
             url_name="group-member-add", tags=["groups"])
def member_add(request: HttpRequest, code: uuid.UUID, payload: schemas.MemberIn) -> Status:
    """Ask the cloud to add an inverter to the group: 202 with the queued call."""
    require_operator(request)
    row = group_for_user(request, code)
    if row.removed:
        raise Http404("This group has left the cloud.")
    form = SnForm({"sn": payload.sn})
    if form.is_valid():
        sn = form.cleaned_data["sn"]
        if Inverter.objects.filter(account=row.account, inverter_sn=sn, removed=False).exists():
            form.add_error("sn", f"{sn} is a member of a group already; remove it there first.")
    if not form.is_valid():
        raise Invalid(_form_errors(form))
    queued = writes.request_member_add(row, form.cleaned_data["sn"])
    changed(request, "member.add", "group", row.code, after={"sn": form.cleaned_data["sn"]})
    return Status(202, serialize.call(queued))


@router.delete("/members/{uuid:code}", response={202: responses.CallOut, **PROBLEMS}, url_name="member-remove",
               tags=["groups"])
def member_remove(request: HttpRequest, code: uuid.UUID) -> Status:
    """Ask the cloud to remove a member (by its code, from the members list) from its group."""
    require_operator(request)
    member = member_for_user(request, code)
    queued = writes.request_members_delete(member.group, [member])
    changed(request, "member.remove", "member", member.code,
            before={"sn": member.inverter_sn, "group": str(member.group.code)})
    return Status(202, serialize.call(queued))


# Devices ---------------------------------------------------------------------------------------

class InverterFilters(Paging):
    account: uuid.UUID | None = None
    group: uuid.UUID | None = None
    q: str = Field("", max_length=40)


@router.get("/inverters", response={200: responses.InverterPage, **PROBLEMS}, url_name="inverters",
            tags=["devices"])
def inverters(request: HttpRequest, filters: Query[InverterFilters]) -> dict[str, Any]:
    """Inverters across the organization's groups (a member row per group); ``q`` searches SNs."""
    rows = Inverter.objects.filter(account__organization=_org(request), removed=False).select_related(
        "group", "account")
    if filters.account is not None:
        rows = rows.filter(account=account_of(request, filters.account))
    if filters.group is not None:
        try:
            rows = rows.filter(group=group_for_user(request, filters.group))
        except Http404:
            raise Invalid({"group": "no such group in your organization"}) from None
    q = filters.q.strip()
    if q:
        rows = rows.filter(Q(inverter_sn__icontains=q) | Q(dongle_sn__icontains=q))
    return keyset(request, rows, ("inverter_sn", "pk"), cursor=filters.cursor, limit=filters.limit,
                  salt="inverters", serialize=serialize.inverter)


class AccountFilter(Paging):
    account: uuid.UUID | None = None


@router.get("/chargers", response={200: responses.ChargerPage, **PROBLEMS}, url_name="chargers", tags=["devices"])
def chargers(request: HttpRequest, filters: Query[AccountFilter]) -> dict[str, Any]:
    """EV chargers with their last status read."""
    rows = Charger.objects.filter(account__organization=_org(request)).select_related("account")
    if filters.account is not None:
        rows = rows.filter(account=account_of(request, filters.account))
    return keyset(request, rows, ("sn", "pk"), cursor=filters.cursor, limit=filters.limit, salt="chargers",
                  serialize=serialize.charger)


@router.get("/selections", response={200: responses.SelectionPage, **PROBLEMS}, url_name="selections",
            tags=["devices"])
def selections(request: HttpRequest, filters: Query[AccountFilter]) -> dict[str, Any]:
    """Saved selections (named lists of inverters, a command target): their sizes; the SNs are in each one."""
    rows = SavedSelection.objects.filter(account__organization=_org(request)).select_related("account")
    if filters.account is not None:
        rows = rows.filter(account=account_of(request, filters.account))
    return keyset(request, rows, ("name", "pk"), cursor=filters.cursor, limit=filters.limit, salt="selections",
                  serialize=serialize.selection)


@router.get("/selections/{uuid:code}", response={200: responses.SelectionDetailOut, **PROBLEMS},
            url_name="selection", tags=["devices"])
def selection(request: HttpRequest, code: uuid.UUID) -> dict[str, Any]:
    return serialize.selection(selection_for_user(request, code), with_sns=True)


# Schedules and price plans ---------------------------------------------------------------------

@router.get("/schedules", response={200: responses.SchedulePage, **PROBLEMS}, url_name="schedules",
            tags=["schedules"])
def schedules(request: HttpRequest, filters: Query[AccountFilter]) -> dict[str, Any]:
    rows = Schedule.objects.filter(account__organization=_org(request)).select_related("account", "group",
                                                                                      "selection")
    if filters.account is not None:
        rows = rows.filter(account=account_of(request, filters.account))
    return keyset(request, rows, ("name", "pk"), cursor=filters.cursor, limit=filters.limit, salt="schedules",
                  serialize=serialize.schedule)


@router.get("/schedules/{uuid:code}", response={200: responses.ScheduleOut, **PROBLEMS}, url_name="schedule",
            tags=["schedules"])
def schedule(request: HttpRequest, code: uuid.UUID) -> dict[str, Any]:
    row = schedule_for_user(request, code)
    return serialize.schedule(Schedule.objects.select_related("account", "group", "selection").get(pk=row.pk))


@router.get("/price-plans", response={200: responses.PricePlanPage, **PROBLEMS}, url_name="price-plans",
            tags=["schedules"])
def price_plans(request: HttpRequest, filters: Query[AccountFilter]) -> dict[str, Any]:
    """Day plans compiled from the price rules, newest day first (proposed, accepted, superseded)."""
    rows = DayPlan.objects.filter(rule__zone__account__organization=_org(request)).select_related(
        "rule__zone__account", "rule__group")
    if filters.account is not None:
        rows = rows.filter(rule__zone__account=account_of(request, filters.account))
    return keyset(request, rows, ("-day", "-pk"), cursor=filters.cursor, limit=filters.limit, salt="price-plans",
                  serialize=serialize.price_plan)


@router.get("/price-plans/{uuid:code}", response={200: responses.PricePlanOut, **PROBLEMS}, url_name="price-plan",
            tags=["schedules"])
def price_plan(request: HttpRequest, code: uuid.UUID) -> dict[str, Any]:
    return serialize.price_plan(day_plan_for_user(request, code))



# Alerts ----------------------------------------------------------------------------------------

class AlertFilters(Paging):
    state: AlertState | None = Field(None, description="open, acknowledged or resolved; all when left out")


@router.get("/alerts", response={200: responses.AlertPage, **PROBLEMS}, url_name="alerts", tags=["alerts"])
def alert_list(request: HttpRequest, filters: Query[AlertFilters]) -> dict[str, Any]:
    """The organization's alerts, newest first: one per episode of a condition, resolved by itself."""
    rows = alerts.alerts_for(_org(request), filters.state)
    return keyset(request, rows, ("-raised_at", "-pk"), cursor=filters.cursor, limit=filters.limit, salt="alerts",
                  serialize=serialize.alert)


@router.get("/alerts/{uuid:code}", response={200: responses.AlertOut, **PROBLEMS}, url_name="alert", tags=["alerts"])
def alert(request: HttpRequest, code: uuid.UUID) -> dict[str, Any]:
    return serialize.alert(alert_for_user(request, code))


@router.post("/alerts/{uuid:code}/acknowledge", response={200: responses.AlertOut, 409: responses.ProblemOut,
                                                          **PROBLEMS}, url_name="alert-acknowledge", tags=["alerts"])
def alert_acknowledge(request: HttpRequest, code: uuid.UUID) -> dict[str, Any]:
    """An operate key acknowledges an open alert (it resolves by itself when its condition ends; a
    command's alert is resolved by the acknowledgement). 409 when it is not open."""
    require_operator(request)
    row = alert_for_user(request, code)
    key = api_key_of(request)
    if not alerts.acknowledge(row, None, by=f"API key {key.name}" if key is not None else None):
        raise Problem(409, "This alert is not open: it was acknowledged or resolved already.")
    row = alert_for_user(request, code)
    changed(request, "alert.acknowledge", "alert", row.code, before={"state": "open"},
            after={"state": row.state, "name": row.title})
    return serialize.alert(row)
