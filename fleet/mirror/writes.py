"""Writes to the cloud's groups and members, at management priority, and their handlers.

Every request is an ApiCall with a handler; the local row changes only in the handler, when the cloud
confirms, and records when (``confirmed_at``) so that a sync page asked for before cannot revert it.
After a member add or replace the group's members are re-read: the answer carries no dongle SN, which
is what the command results are keyed by. ``context["codes"]`` names the local objects a call touches,
so a page can show a pending change or the vendor's error beside each of them (``changes_for``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

from django.db.models import F
from django.utils import timezone

from fleet.mirror import sync
from fleet.models import ApiCall, CallState, Group, Inverter, Priority, SolaxAccount
from fleet.pipeline import handlers, queue
from solax import endpoints
from solax.errors import RequestValidationError, SolaxError
from solax.models import Group as RemoteGroup
from solax.models import Member as RemoteMember
from solax.parsing import parse_envelope

log = logging.getLogger("fleet.mirror")

PENDING = (CallState.QUEUED, CallState.SENDING)
RECENT = timedelta(minutes=30)  # how long a finished change stays on the page
SEARCH_KEEP = 500  # items of a cloud search kept with its call (the ledger's copy of the body is bounded)
# The answers a page reads again after the call finished, and the type of their items.
STORED_ANSWERS: dict[str, type[RemoteGroup] | type[RemoteMember]] = {
    "group_fuzzy_query": RemoteGroup, "inverter_fuzzy_query": RemoteMember}


class MirrorError(Exception):
    """A request that cannot be sent: ``errors`` maps a form field to its problem."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def _params(build: Any, *args: Any) -> dict[str, Any]:
    try:
        params: dict[str, Any] = build(*args)
    except RequestValidationError as exc:
        raise MirrorError(dict(exc.errors)) from exc
    return params


validated = _params  # the parameters of an endpoint, or a MirrorError naming the bad field


def _enqueue(account: SolaxAccount, endpoint: str, params: dict[str, Any], purpose: str, *,
             origin_kind: str, codes: Sequence[str], **context: Any) -> ApiCall:
    return queue.enqueue(
        account, endpoint, params, purpose=purpose, priority=Priority.MANAGEMENT, handler=f"mirror.{endpoint}",
        context={"codes": list(codes), **context}, origin_kind=origin_kind,
        origin_code=codes[0] if codes else None,
    )


# Requests ------------------------------------------------------------------------------------

def request_group_add(account: SolaxAccount, name: str) -> ApiCall:
    """Ask the cloud to create a group named ``name``; the Group row appears when it answers."""
    params = _params(endpoints.group_add_params, name)
    return _enqueue(account, "group_add", params, f"create group {params['name']}", origin_kind="group",
                    codes=[], name=params["name"])


def request_group_rename(group: Group, name: str) -> ApiCall:
    params = _params(endpoints.group_update_params, group.remote_id, name)
    return _enqueue(group.account, "group_update", params, f"rename group {group.name} to {params['name']}",
                    origin_kind="group", codes=[str(group.code)], name=params["name"])


def request_groups_delete(account: SolaxAccount, groups: Sequence[Group]) -> ApiCall:
    """Delete one group (group_delete) or several in one call (group_delete_batch)."""
    codes = [str(g.code) for g in groups]
    if len(groups) == 1:
        params = _params(endpoints.group_delete_params, groups[0].remote_id)
        return _enqueue(account, "group_delete", params, f"delete group {groups[0].name}",
                        origin_kind="group", codes=codes)
    params = _params(endpoints.group_delete_batch_params, [g.remote_id for g in groups])
    return _enqueue(account, "group_delete_batch", params, f"delete {len(groups)} groups",
                    origin_kind="group", codes=codes)


def request_member_add(group: Group, inverter_sn: str) -> ApiCall:
    params = _params(endpoints.inverter_add_params, group.remote_id, inverter_sn)
    return _enqueue(group.account, "inverter_add", params, f"add {params['inverterSn']} to {group.name}",
                    origin_kind="member", codes=[], group=str(group.code), sn=params["inverterSn"])


def request_member_replace(member: Inverter, new_sn: str) -> ApiCall:
    params = _params(endpoints.inverter_update_params, member.remote_id, new_sn)
    return _enqueue(member.account, "inverter_update", params,
                    f"replace {member.inverter_sn} by {params['newInverterSn']}", origin_kind="member",
                    codes=[str(member.code)], group=str(member.group.code), sn=params["newInverterSn"])


def request_members_delete(group: Group, members: Sequence[Inverter]) -> ApiCall:
    """Remove one member (inverter_delete) or several in one call (inverter_delete_batch)."""
    codes = [str(m.code) for m in members]
    if len(members) == 1:
        params = _params(endpoints.inverter_delete_params, members[0].remote_id)
        return _enqueue(group.account, "inverter_delete", params,
                        f"remove {members[0].inverter_sn} from {group.name}", origin_kind="member",
                        codes=codes, group=str(group.code))
    params = _params(endpoints.inverter_delete_batch_params, [m.remote_id for m in members])
    return _enqueue(group.account, "inverter_delete_batch", params,
                    f"remove {len(members)} members from {group.name}", origin_kind="member", codes=codes,
                    group=str(group.code))


def request_group_search(account: SolaxAccount, name: str) -> ApiCall:
    """The cloud's fuzzy search by name (a read at poll priority: the operator is waiting)."""
    params = _params(endpoints.group_fuzzy_query_params, name)
    return queue.enqueue(account, "group_fuzzy_query", params, purpose=f"search groups for {params['name']}",
                         priority=Priority.POLL, origin_kind="group", handler="cloud_search.found")


def request_member_search(group: Group, wifi_sn: str | None, inverter_sn: str | None) -> ApiCall:
    params = _params(endpoints.inverter_fuzzy_query_params, group.remote_id, wifi_sn, inverter_sn)
    return queue.enqueue(group.account, "inverter_fuzzy_query", params,
                         purpose=f"search members of {group.name}", priority=Priority.POLL,
                         origin_kind="group", origin_code=group.code, handler="cloud_search.found")


@handlers.register("cloud_search.found")
def on_search(call: ApiCall, outcome: handlers.Outcome) -> None:
    """Keep what a cloud search found with its call, parsed: the ledger keeps only a bounded copy of
    the body, which a page could not read again once a search finds more than a few members."""
    if not _ok(outcome):
        return
    assert outcome.envelope is not None
    try:
        page = endpoints.RESULT_PARSERS[call.endpoint](outcome.envelope)
    except SolaxError as exc:
        ApiCall.objects.filter(pk=call.pk).update(context={**call.context, "unreadable": str(exc)[:300]})
        return
    found = [asdict(item) for item in page.items[:SEARCH_KEEP]]
    call.context = {**call.context, "found": found, "num": page.total}
    ApiCall.objects.filter(pk=call.pk).update(context=call.context)


def search_result(call: ApiCall) -> list[Any] | None:
    """Return the items a finished fuzzy query found (at most SEARCH_KEEP), or None while it is
    pending or if it failed. An answer that cannot be read gives an empty list, never an error."""
    if call.state != CallState.SUCCEEDED:
        return None
    kind = STORED_ANSWERS[call.endpoint]
    context = call.context or {}
    if "found" in context:
        return [kind(**item) for item in context["found"]]
    if not call.response:
        return None
    try:  # a call stored before answers were kept with it
        page = endpoints.RESULT_PARSERS[call.endpoint](parse_envelope(call.response))
    except SolaxError:
        log.warning("the stored answer of call %s cannot be read again", call.code)
        return []
    return list(page.items)


# What a page shows ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Changes:
    """The mirror's recent write calls of an account: all of them and, per local code, the latest."""

    calls: list[ApiCall]
    by_code: dict[str, ApiCall]

    @property
    def pending(self) -> bool:
        return any(c.state in PENDING for c in self.calls)


def changes_for(account: SolaxAccount, origin_kind: str, *, group_code: str | None = None,
                limit: int = 20) -> Changes:
    """Return the pending and recently finished writes of one kind (one query)."""
    recent = (ApiCall.objects.filter(account=account, origin_kind=origin_kind, handler__startswith="mirror.",
                                     created__gte=timezone.now() - RECENT)
              .only("code", "endpoint", "purpose", "state", "error", "created", "context", "finished_at")
              .order_by("-created", "-id"))
    if group_code:
        recent = recent.filter(context__group=group_code)
    found = list(recent[:limit])
    by_code: dict[str, ApiCall] = {}
    for call in found:  # newest first: the first call naming a code is its latest
        for code in call.context.get("codes", []):
            by_code.setdefault(code, call)
    return Changes(calls=found, by_code=by_code)


# Handlers: the cloud confirmed (or refused); only now does the mirror change -----------------

def _ok(outcome: handlers.Outcome) -> bool:
    return outcome.state == CallState.SUCCEEDED and outcome.envelope is not None


@handlers.register("mirror.group_add")
def on_group_add(call: ApiCall, outcome: handlers.Outcome) -> None:
    if not _ok(outcome):
        return
    assert outcome.envelope is not None
    remote_id = endpoints.RESULT_PARSERS["group_add"](outcome.envelope)
    now = timezone.now()
    group, _ = Group.objects.update_or_create(
        account=call.account, remote_id=remote_id,
        defaults={"name": call.context["name"], "removed": False, "remote_created": now, "remote_updated": None,
                  "device_count": 0, "members_synced_at": now, "confirmed_at": now})
    ApiCall.objects.filter(pk=call.pk).update(context={**call.context, "codes": [str(group.code)]})


@handlers.register("mirror.group_update")
def on_group_update(call: ApiCall, outcome: handlers.Outcome) -> None:
    if _ok(outcome):
        Group.objects.filter(account=call.account, code__in=call.context["codes"]).update(
            name=call.context["name"], confirmed_at=timezone.now())


def _groups_deleted(call: ApiCall, outcome: handlers.Outcome) -> None:
    if not _ok(outcome):
        return
    now = timezone.now()
    groups = Group.objects.filter(account=call.account, code__in=call.context["codes"])
    Inverter.objects.filter(group__in=groups, removed=False).update(removed=True, confirmed_at=now)
    groups.update(removed=True, confirmed_at=now)


handlers.register("mirror.group_delete")(_groups_deleted)
handlers.register("mirror.group_delete_batch")(_groups_deleted)


@handlers.register("mirror.inverter_add")
def on_member_add(call: ApiCall, outcome: handlers.Outcome) -> None:
    if not _ok(outcome):
        return
    assert outcome.envelope is not None
    group = Group.objects.filter(account=call.account, code=call.context["group"]).first()
    if group is None:
        return
    remote_id = endpoints.RESULT_PARSERS["inverter_add"](outcome.envelope)
    now = timezone.now()
    member, _ = Inverter.objects.update_or_create(
        account=call.account, remote_id=remote_id,
        defaults={"group": group, "inverter_sn": call.context["sn"], "dongle_sn": "", "removed": False,
                  "in_group": True, "remote_created": now, "confirmed_at": now})
    Group.objects.filter(pk=group.pk).update(device_count=F("device_count") + 1, confirmed_at=now)
    ApiCall.objects.filter(pk=call.pk).update(context={**call.context, "codes": [str(member.code)]})
    sync.request_members_reread(group)  # the answer has no dongle SN: read it from the group's members


@handlers.register("mirror.inverter_update")
def on_member_replace(call: ApiCall, outcome: handlers.Outcome) -> None:
    if not _ok(outcome):
        return
    now = timezone.now()
    # The new inverter's dongle is not in the answer: the group's members are re-read for it.
    Inverter.objects.filter(account=call.account, code__in=call.context["codes"]).update(
        inverter_sn=call.context["sn"], dongle_sn="", remote_updated=now, confirmed_at=now)
    group = Group.objects.filter(account=call.account, code=call.context.get("group")).first()
    if group is not None:
        Group.objects.filter(pk=group.pk).update(confirmed_at=now)
        sync.request_members_reread(group)


def _members_deleted(call: ApiCall, outcome: handlers.Outcome) -> None:
    if not _ok(outcome):
        return
    now = timezone.now()
    members = Inverter.objects.filter(account=call.account, code__in=call.context["codes"], removed=False)
    removed = members.update(removed=True, confirmed_at=now)
    Group.objects.filter(account=call.account, code=call.context["group"]).update(confirmed_at=now)
    Group.objects.filter(account=call.account, code=call.context["group"], device_count__gte=removed).update(
        device_count=F("device_count") - removed)


handlers.register("mirror.inverter_delete")(_members_deleted)
handlers.register("mirror.inverter_delete_batch")(_members_deleted)

