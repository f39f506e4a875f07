"""Devices of an account that are in no group: the cloud has no list of them, so they are gathered
from what the mirror learned elsewhere.

- dongles this account bound (binding results: "Binding success" and "Have bound sn"): known by the
  dongle SN only (the registration number); the inverter SN, which a member add needs, is typed by the
  operator. Recorded as ``UngroupedDevice`` rows (source "bound") when the binding answer arrives, so
  a bound dongle appears at once;
- devices the cloud's fuzzy member query (VPP 3.6) reported with ``groupStatus`` 0, in no group: an
  operator's "look up in the cloud" on the ungrouped page, one budgeted read through the pipeline
  (``request_lookup``), recorded as ``UngroupedDevice`` rows (source "cloud") with both SNs;
- inverters that left a group (their removed member rows) and are in no other group: both SNs.

The page is one SQL query (a UNION of the two sources, every exclusion a NOT EXISTS on the member
indexes, which the database runs as an anti-join) plus its count: nothing is gathered in Python,
whatever the size of the fleet.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db.models import CharField, Exists, F, OuterRef, Q, QuerySet, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from fleet.mirror import writes
from fleet.models import ApiCall, Group, Inverter, Priority, SolaxAccount, UngroupedDevice
from fleet.pipeline import handlers, queue
from solax import endpoints

LOOKUP_HANDLER = "ungrouped.lookup"
COLUMNS = ("dongle", "inverter", "src", "seen_at", "group_name")


def _current(account: SolaxAccount) -> QuerySet[Inverter]:
    return Inverter.objects.filter(account=account, removed=False)


def ungrouped_devices(account: SolaxAccount, q: str = "") -> QuerySet[Any]:
    """Return the account's devices in no group, newest first, as dicts with ``COLUMNS``: a lazy
    queryset, so that a paginator counts and slices it in the database (two queries)."""
    current = _current(account)
    left_rows = Inverter.objects.filter(account=account, removed=True)
    left = (left_rows
            .exclude(Exists(current.filter(inverter_sn=OuterRef("inverter_sn"))))
            .exclude(Exists(current.filter(dongle_sn=OuterRef("dongle_sn")).exclude(dongle_sn="")))
            # one row per inverter SN: the latest member row it left
            .exclude(Exists(left_rows.filter(inverter_sn=OuterRef("inverter_sn"), pk__gt=OuterRef("pk")))))
    known = (UngroupedDevice.objects.filter(account=account)
             .exclude(Exists(current.filter(dongle_sn=OuterRef("dongle_sn")).exclude(dongle_sn="")))
             .exclude(Exists(current.filter(inverter_sn=OuterRef("inverter_sn")).exclude(inverter_sn="")))
             # a device that left a group is listed once, as such
             .exclude(Exists(left_rows.filter(dongle_sn=OuterRef("dongle_sn")).exclude(dongle_sn="")))
             .exclude(Exists(left_rows.filter(inverter_sn=OuterRef("inverter_sn")).exclude(inverter_sn=""))))
    if q:
        left = left.filter(Q(inverter_sn__icontains=q) | Q(dongle_sn__icontains=q))
        known = known.filter(Q(inverter_sn__icontains=q) | Q(dongle_sn__icontains=q))
    text: CharField[str, str] = CharField()
    left_values = left.annotate(
        dongle=F("dongle_sn"), inverter=F("inverter_sn"), src=Value("left", output_field=text),
        seen_at=Coalesce("confirmed_at", "synced_at", "remote_created"), group_name=F("group__name"),
    ).order_by().values(*COLUMNS)
    known_values = known.annotate(
        dongle=F("dongle_sn"), inverter=F("inverter_sn"), src=F("source"), seen_at=F("seen"),
        group_name=Value("", output_field=text),
    ).order_by().values(*COLUMNS)
    return left_values.union(known_values, all=True).order_by("-seen_at", "dongle", "inverter")


def _record(account: SolaxAccount, dongle_sn: str, inverter_sn: str, source: str, at: datetime) -> None:
    """Keep one row per device: by its dongle SN when known, else by its inverter SN."""
    rows = UngroupedDevice.objects.filter(account=account)
    row = (rows.filter(dongle_sn=dongle_sn).order_by("-seen").first() if dongle_sn
           else rows.filter(inverter_sn=inverter_sn, dongle_sn="").first())
    if row is None:
        UngroupedDevice.objects.create(account=account, dongle_sn=dongle_sn, inverter_sn=inverter_sn,
                                       source=source, seen=at)
        return
    UngroupedDevice.objects.filter(pk=row.pk).update(inverter_sn=inverter_sn or row.inverter_sn, source=source,
                                                     seen=at)


def record_bound(account_id: int, dongles: Iterable[str], at: datetime | None = None) -> int:
    """Record dongles a binding answer says this account holds (two queries). Returns how many."""
    at = at or timezone.now()
    wanted = list(dict.fromkeys(d for d in dongles if d))
    if not wanted:
        return 0
    rows = UngroupedDevice.objects.filter(account_id=account_id, dongle_sn__in=wanted)
    known = set(rows.values_list("dongle_sn", flat=True))
    rows.update(seen=at)
    UngroupedDevice.objects.bulk_create(
        [UngroupedDevice(account_id=account_id, dongle_sn=d, source="bound", seen=at)
         for d in wanted if d not in known],
        ignore_conflicts=True)
    return len(wanted)


def request_lookup(group: Group, wifi_sn: str | None, inverter_sn: str | None) -> ApiCall:
    """Ask the cloud's fuzzy member query for a device by dongle or inverter SN: one budgeted read at
    poll priority (the operator is waiting). The query is asked in ``group`` (VPP 3.6 needs a group
    id); a device it reports with groupStatus 0 is recorded as in no group."""
    params = writes.validated(endpoints.inverter_fuzzy_query_params, group.remote_id, wifi_sn, inverter_sn)
    sn = params.get("wifiSn") or params.get("inverterSn")
    return queue.enqueue(group.account, "inverter_fuzzy_query", params, purpose=f"look up {sn} in the cloud",
                         priority=Priority.POLL, origin_kind="ungrouped", origin_code=group.code,
                         handler=LOOKUP_HANDLER)


@handlers.register(LOOKUP_HANDLER)
def on_lookup(call: ApiCall, outcome: handlers.Outcome) -> None:
    """Keep what the look-up found with its call (as every cloud search), and record the devices it
    reported in no group."""
    writes.on_search(call, outcome)
    found = (call.context or {}).get("found") or []
    at = timezone.now()
    ungrouped = [item for item in found if not item.get("in_group", True)]
    for item in ungrouped:
        dongle, inverter = item.get("wifi_sn") or "", item.get("inverter_sn") or ""
        if dongle or inverter:
            _record(call.account, dongle, inverter, "cloud", at)
    if found:
        ApiCall.objects.filter(pk=call.pk).update(context={**call.context, "ungrouped": len(ungrouped)})
