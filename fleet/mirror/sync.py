"""Keeping the local mirror in step with the cloud: groups and their members, at READ priority.

A sync is a SyncRun and a chain of ApiCalls. The first group page is enqueued; each answer is
upserted in bulk by its handler, which enqueues the next group page (or, after the last one, marks the
groups that left the cloud as removed) and the first member page of every group that changed. Member
pages of one group follow each other the same way; after the last, the members that left are marked
removed. Chains keep removal safe: a group's members are only marked removed once every page of that
group was read in this run. The run finishes when none of its calls is left in the queue.

A group whose member count and update time are unchanged is skipped when its members were read
completely before, and not longer ago than FLEET_SYNC_FULL_HOURS (the cloud does not touch a group's
update time when a member's inverter is replaced, so a skip cannot be trusted forever).
"""

from __future__ import annotations

import logging
import math
import zoneinfo
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from fleet.models import ApiCall, CallState, Group, Inverter, Priority, SolaxAccount, SyncRun
from fleet.pipeline import handlers, ledger, queue
from solax import endpoints
from solax.models import Group as RemoteGroup
from solax.models import Member as RemoteMember
from solax.models import Page

log = logging.getLogger("fleet.sync")

ORIGIN = "sync"
RUNNING, DONE, FAILED = "running", "done", "failed"


def page_size() -> int:
    return settings.FLEET_SYNC_PAGE_SIZE


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


def _enqueue_group_page(run: SyncRun, number: int, *, full: bool) -> None:
    queue.enqueue(
        run.account, "group_query", endpoints.group_query_params(number, page_size()),
        purpose=f"sync: groups page {number}", priority=Priority.READ, handler="sync.group_page",
        context={"run": run.pk, "page": number, "full": full}, origin_kind=ORIGIN, origin_code=run.code,
    )


def _enqueue_member_page(run: SyncRun, group: Group, number: int, *, full: bool) -> None:
    queue.enqueue(
        run.account, "inverter_query", endpoints.inverter_query_params(group.remote_id, number, page_size()),
        purpose=f"sync: members of {group.name} page {number}", priority=Priority.READ,
        handler="sync.member_page",
        context={"run": run.pk, "group": group.pk, "remote_id": group.remote_id, "name": group.name,
                 "count": group.device_count, "page": number, "full": full},
        origin_kind=ORIGIN, origin_code=run.code,
    )


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

def apply_group_page(run: SyncRun, page: Page[RemoteGroup], *, full: bool = False) -> list[Group]:
    """Upsert one page of groups and return the groups whose members must be read in this run.

    A group needs its members read when its count or update time changed, when its members were
    never read completely, when that was longer ago than FLEET_SYNC_FULL_HOURS, or when ``full``.
    A group that the cloud reports empty has its local members marked removed at once.
    """
    account = run.account
    tz = _tz(account)
    now = timezone.now()
    remote_ids = [item.id for item in page.items]
    before = {g.remote_id: g for g in Group.objects.filter(account=account, remote_id__in=remote_ids).only(
        "remote_id", "device_count", "remote_updated", "members_synced_at", "removed")}
    rows = [Group(account=account, remote_id=item.id, name=item.name[:100], device_count=item.member_count,
                  remote_created=remote_time(item.create_time, tz), remote_updated=remote_time(item.update_time, tz),
                  synced_at=now, removed=False) for item in page.items]
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
              or old.members_synced_at < stale):
            changed_ids.append(row.remote_id)
    if empty_ids:
        Inverter.objects.filter(account=account, group__remote_id__in=empty_ids, removed=False).update(
            removed=True, synced_at=now)
        Group.objects.filter(account=account, remote_id__in=empty_ids).update(members_synced_at=now)
    return list(Group.objects.filter(account=account, remote_id__in=changed_ids).only(
        "pk", "remote_id", "name", "device_count", "account_id"))


def mark_removed_groups(run: SyncRun) -> int:
    """After the last group page: groups this run did not see left the cloud. Returns how many."""
    now = timezone.now()
    gone = Group.objects.filter(account=run.account, removed=False).exclude(synced_at__gte=run.started)
    gone_ids = list(gone.values_list("pk", flat=True))
    if gone_ids:
        Inverter.objects.filter(group_id__in=gone_ids, removed=False).update(removed=True, synced_at=now)
        Group.objects.filter(pk__in=gone_ids).update(removed=True, synced_at=now)
    return len(gone_ids)


def apply_member_page(run: SyncRun, group: Group, page: Page[RemoteMember]) -> int:
    """Upsert one page of a group's members (a member that moved groups moves here). Returns how many."""
    account = run.account
    tz = _tz(account)
    now = timezone.now()
    rows = [(item.id, item.inverter_sn or "", item.wifi_sn or "", item.rated_power, item.in_group,
             remote_time(item.create_time, tz), remote_time(item.update_time, tz)) for item in page.items]
    if connection.vendor == "postgresql":
        _upsert_members_postgresql(account.pk, group.pk, rows, now)
    else:
        Inverter.objects.bulk_create(
            [Inverter(account_id=account.pk, group_id=group.pk, remote_id=r[0], inverter_sn=r[1], dongle_sn=r[2],
                      rated_power=r[3], in_group=r[4], remote_created=r[5], remote_updated=r[6], synced_at=now,
                      removed=False) for r in rows],
            update_conflicts=True, unique_fields=["account", "remote_id"], update_fields=_MEMBER_UPDATES,
            batch_size=1000)
    return len(rows)


_MEMBER_UPDATES = ["group", "inverter_sn", "dongle_sn", "rated_power", "in_group", "remote_created",
                   "remote_updated", "synced_at", "removed"]


def _upsert_members_postgresql(account_id: int, group_id: int, rows: list[tuple[Any, ...]], now: datetime) -> None:
    """The same upsert as bulk_create(update_conflicts=True), as one statement over arrays: the large
    fleet's sync spent half its database time building 50,000 model instances and their SQL."""
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
        "remote_updated = EXCLUDED.remote_updated, synced_at = EXCLUDED.synced_at, removed = false"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [account_id, group_id, now, *(list(column) for column in columns)])


def finish_group_members(run: SyncRun, group: Group) -> int:
    """After a group's last member page: members this run did not see left it. Returns how many."""
    now = timezone.now()
    removed = Inverter.objects.filter(group_id=group.pk, removed=False).exclude(
        synced_at__gte=run.started).update(removed=True, synced_at=now)
    Group.objects.filter(pk=group.pk).update(members_synced_at=now)
    return removed


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
    number, full = int(call.context["page"]), bool(call.context.get("full"))
    pages = max(1, math.ceil(page.total / page_size()))
    changed = apply_group_page(run, page, full=full)
    member_pages = sum(max(1, math.ceil(g.device_count / page_size())) for g in changed)
    extra = member_pages + (pages - 1 if number == 1 else 0)
    _count_call(run, outcome, groups_seen=len(page.items), pages_total=extra)
    for group in changed:
        _enqueue_member_page(run, group, 1, full=full)
    if number < pages and page.items:
        _enqueue_group_page(run, number + 1, full=full)
    else:
        mark_removed_groups(run)
    finish_if_idle(run)


@handlers.register("sync.member_page")
def on_member_page(call: ApiCall, outcome: handlers.Outcome) -> None:
    run = _run_for(call)
    if run is None:
        return
    # The group as its group page saw it, from the context: one query less per page. Should the local
    # group be deleted meanwhile, the upsert fails on its foreign key, the handler's savepoint rolls
    # back, and the beat tick (sync_due_accounts) finishes the run.
    ctx = call.context
    group = Group(pk=ctx["group"], account_id=run.account_id, remote_id=ctx["remote_id"], name=ctx["name"],
                  device_count=ctx.get("count", 0))
    if outcome.state != CallState.SUCCEEDED or outcome.envelope is None:
        _count_call(run, outcome)
        _fail(run, call, outcome)
        finish_if_idle(run)
        return
    page = endpoints.RESULT_PARSERS["inverter_query"](outcome.envelope)
    number = int(call.context["page"])
    pages = max(1, math.ceil(page.total / page_size()))
    expected = max(1, math.ceil(group.device_count / page_size()))
    seen = apply_member_page(run, group, page)
    # The cloud's count may have moved since the group page: correct the plan on the first page.
    _count_call(run, outcome, members_seen=seen, pages_total=(pages - expected) if number == 1 else 0)
    if number < pages and page.items:
        _enqueue_member_page(run, group, number + 1, full=bool(call.context.get("full")))
    else:
        finish_group_members(run, group)
    finish_if_idle(run)


def finish_if_idle(run: SyncRun) -> bool:
    """Finish the run when none of its calls is queued or being sent. Returns True if it finished."""
    pending = ApiCall.objects.filter(origin_kind=ORIGIN, origin_code=run.code,
                                     state__in=(CallState.QUEUED, CallState.SENDING)).exists()
    if pending:
        return False
    run.refresh_from_db(fields=["error"])
    return SyncRun.objects.filter(pk=run.pk, state=RUNNING).update(
        state=FAILED if run.error else DONE, finished=timezone.now()) == 1


# The periodic sync ---------------------------------------------------------------------------

def estimated_calls(account: SolaxAccount) -> int:
    """Return the calls a sync of the account would need if every group changed."""
    groups = Group.objects.filter(account=account, removed=False).values_list("device_count", flat=True)
    size = page_size()
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
