"""One tenant (token): its fleet, groups and memberships, bindings. Callers hold `tenant.lock`."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterable
from itertools import islice
from typing import Any

from .commands import CommandBook
from .config import SimConfig
from .fleets import FLEETS, IdSource, generate
from .model import Group, Inverter, Member
from .replies import CODE_NO_AUTH, MSG_NO_AUTH, ApiFailure, bad_param, rule_broken

MAX_NAME = 50


class Tenant:
    def __init__(self, token: str, fleet: str, seed: int, config: SimConfig, clock: Callable[[], float]) -> None:
        if fleet not in FLEETS:
            raise ValueError(f"unknown fleet {fleet!r}; one of {sorted(FLEETS)}")
        self.token = token
        self.fleet = fleet
        self.lock = threading.RLock()
        self.clock = clock
        self.config = config  # replaced by Simulator.configure()
        self._wall0 = time.time() - clock()
        self.new_id = IdSource(random.Random(f"{seed}|{token}|ids"))
        made = generate(
            FLEETS[fleet],
            token,
            random.Random(f"{seed}|{token}|fleet"),
            self.new_id,
            config.offline_rate,
            config.pile_power_key,
        )
        self.inverters = made.inverters
        self.dongles = made.dongles
        self.foreign = made.foreign
        self.groups = made.groups
        self.members = made.members
        self.chargers = made.chargers
        self.commands = CommandBook(self, seed)

    # -- time -------------------------------------------------------------------------------------------
    def now_text(self) -> str:
        """`YYYY-MM-DD hh:mm:ss` for rows created at run time (wall clock moved by the simulator clock)."""
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self._wall0 + self.clock()))

    # -- lookups ----------------------------------------------------------------------------------------
    def group(self, group_id: str) -> Group:
        group = self.groups.get(group_id)
        if group is None:
            raise rule_broken("The group does not exist")
        return group

    def member(self, member_id: str) -> Member:
        member = self.members.get(member_id)
        if member is None:
            raise rule_broken("The inverter id does not exist")
        return member

    def bound_inverter(self, sn: str) -> Inverter:
        inverter = self.inverters.get(sn)
        if inverter is None or not inverter.bound:
            raise ApiFailure(MSG_NO_AUTH, CODE_NO_AUTH)
        return inverter

    # -- groups (VPP doc 2) -----------------------------------------------------------------------------
    def group_add(self, name: str) -> str:
        name = self._name(name)
        group = Group(id=self.new_id(), name=name, create_time=self.now_text())
        self.groups[group.id] = group
        return group.id

    def group_update(self, group_id: str, name: str) -> None:
        group = self.group(group_id)
        name = self._name(name, group)
        group.name = name
        group.update_time = self.now_text()

    def group_delete(self, ids: Iterable[str]) -> None:
        ids = list(ids)
        for group_id in ids:  # all or nothing
            self.group(group_id)
        for group_id in ids:
            group = self.groups.pop(group_id, None)
            for member_id in group.members if group else ():
                self._unlink(self.members.pop(member_id))

    def group_page(self, current: int, size: int) -> tuple[int, list[Group]]:
        start = (current - 1) * size
        return len(self.groups), list(islice(self.groups.values(), start, start + size))

    def group_like(self, name: str) -> list[Group]:
        needle = name.lower()
        return [group for group in self.groups.values() if needle in group.name.lower()]

    def _name(self, name: str, current: Group | None = None) -> str:
        name = name.strip()
        if not name:
            raise bad_param("name cannot be empty")
        if len(name) > MAX_NAME:
            raise bad_param(f"name is too long (at most {MAX_NAME} characters)")
        for group in self.groups.values():
            if group.name == name and group is not current:
                raise rule_broken("The group name already exists")
        return name

    # -- memberships (VPP doc 3) ------------------------------------------------------------------------
    def member_add(self, group_id: str, inverter_sn: str) -> str:
        group = self.group(group_id)
        inverter = self._free_inverter(inverter_sn)
        member = Member(id=self.new_id(), group_id=group.id, inverter_sn=inverter.sn, create_time=self.now_text())
        group.members[member.id] = member
        self.members[member.id] = member
        inverter.member_id = member.id
        return member.id

    def member_delete(self, ids: Iterable[str]) -> None:
        ids = list(ids)
        for member_id in ids:
            self.member(member_id)
        for member_id in ids:
            member = self.members.pop(member_id, None)
            if member is not None:
                del self.groups[member.group_id].members[member_id]
                self._unlink(member)

    def member_update(self, member_id: str, new_sn: str) -> None:
        member = self.member(member_id)
        if new_sn == member.inverter_sn:
            return
        inverter = self._free_inverter(new_sn)
        self._unlink(member)
        member.inverter_sn = inverter.sn
        member.update_time = self.now_text()
        inverter.member_id = member.id

    def member_page(self, group_id: str, current: int, size: int) -> tuple[int, list[Member]]:
        group = self.group(group_id)
        start = (current - 1) * size
        return len(group.members), list(islice(group.members.values(), start, start + size))

    def member_like(self, group_id: str, wifi_sn: str, inverter_sn: str) -> list[Member]:
        group = self.group(group_id)
        wifi_sn, inverter_sn = wifi_sn.lower(), inverter_sn.lower()
        found = []
        for member in group.members.values():
            inverter = self.inverters[member.inverter_sn]
            if inverter_sn in member.inverter_sn.lower() and wifi_sn in inverter.wifi_sn.lower():
                found.append(member)
        return found

    def ungrouped_like(self, wifi_sn: str, inverter_sn: str, limit: int = 100) -> list[Inverter]:
        """Bound inverters in no group whose SNs contain the given parts (at least one part given)."""
        if not wifi_sn and not inverter_sn:
            return []
        wifi_sn, inverter_sn = wifi_sn.lower(), inverter_sn.lower()
        return [inverter for inverter in self.inverters.values()
                if inverter.bound and inverter.member_id is None and inverter_sn in inverter.sn.lower()
                and wifi_sn in inverter.wifi_sn.lower()][:limit]

    def ungrouped_row(self, inverter: Inverter, group_id: str, ids_as_numbers: bool = True) -> dict[str, Any]:
        """A device in no group as the fuzzy query lists it: groupStatus 0, no membership id."""
        return {"id": 0 if ids_as_numbers else "0", "groupId": int(group_id) if ids_as_numbers else group_id,
                "wifiSn": inverter.wifi_sn, "inverterSn": inverter.sn, "groupStatus": 0,
                "ratePower": inverter.rate_power, "createTime": None, "updateTime": None}

    def member_row(self, member: Member, ids_as_numbers: bool = True) -> dict[str, Any]:
        inverter = self.inverters[member.inverter_sn]
        return {
            "id": int(member.id) if ids_as_numbers else member.id,
            "groupId": int(member.group_id) if ids_as_numbers else member.group_id,
            "wifiSn": inverter.wifi_sn,
            "inverterSn": inverter.sn,
            "groupStatus": 1,
            "ratePower": inverter.rate_power,
            "createTime": member.create_time,
            "updateTime": member.update_time,
        }

    def _free_inverter(self, sn: str) -> Inverter:
        inverter = self.bound_inverter(sn)
        if inverter.member_id is not None:
            raise rule_broken("The inverter already exists in a group")
        return inverter

    def _unlink(self, member: Member) -> None:
        inverter = self.inverters.get(member.inverter_sn)
        if inverter is not None and inverter.member_id == member.id:
            inverter.member_id = None

    # -- binding (VPP doc 5) ----------------------------------------------------------------------------
    def bind(self, sns: list[str]) -> dict[str, list[str]]:
        """Registration numbers (dongle SNs) -> the four result lists, in request order."""
        out: dict[str, list[str]] = {
            "Binding success": [],
            "Binding fail": [],
            "Have bound sn": [],
            "Non-existent sn": [],
        }
        for sn in sns:
            inverter = self.inverters.get(self.dongles.get(sn, ""))
            if sn in self.foreign or (inverter is not None and inverter.bound):
                out["Have bound sn"].append(sn)
            elif inverter is None:
                out["Non-existent sn"].append(sn)
            elif inverter.bind_fails:
                out["Binding fail"].append(sn)
            else:
                inverter.bound = True
                out["Binding success"].append(sn)
        return out

    # -- inspection (/_sim/) ----------------------------------------------------------------------------
    def summary(self, sample: int = 5) -> dict[str, Any]:
        bound = [inv for inv in self.inverters.values() if inv.bound]
        free = [inv.wifi_sn for inv in self.inverters.values() if not inv.bound and not inv.bind_fails]
        return {
            "fleet": self.fleet,
            "groups": len(self.groups),
            "members": len(self.members),
            "inverters": len(bound),
            "chargers": len(self.chargers),
            "offline_inverters": [inv.sn for inv in bound if not inv.online][:sample],
            "ungrouped_inverters": [inv.sn for inv in bound if inv.member_id is None][:sample],
            "unbound_dongles": free[:sample],
            "bind_fail_dongles": [inv.wifi_sn for inv in self.inverters.values() if inv.bind_fails][:sample],
            "foreign_dongles": sorted(self.foreign)[:sample],
            "offline_chargers": [c.sn for c in self.chargers.values() if not c.online][:sample],
            "chargers_sample": list(self.chargers)[:sample],
            "commands": len(self.commands.by_id),
            "pile_tasks": len(self.commands.piles),
        }
