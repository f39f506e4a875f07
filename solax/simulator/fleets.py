"""Seeded fleets: `small` for tests, `demo` for the dashboard, `large` for benchmarks.

SN shapes: inverter `H4` + 2-char tenant tag + 10 digits (14 chars, like H475...), dongle (registration
number) `SW` + tag + 6 digits (10 chars), charger `C1` + tag + 10 digits. The tag comes from the token,
so two tenants never share an SN.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
from dataclasses import dataclass

from .model import Charger, Group, Inverter, Member


@dataclass(frozen=True)
class FleetSpec:
    name: str
    groups: int
    inverters: int  # bound to the account
    grouped: float  # share of the bound inverters that are members of a group
    chargers: int
    unbound: int  # dongles that exist and are free: regsn -> "Binding success"
    bind_fail: int  # dongles whose binding always fails: "Binding fail"
    foreign: int  # dongles bound to another account: "Have bound sn"
    offline_rate: float
    charger_offline_rate: float


FLEETS: dict[str, FleetSpec] = {
    "empty": FleetSpec("empty", 0, 0, 0.0, 0, 0, 0, 0, 0.0, 0.0),
    "small": FleetSpec("small", 3, 30, 0.8, 5, 4, 1, 1, 0.1, 0.2),
    "demo": FleetSpec("demo", 40, 2000, 0.9, 50, 20, 3, 3, 0.03, 0.06),
    "large": FleetSpec("large", 500, 50_000, 0.95, 2000, 100, 10, 10, 0.02, 0.02),
}

_PLACES = (
    "North",
    "South",
    "East",
    "West",
    "Harbour",
    "Hillside",
    "Riverside",
    "Old Town",
    "Meadow",
    "Forest",
    "Lakeside",
    "Station",
    "Market",
    "Orchard",
    "Bridge",
    "Castle",
    "Valley",
    "Coast",
    "Airport",
    "Park",
)
_BASE_TIME = dt.datetime(2023, 1, 2, 8, 0, 0)
_RATED = (3.0, 3.7, 5.0, 6.0, 7.5, 8.0, 10.0, 12.0, 15.0)
_CAPACITY_WH = (5800, 6300, 8600, 11500, 12600, 17300)
_CHARGER_KW = (7.0, 7.0, 11.0, 11.0, 22.0)


def tenant_tag(token: str) -> str:
    """Two characters from the token, so that SNs of different tenants never collide."""
    digest = hashlib.sha256(token.encode()).digest()
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    return alphabet[digest[0] % 32] + alphabet[digest[1] % 32]


def fmt_time(seconds: float) -> str:
    return (_BASE_TIME + dt.timedelta(seconds=int(seconds))).strftime("%Y-%m-%d %H:%M:%S")


@dataclass
class Generated:
    inverters: dict[str, Inverter]  # inverter SN -> device (bound and unbound)
    dongles: dict[str, str]  # dongle SN -> inverter SN
    foreign: set[str]  # dongles bound to another account
    groups: dict[str, Group]
    members: dict[str, Member]
    chargers: dict[str, Charger]


def generate(
    spec: FleetSpec,
    token: str,
    rng: random.Random,
    new_id: IdSource,
    offline_rate: float | None,
    power_key: str,
) -> Generated:
    """Build the fleet of `token`; same (spec, token, seed) -> same fleet."""
    tag = tenant_tag(token)
    rate = spec.offline_rate if offline_rate is None else offline_rate
    total = spec.inverters + spec.unbound + spec.bind_fail
    offline = set(rng.sample(range(spec.inverters), round(spec.inverters * rate)))
    inverters: dict[str, Inverter] = {}
    dongles: dict[str, str] = {}
    for i in range(total):
        sn = f"H4{tag}{i + 1:010d}"
        wifi = f"SW{tag}{i + 1:06d}"
        inverters[sn] = Inverter(
            sn=sn,
            wifi_sn=wifi,
            rate_power=rng.choice(_RATED),
            capacity_wh=rng.choice(_CAPACITY_WH),
            soc=float(rng.randint(15, 95)),
            online=i not in offline,
            bound=i < spec.inverters,
            bind_fails=i >= spec.inverters + spec.unbound,
            work_mode=0,
        )
        dongles[wifi] = sn
    foreign = {f"SW{tag}{total + i + 1:06d}" for i in range(spec.foreign)}

    groups: dict[str, Group] = {}
    members: dict[str, Member] = {}
    bound = list(inverters)[: spec.inverters]
    grouped = bound[: round(len(bound) * spec.grouped)] if spec.groups else []
    sizes = _split(len(grouped), spec.groups, rng)
    start = 0
    clock = 0.0
    for g, size in enumerate(sizes):
        clock += rng.randint(600, 86_400)
        name = _PLACES[g % len(_PLACES)] + ("" if g < len(_PLACES) else f" {g // len(_PLACES) + 1}")
        group = Group(id=new_id(), name=name, create_time=fmt_time(clock))
        groups[group.id] = group
        added = clock
        for sn in grouped[start : start + size]:
            added += rng.randint(5, 3600)
            member = Member(id=new_id(), group_id=group.id, inverter_sn=sn, create_time=fmt_time(added))
            group.members[member.id] = member
            members[member.id] = member
            inverters[sn].member_id = member.id
        start += size

    chargers: dict[str, Charger] = {}
    charger_offline = set(rng.sample(range(spec.chargers), round(spec.chargers * spec.charger_offline_rate)))
    for i in range(spec.chargers):
        sn = f"C1{tag}{i + 1:010d}"
        key = power_key if power_key != "mixed" else ("ChargingPower" if i % 4 == 3 else "chargingPower")
        chargers[sn] = Charger(
            sn=sn,
            max_power=rng.choice(_CHARGER_KW),
            online=i not in charger_offline,
            plugged=rng.random() < 0.7,
            power_key=key,
        )
    return Generated(inverters, dongles, foreign, groups, members, chargers)


def _split(total: int, parts: int, rng: random.Random) -> list[int]:
    """`total` items into `parts` groups of uneven but non-zero sizes (when total allows)."""
    if parts <= 0:
        return []
    weights = [rng.uniform(0.5, 1.5) for _ in range(parts)]
    scale = total / sum(weights)
    sizes = [int(w * scale) for w in weights]
    for i in range(total - sum(sizes)):
        sizes[i % parts] += 1
    return sizes


class IdSource:
    """Long digit ids (19 digits, like the cloud's snowflakes), increasing, deterministic per tenant."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._next = rng.randrange(1_018_000_000_000_000_000, 1_030_000_000_000_000_000)

    def __call__(self) -> str:
        self._next += self._rng.randint(1, 4096)
        return str(self._next)
