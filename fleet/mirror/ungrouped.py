"""Devices of an account that are in no group: the cloud has no list of them, so they are gathered
from what the mirror learned elsewhere.

- dongles this account bound (binding results: "Binding success" and "Have bound sn"), whose dongle SN
  no current member carries: known by the dongle SN only (the registration number); the inverter SN,
  which a member add needs, is typed by the operator;
- inverters that left a group (a removed member row) and are in no other group: known by both SNs.

A bound dongle appears at once, as soon as its binding answer is recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from fleet.models import BindingRequest, Inverter, SolaxAccount


@dataclass(frozen=True)
class UngroupedDevice:
    """An inverter of the account in no group: ``inverter_sn`` is "" when only its dongle is known."""

    dongle_sn: str
    inverter_sn: str
    source: str  # "bound" or "left a group"
    seen: datetime | None
    group_name: str = ""  # the group it left


def ungrouped_devices(account: SolaxAccount, q: str = "") -> list[UngroupedDevice]:
    """Return the account's devices that are in no group, newest first (three queries)."""
    current = Inverter.objects.filter(account=account, removed=False)
    grouped_dongles = set(current.exclude(dongle_sn="").values_list("dongle_sn", flat=True))
    grouped_sns = set(current.values_list("inverter_sn", flat=True))
    found: dict[str, UngroupedDevice] = {}
    for left in (Inverter.objects.filter(account=account, removed=True).select_related("group")
                 .only("inverter_sn", "dongle_sn", "synced_at", "group__name").order_by("-synced_at", "-pk")):
        if left.inverter_sn in grouped_sns or (left.dongle_sn and left.dongle_sn in grouped_dongles):
            continue
        key = left.dongle_sn or left.inverter_sn
        found.setdefault(key, UngroupedDevice(left.dongle_sn, left.inverter_sn, "left a group", left.synced_at,
                                              left.group.name))
    for request in (BindingRequest.objects.filter(account=account, state="done")
                    .only("bound", "already_bound", "created").order_by("-created")):
        for dongle in [*request.bound, *request.already_bound]:
            if dongle not in grouped_dongles and dongle not in found:
                found[dongle] = UngroupedDevice(dongle, "", "bound", request.created)
    devices = list(found.values())
    if q:
        needle = q.lower()
        devices = [d for d in devices if needle in d.dongle_sn.lower() or needle in d.inverter_sn.lower()]
    return devices
