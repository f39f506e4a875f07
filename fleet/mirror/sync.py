"""Keeping the local mirror in step with the cloud: groups and their members, at READ priority.

A sync is a SyncRun and a chain of ApiCalls. The first group page is enqueued; each answer is
upserted in bulk by its handler, which enqueues the next group page (or, after the last one, marks the
groups that left the cloud as removed) and the first member page of every group that changed. Member
pages of one group follow each other the same way; after the last, the members that left are marked
removed. Chains keep removal safe: a group's members are only marked removed once every page of that
group was read in this run. The run finishes when none of its calls is left in the queue.

A group whose member count and update time are unchanged is skipped when its members were read
completely before, and not longer ago than FLEET_SYNC_FULL_HOURS (the cloud does not touch a group's
update time when a member's inverter is replaced, so a skip cannot be trusted forever), and when no
confirmed local write touched it since that read.

Paging goes by what came back, never by the size asked (a cloud may cap a page below it): a list is
read until the items seen reach the first page's ``num``; a first page shorter than asked sets the size
of the following pages. A page that contradicts the count (``num`` moved, an empty or short page before
``num``, more items than ``num``, duplicates) ends that list's read as incomplete: what was read is kept,
nothing is marked removed from that list, the group is read again next time, and the run ends
INCOMPLETE with the reasons (``SyncRun.incomplete``). See ``next_step``.

A row changed by a confirmed local write after a page was requested (``confirmed_at`` newer than the
page call's ``sent_at``) keeps its newer state, and is never marked removed by a read that started
before that write.
"""

from __future__ import annotations

import logging
import math
import zoneinfo
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from fleet import events
from fleet.models import ApiCall, CallState, Group, Inverter, Priority, SolaxAccount, SyncRun
from fleet.pipeline import handlers, ledger, queue
from solax import endpoints
from solax.models import Group as RemoteGroup
from solax.models import Member as RemoteMember
from solax.models import Page

log = logging.getLogger("fleet.sync")

ORIGIN = "sync"
RUNNING, DONE, INCOMPLETE, FAILED = "running", "done", "incomplete", "failed"


def page_size() -> int:
    return settings.FLEET_SYNC_PAGE_SIZE


def planned_size(account: SolaxAccount) -> int:
    """The items a page will bring back: the size asked, or less if the cloud capped pages of this
    account the last time (``SolaxAccount.sync_page_cap``, learned by ``learn_cap``)."""
    cap = account.sync_page_cap
    return min(page_size(), cap) if cap else page_size()


def learn_cap(account: SolaxAccount, number: int, asked: int, step: Step) -> None:
    """Remember the page size the cloud actually returns: a first page shorter than asked and than
    the count shows the cap; a first page bringing more items than the cap shows it is gone."""
    cap: int | None
    if number != 1:
        return
    if step.more and step.size < asked:
        cap = step.size
    elif account.sync_page_cap and step.seen > account.sync_page_cap:
        cap = None
    else:
        return
    if account.sync_page_cap != cap:
        SolaxAccount.objects.filter(pk=account.pk).update(sync_page_cap=cap)
        account.sync_page_cap = cap


def start_sync(account: SolaxAccount, *, full: bool = False) -> SyncRun:
    """Start a sync of the account unless one is running; return the running or the new SyncRun.

    ``full`` re-reads the members of every group, changed or not.
    """
    with transaction.atomic():
        # Lock the account row so two clicks on "sync now" cannot start two runs.
        SolaxAccount.objects.select_for_update().filter(pk=account.pk).first()
        running = SyncRun.objects.filter(account=account, state=RUNNING).first()
        if running is not None:
            return running
        run = SyncRun.objects.create(account=account, pages_total=1)
        _enqueue_group_page(run, 1, full=full)
    return run


def _enqueue_group_page(run: SyncRun, number: int, *, full: bool, read: dict[str, Any] | None = None) -> None:
    """Queue a page of the group list; ``read`` carries the read so far (see ``next_step``)."""
    read = read or {}
    size = int(read.get("size") or page_size())
    queue.enqueue(
        run.account, "group_query", endpoints.group_query_params(number, size),
        purpose=f"sync: groups page {number}", priority=Priority.READ, handler="sync.group_page",
        context={"run": run.pk, "page": number, "full": full, **read}, origin_kind=ORIGIN, origin_code=run.code,
    )


def _enqueue_member_page(run: SyncRun | None, group: Group, number: int, *, full: bool,
                         read: dict[str, Any] | None = None, planned: int | None = None) -> None:
    """Queue a page of a group's members: for a run (READ priority), or without one (``run`` None) the
    re-read after a local write, at MANAGEMENT priority so that the dongle SN arrives soon."""
    read = read or {}
    size = int(read.get("size") or page_size())
    account = run.account if run is not None else group.account
    queue.enqueue(
        account, "inverter_query", endpoints.inverter_query_params(group.remote_id, number, size),
        purpose=f"{'sync' if run else 're-read'}: members of {group.name} page {number}",
        priority=Priority.READ if run is not None else Priority.MANAGEMENT,
        handler="sync.member_page",
        context={"run": run.pk if run is not None else None, "group": group.pk, "remote_id": group.remote_id,
                 "name": group.name, "count": group.device_count, "page": number, "full": full,
                 **({"planned": planned} if planned else {}), **read},
        origin_kind=ORIGIN if run is not None else "group",
        origin_code=run.code if run is not None else group.code,
    )


def request_members_reread(group: Group) -> bool:
    """Re-read a group's members after a confirmed local write (the answers of member add and replace
    carry no dongle SN, and the group's update time need not change). Budgeted like every call; one
    queued re-read per group is enough. Returns True if a re-read was queued."""
    queued = ApiCall.objects.filter(account_id=group.account_id, endpoint="inverter_query", state=CallState.QUEUED,
                                    handler="sync.member_page", context__group=group.pk, context__page=1,
                                    context__run=None).exists()
    if queued:
        return False
    _enqueue_member_page(None, group, 1, full=True)
    return True


# Paging by what came back ---------------------------------------------------------------------

@dataclass(frozen=True)
class Step:
    """What to do after one page of a list: ``more`` asks for the next page with ``size`` items;
    ``problem`` says why the read cannot be trusted (empty when it can)."""

    num: int
    seen: int
    size: int
    more: bool
    problem: str = ""

    @property
    def complete(self) -> bool:
        return not self.more and not self.problem


def repeats(ids: list[str]) -> str:
    """Return why a page that lists an id twice cannot be trusted, or ""."""
    twice = len(ids) - len(set(ids))
    return f"{twice} item(s) listed twice on one page" if twice else ""


def next_step(number: int, asked: int, total: int, items: int, read: dict[str, Any]) -> Step:
    """Decide on the page after page ``number`` of a list (``asked`` items asked, ``items`` came back,
    the cloud's ``total``), given the read so far (``read["num"]``, ``read["seen"]``).

    The read goes by the first page's count. A first page shorter than asked and than the count shows
    the cloud's cap: the next pages ask for that many, so that the offsets agree whatever the cloud
    does with a larger size. Any other page that contradicts the count ends the read with a problem.
    """
    num = total if number == 1 else int(read.get("num", total))
    seen = int(read.get("seen", 0)) + items
    if total != num:
        return Step(num, seen, asked, False, f"the count changed from {num} to {total} on page {number}")
    if seen > num:
        return Step(num, seen, asked, False, f"{seen} items came back for a count of {num}")
    if seen == num:
        return Step(num, seen, asked, False)
    if items == 0:
        return Step(num, seen, asked, False, f"page {number} came back empty after {seen - items} of {num}")
    if items < asked:
        if number == 1:
            return Step(num, seen, items, True)
        return Step(num, seen, asked, False, f"page {number} came back with {items} of {asked} items, "
                                             f"{seen} of {num} seen")
    return Step(num, seen, asked, True)


def _read_state(call: ApiCall, step: Step, skipped: int) -> dict[str, Any]:
    """The read so far, carried in the context of the next page's call."""
    ctx = call.context
    started = ctx.get("read_from") or (call.sent_at or timezone.now()).isoformat()
    return {"size": step.size, "num": step.num, "seen": step.seen, "read_from": started,
            "skipped": int(ctx.get("skipped", 0)) + skipped}


def _asked(call: ApiCall) -> int:
    try:
        return int(call.params.get("size") or page_size())
    except (TypeError, ValueError):
        return page_size()


def _requested_at(call: ApiCall) -> datetime:
    """When this page was asked for: rows confirmed later are newer than its answer."""
    return call.sent_at or call.created or timezone.now()


def _incomplete(run: SyncRun | None, what: str, problem: str) -> None:
    message = f"{what}: {problem}"[:500]
    log.warning("sync read incomplete: %s", message)
    if run is None:
        return
    run.refresh_from_db(fields=["incomplete"])
    SyncRun.objects.filter(pk=run.pk).update(incomplete=(run.incomplete + "\n" + message).strip()[:2000])


def remote_time(text: str | None, tz: zoneinfo.ZoneInfo) -> datetime | None:
    """Return the cloud's ``2020-12-10 15:32:17`` (local time of the account) as an aware datetime."""
    if not text:
        return None
    try:
        naive = datetime.fromisoformat(str(text).strip().replace("T", " "))
    except ValueError:
        return None
    return naive.replace(tzinfo=tz) if naive.tzinfo is None else naive


def _tz(account: SolaxAccount) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(account.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


# Applying pages: the database work, also called directly by the benchmark -------------------

def apply_group_page(run: SyncRun, page: Page[RemoteGroup], *, full: bool = False,
                     requested_at: datetime | None = None) -> list[Group]:
    """Upsert one page of groups and return the groups whose members must be read in this run.

    A group needs its members read when its count or update time changed, when its members were
    never read completely, when that was longer ago than FLEET_SYNC_FULL_HOURS, when a confirmed local
    write touched it since, or when ``full``. A group that the cloud reports empty has its local
    members marked removed at once. A group confirmed by a local write after ``requested_at`` (when
    the page was asked for) keeps its newer state: this page is older than it.
    """
    account = run.account
    tz = _tz(account)
    now = timezone.now()
    remote_ids = [item.id for item in page.items]
    before = {g.remote_id: g for g in Group.objects.filter(account=account, remote_id__in=remote_ids).only(
        "remote_id", "device_count", "remote_updated", "members_synced_at", "removed", "confirmed_at")}
    newer = {rid for rid, g in before.items()
             if requested_at is not None and g.confirmed_at is not None and g.confirmed_at >= requested_at}
    items = {item.id: item for item in page.items if item.id not in newer}  # a repeated id once (next_step)
    rows = [Group(account=account, remote_id=item.id, name=item.name[:100], device_count=item.member_count,
                  remote_created=remote_time(item.create_time, tz), remote_updated=remote_time(item.update_time, tz),
                  synced_at=now, removed=False) for item in items.values()]
    Group.objects.bulk_create(rows, update_conflicts=True, unique_fields=["account", "remote_id"],
                              update_fields=["name", "device_count", "remote_created", "remote_updated",
                                             "synced_at", "removed"], batch_size=500)
    stale = now - timedelta(hours=settings.FLEET_SYNC_FULL_HOURS)
    changed_ids: list[str] = []
    empty_ids: list[str] = []
    for row in rows:
        old = before.get(row.remote_id)
        if row.device_count == 0:
            empty_ids.append(row.remote_id)
        elif (full or old is None or old.removed or old.device_count != row.device_count
              or old.remote_updated != row.remote_updated or old.members_synced_at is None
              or old.members_synced_at < stale
              or (old.confirmed_at is not None and old.confirmed_at >= old.members_synced_at)):
            changed_ids.append(row.remote_id)
    if empty_ids:
        emptied = Inverter.objects.filter(account=account, group__remote_id__in=empty_ids, removed=False)
        if requested_at is not None:  # a member confirmed after the page was asked for is newer than it
            emptied = emptied.exclude(confirmed_at__gte=requested_at)
        emptied.update(removed=True, synced_at=now)
        Group.objects.filter(account=account, remote_id__in=empty_ids).update(members_synced_at=now)
    return list(Group.objects.filter(account=account, remote_id__in=changed_ids).only(
        "pk", "remote_id", "name", "device_count", "account_id"))


def mark_removed_groups(run: SyncRun, read_from: datetime | None = None) -> int:
    """After a complete read of the group list that started at ``read_from`` (default: the run's
    start): groups it did not see left the cloud, unless a confirmed local write is newer than the
    read. Returns how many."""
    now = timezone.now()
    since = read_from or run.started
    gone = Group.objects.filter(account=run.account, removed=False).exclude(synced_at__gte=since).exclude(
        confirmed_at__gte=since)
    gone_ids = list(gone.values_list("pk", flat=True))
    if gone_ids:
        Inverter.objects.filter(group_id__in=gone_ids, removed=False).update(removed=True, synced_at=now)
        Group.objects.filter(pk__in=gone_ids).update(removed=True, synced_at=now)
    return len(gone_ids)


def apply_member_page(run: SyncRun | None, group: Group, page: Page[RemoteMember], *,
                      requested_at: datetime | None = None) -> int:
    """Upsert one page of a group's members (a member that moved groups moves here). Returns how many
    rows were written: a row confirmed by a local write after ``requested_at`` keeps its newer state."""
    account_id = group.account_id
    tz = _tz(run.account if run is not None else SolaxAccount.objects.only("timezone").get(pk=account_id))
    now = timezone.now()
    items = list({item.id: item for item in page.items}.values())  # a repeated id once (next_step)
    if connection.vendor == "postgresql":  # the statement itself leaves newer rows alone
        rows = [(item.id, item.inverter_sn or "", item.wifi_sn or "", item.rated_power, item.in_group,
                 remote_time(item.create_time, tz), remote_time(item.update_time, tz)) for item in items]
        return _upsert_members_postgresql(account_id, group.pk, rows, now, requested_at)
    # SQLite: the write lock of the handler's transaction keeps other writers out from here on. A local
    # write always marks its group confirmed too, so an untouched group needs no look at its rows.
    if requested_at is not None and Group.objects.filter(pk=group.pk, confirmed_at__gte=requested_at).exists():
        newer = set(Inverter.objects.filter(account_id=account_id, remote_id__in=[i.id for i in items],
                                            confirmed_at__gte=requested_at).values_list("remote_id", flat=True))
        items = [item for item in items if item.id not in newer]
    rows = [(item.id, item.inverter_sn or "", item.wifi_sn or "", item.rated_power, item.in_group,
             remote_time(item.create_time, tz), remote_time(item.update_time, tz)) for item in items]
    Inverter.objects.bulk_create(
        [Inverter(account_id=account_id, group_id=group.pk, remote_id=r[0], inverter_sn=r[1], dongle_sn=r[2],
                  rated_power=r[3], in_group=r[4], remote_created=r[5], remote_updated=r[6], synced_at=now,
                  removed=False) for r in rows],
        update_conflicts=True, unique_fields=["account", "remote_id"], update_fields=_MEMBER_UPDATES,
        batch_size=1000)
    return len(rows)


_MEMBER_UPDATES = ["group", "inverter_sn", "dongle_sn", "rated_power", "in_group", "remote_created",
                   "remote_updated", "synced_at", "removed"]


def _upsert_members_postgresql(account_id: int, group_id: int, rows: list[tuple[Any, ...]], now: datetime,
                               requested_at: datetime | None = None) -> int:
    """The same upsert as bulk_create(update_conflicts=True), as one statement over arrays: the large
    fleet's sync spent half its database time building 50,000 model instances and their SQL. A row
    confirmed after ``requested_at`` is left alone, checked in the statement itself so that a write
    confirmed by another worker meanwhile is not overwritten either. Returns the rows written."""
    table = connection.ops.quote_name(Inverter._meta.db_table)
    columns: list[tuple[Any, ...]] = list(zip(*rows, strict=True)) if rows else [() for _ in range(7)]
    sql = (  # only the model's own quoted table name is interpolated; every value is a parameter
        f"INSERT INTO {table} (account_id, group_id, code, remote_id, inverter_sn, dongle_sn, rated_power, "  # noqa: S608
        "in_group, remote_created, remote_updated, synced_at, removed) "
        "SELECT %s, %s, gen_random_uuid(), * , %s, false FROM unnest("
        "%s::varchar[], %s::varchar[], %s::varchar[], %s::float8[], %s::bool[], %s::timestamptz[], "
        "%s::timestamptz[]) "
        "ON CONFLICT (account_id, remote_id) DO UPDATE SET group_id = EXCLUDED.group_id, "
        "inverter_sn = EXCLUDED.inverter_sn, dongle_sn = EXCLUDED.dongle_sn, rated_power = EXCLUDED.rated_power, "
        "in_group = EXCLUDED.in_group, remote_created = EXCLUDED.remote_created, "
        "remote_updated = EXCLUDED.remote_updated, synced_at = EXCLUDED.synced_at, removed = false "
        f"WHERE {table}.confirmed_at IS NULL OR {table}.confirmed_at < %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [account_id, group_id, now, *(list(column) for column in columns), requested_at or now])
        return int(cursor.rowcount)


def finish_group_members(run: SyncRun | None, group: Group, read_from: datetime | None = None,
                         num: int | None = None) -> int:
    """After a complete read of a group's members that started at ``read_from`` (default: the run's
    start): members it did not see left the group, unless a confirmed local write is newer than the
    read. The group counts as read as of ``read_from``, and takes the count ``num`` unless a local write
    is newer. Returns how many were marked removed."""
    now = timezone.now()
    since = read_from or (run.started if run is not None else now)
    removed = Inverter.objects.filter(group_id=group.pk, removed=False).exclude(
        synced_at__gte=since).exclude(confirmed_at__gte=since).update(removed=True, synced_at=now)
    Group.objects.filter(pk=group.pk).update(members_synced_at=since)
    if num is not None:
        Group.objects.filter(pk=group.pk).exclude(confirmed_at__gte=since).update(device_count=num)
    return removed


def _fresh_members(group: Group, since: datetime) -> int:
    return Inverter.objects.filter(group_id=group.pk, synced_at__gte=since).count()


def _fresh_groups(account_id: int, since: datetime) -> int:
    return Group.objects.filter(account_id=account_id, synced_at__gte=since).count()


# Handlers ------------------------------------------------------------------------------------

def _run_for(call: ApiCall) -> SyncRun | None:
    return SyncRun.objects.select_related("account").filter(pk=call.context.get("run")).first()


def _count_call(run: SyncRun, outcome: handlers.Outcome, **increments: Any) -> None:
    updates: dict[str, Any] = {"calls_used": F("calls_used") + 1}
    if outcome.state == CallState.SUCCEEDED:
        updates["pages_done"] = F("pages_done") + 1
    for field, value in increments.items():
        updates[field] = F(field) + value
    SyncRun.objects.filter(pk=run.pk).update(**updates)


def _fail(run: SyncRun, call: ApiCall, outcome: handlers.Outcome) -> None:
    text = str(outcome.error) if outcome.error else (outcome.envelope.exception if outcome.envelope else "")
    message = f"{call.purpose}: {text or outcome.state}"[:500]
    run.refresh_from_db(fields=["error"])
    SyncRun.objects.filter(pk=run.pk).update(error=(run.error + "\n" + message).strip()[:2000])


@handlers.register("sync.group_page")
def on_group_page(call: ApiCall, outcome: handlers.Outcome) -> None:
    run = _run_for(call)
    if run is None:
        return
    if outcome.state != CallState.SUCCEEDED or outcome.envelope is None:
        _count_call(run, outcome)
        _fail(run, call, outcome)
        finish_if_idle(run)
        return
    page = endpoints.RESULT_PARSERS["group_query"](outcome.envelope)
    ctx = call.context
    number, full = int(ctx["page"]), bool(ctx.get("full"))
    step = next_step(number, _asked(call), page.total, len(page.items), ctx)
    ids = [item.id for item in page.items]
    changed = apply_group_page(run, page, full=full, requested_at=_requested_at(call))
    newer = Group.objects.filter(account_id=run.account_id, remote_id__in=set(ids),
                                 confirmed_at__gte=_requested_at(call)).count()
    read = _read_state(call, step, skipped=newer)
    if repeats(ids):
        step = Step(step.num, step.seen, step.size, False, f"page {number}: {repeats(ids)}")
    learn_cap(run.account, number, _asked(call), step)
    planned = planned_size(run.account)
    member_pages = sum(max(1, math.ceil(g.device_count / planned)) for g in changed)
    pages = max(1, math.ceil(step.num / max(1, step.size)))
    extra = member_pages + (pages - 1 if number == 1 and step.more else 0)
    _count_call(run, outcome, groups_seen=len(page.items), pages_total=extra)
    for group in changed:
        _enqueue_member_page(run, group, 1, full=full, planned=planned)
    if step.more:
        _enqueue_group_page(run, number + 1, full=full, read=read)
    elif step.problem:
        _incomplete(run, "group list", step.problem + "; no group was marked removed")
    else:
        since = datetime.fromisoformat(read["read_from"])
        fresh = _fresh_groups(run.account_id, since) + int(read["skipped"])
        if fresh < step.num:
            _incomplete(run, "group list", f"{step.num - fresh} duplicate(s) among {step.num} groups; "
                                           "no group was marked removed")
        else:
            mark_removed_groups(run, since)
    finish_if_idle(run)


@handlers.register("sync.member_page")
def on_member_page(call: ApiCall, outcome: handlers.Outcome) -> None:
    ctx = call.context
    run = _run_for(call) if ctx.get("run") is not None else None
    if run is None and ctx.get("run") is not None:
        return  # the run is gone
    # The group as its group page saw it, from the context: one query less per page. Should the local
    # group be deleted meanwhile, the upsert fails on its foreign key, the handler's savepoint rolls
    # back, and the beat tick (sync_due_accounts) finishes the run.
    group = Group(pk=ctx["group"], account_id=call.account_id, remote_id=ctx["remote_id"], name=ctx["name"],
                  device_count=ctx.get("count", 0))
    if outcome.state != CallState.SUCCEEDED or outcome.envelope is None:
        if run is not None:
            _count_call(run, outcome)
            _fail(run, call, outcome)
            finish_if_idle(run)
        return
    page = endpoints.RESULT_PARSERS["inverter_query"](outcome.envelope)
    number = int(ctx["page"])
    step = next_step(number, _asked(call), page.total, len(page.items), ctx)
    ids = [item.id for item in page.items]
    written = apply_member_page(run, group, page, requested_at=_requested_at(call))
    read = _read_state(call, step, skipped=len(set(ids)) - written)
    if repeats(ids):
        step = Step(step.num, step.seen, step.size, False, f"page {number}: {repeats(ids)}")
    if run is not None:
        learn_cap(run.account, number, _asked(call), step)
        # The cloud's count or cap may differ from the group page's plan: correct it on the first page.
        pages = max(1, math.ceil(step.num / max(1, step.size)))
        expected = max(1, math.ceil(group.device_count / int(ctx.get("planned") or page_size())))
        _count_call(run, outcome, members_seen=len(page.items),
                    pages_total=(pages - expected) if number == 1 else 0)
    if step.more:
        _enqueue_member_page(run, group, number + 1, full=bool(ctx.get("full")), read=read)
    elif step.problem:
        _members_incomplete(run, group, step.problem)
    else:
        since = datetime.fromisoformat(read["read_from"])
        fresh = _fresh_members(group, since) + int(read["skipped"])
        if fresh < step.num:
            _members_incomplete(run, group, f"{step.num - fresh} duplicate(s) among {step.num} members")
        else:
            finish_group_members(run, group, since, step.num)
    if run is not None:
        finish_if_idle(run)


def _members_incomplete(run: SyncRun | None, group: Group, problem: str) -> None:
    """A contradicted read of a group's members: keep what was read, remove nothing, read it next time."""
    Group.objects.filter(pk=group.pk).update(members_synced_at=None)
    _incomplete(run, f"members of {group.name}", problem + "; no member was marked removed")


def finish_if_idle(run: SyncRun) -> bool:
    """Finish the run when none of its calls is queued or being sent. Returns True if it finished."""
    pending = ApiCall.objects.filter(origin_kind=ORIGIN, origin_code=run.code,
                                     state__in=(CallState.QUEUED, CallState.SENDING)).exists()
    if pending:
        return False
    run.refresh_from_db(fields=["error", "incomplete"])
    state = FAILED if run.error else INCOMPLETE if run.incomplete else DONE
    if SyncRun.objects.filter(pk=run.pk, state=RUNNING).update(state=state, finished=timezone.now()) != 1:
        return False
    run.state = state
    events.send(events.sync_finished, SyncRun, run=run, state=state)
    return True


# The periodic sync ---------------------------------------------------------------------------

def estimated_calls(account: SolaxAccount) -> int:
    """Return the calls a sync of the account would need if every group changed, in pages of the size
    the cloud returned last time (its cap, when it capped below the size asked)."""
    groups = Group.objects.filter(account=account, removed=False).values_list("device_count", flat=True)
    size = planned_size(account)
    return max(1, math.ceil(len(groups) / size)) + sum(max(1, math.ceil(n / size)) for n in groups if n)


def sync_due_accounts(now: datetime | None = None) -> list[SyncRun]:
    """The beat tick: start a sync for every account whose last one is older than the interval and
    whose budget can pay for it without touching the control reserve. Also finishes runs whose last
    handler raced another. Returns the runs started."""
    now = now or timezone.now()
    for run in SyncRun.objects.filter(state=RUNNING).select_related("account"):
        finish_if_idle(run)
    started = []
    interval = timedelta(minutes=settings.FLEET_SYNC_INTERVAL_MINUTES)
    for account in SolaxAccount.objects.all():
        last = SyncRun.objects.filter(account=account).order_by("-started").first()
        if last is not None and (last.state == RUNNING or last.started > now - interval):
            continue
        budget = ledger.budget_of(account, now)
        if budget.day_free - budget.control_reserve < estimated_calls(account):
            log.info("sync of account %s postponed: the budget cannot pay for it today", account.pk)
            continue
        started.append(start_sync(account))
    return started
