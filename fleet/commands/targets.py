"""Whom a command reaches: one resolution of a target (a group, several groups, the whole fleet, a
saved selection, SNs of inverters or of chargers) to the account's devices, used by the command form,
schedules, retries and the API alike; and the fewest calls that cover it."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from fleet.commands.actions import CommandError
from fleet.models import Charger, Group, Inverter, SavedSelection, SolaxAccount, TargetKind
from solax.control import MAX_SNS_PER_CALL, clean_sns
from solax.errors import RequestValidationError

LOOKUP_CHUNK = 5_000  # SNs per IN (...) query: SQLite allows 32,766 parameters, a fleet has 50,000 SNs
GROUP_KINDS = (TargetKind.GROUP, TargetKind.GROUPS, TargetKind.FLEET)


@dataclass(frozen=True)
class Target:
    kind: str  # TargetKind
    group: Group | None = None  # "group"
    sns: tuple[str, ...] = ()  # "inverter" (exactly one), "selection", "chargers"
    groups: tuple[Group, ...] = ()  # "groups"
    selection: SavedSelection | None = None  # "saved"


@dataclass(frozen=True)
class ResolvedTarget:
    target: Target
    devices: list[tuple[str, str]]  # (sn, dongle sn) in SN order; empty only if devices were not required

    @property
    def sns(self) -> list[str]:
        return [sn for sn, _ in self.devices]


@dataclass(frozen=True)
class Batch:
    """One control call: a whole group (``group`` set, sent as groupControl) or a list of SNs."""

    group: Group | None
    sns: list[str]


def resolve_target(account: SolaxAccount, target: Target, *, require_devices: bool = True) -> ResolvedTarget:
    """Return the target's devices in this account; raise CommandError naming the bad field ("group",
    "groups", "selection" or "sns"): an unknown kind, another account's or a removed group, no members
    (when ``require_devices``), malformed SNs or SNs that are not this account's inverters or chargers."""
    kind = target.kind
    if kind not in TargetKind.values:
        raise CommandError({"target": f"unknown target kind {kind!r}"})
    members = Inverter.objects.filter(account=account, removed=False)
    if kind in GROUP_KINDS:
        if kind == TargetKind.GROUP:
            _check_groups(account, [target.group], "group")
            assert target.group is not None
            members, what = members.filter(group=target.group), f"group {target.group.name}"
        elif kind == TargetKind.GROUPS:
            _check_groups(account, list(target.groups), "groups")
            members, what = members.filter(group__in=target.groups), "the chosen groups"
        else:
            members, what = members.filter(group__removed=False), "this account's fleet"
        devices = list(members.order_by("inverter_sn").values_list("inverter_sn", "dongle_sn"))
        devices = list(dict(devices).items())  # an inverter in two groups is one device
        if not devices and require_devices:
            raise CommandError({_field(kind): f"{what} has no members to control"})
        return ResolvedTarget(target, devices)
    raw = target.sns
    if kind == TargetKind.SAVED:
        if target.selection is None or target.selection.account_id != account.pk:
            raise CommandError({"selection": "choose a saved selection of this account"})
        raw = tuple(target.selection.sns)
    try:
        sns = clean_sns(list(raw), "sns")
    except RequestValidationError as exc:
        raise CommandError({_field(kind): next(iter(exc.errors.values()))}) from None
    if kind == TargetKind.INVERTER and len(sns) != 1:
        raise CommandError({"sns": "one inverter: exactly one SN"})
    sns = list(dict.fromkeys(sns))
    if kind == TargetKind.CHARGERS:
        rows = {sn: refused for chunk in _chunks(sns, LOOKUP_CHUNK)
                for sn, refused in Charger.objects.filter(account=account, sn__in=chunk).values_list("sn", "refused")}
        refused = [sn for sn in sns if rows.get(sn)]
        if refused:  # the cloud answered "no auth!" for them: a command would only fail
            raise CommandError({"sns": f"refused by SolaX (not known or not authorised): {', '.join(refused[:10])}"})
        known = dict.fromkeys(rows, "")
    else:
        known = {sn: dongle for chunk in _chunks(sns, LOOKUP_CHUNK)
                 for sn, dongle in members.filter(inverter_sn__in=chunk).values_list("inverter_sn", "dongle_sn")}
    missing = [sn for sn in sns if sn not in known]
    if missing:
        what = ("chargers of this account" if kind == TargetKind.CHARGERS
                else "inverters of this account's groups")
        more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        raise CommandError({_field(kind): f"not among the {what}: {', '.join(missing[:10])}{more}"})
    return ResolvedTarget(target, sorted((sn, known[sn]) for sn in sns))


def _field(kind: str) -> str:
    fields: dict[str, str] = {TargetKind.GROUP: "group", TargetKind.GROUPS: "groups", TargetKind.SAVED: "selection"}
    return fields.get(kind, "sns")


def _check_groups(account: SolaxAccount, groups: list[Group | None], field: str) -> None:
    if not groups or any(g is None or g.account_id != account.pk or g.removed for g in groups):
        raise CommandError({field: "choose groups of this account" if field == "groups"
                            else "choose a group of this account"})


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


# The fewest calls ------------------------------------------------------------------------------

def cover(account: SolaxAccount, resolved: ResolvedTarget) -> list[Batch]:
    """Return the control calls that reach the target's devices in the fewest calls.

    One inverter is one call and one group is one group call. Chargers go in batches of at most 100
    (the EV document's limit). Otherwise whole-group calls and batches of the remaining SNs (at most
    the account's ``max_sns_per_call`` each) are mixed, whichever needs fewer calls: a group is sent
    as a group call only when every member the mirror knows is in the target and that saves a call;
    on a tie, batches win, as they name exactly the devices whose results are followed.
    """
    kind, sns = resolved.target.kind, resolved.sns
    if kind == TargetKind.INVERTER:
        return [Batch(None, sns)]
    if kind == TargetKind.GROUP:
        return [Batch(resolved.target.group, [])]
    if kind == TargetKind.CHARGERS:
        return [Batch(None, chunk) for chunk in _chunks(sns, MAX_SNS_PER_CALL)]
    cap = account.max_sns_per_call
    covered = _whole_groups(account, resolved)
    best_k, best_calls, remaining = 0, math.ceil(len(sns) / cap), len(sns)
    for k, (_, members) in enumerate(covered, start=1):
        remaining -= len(members)
        calls = k + math.ceil(remaining / cap)
        if calls < best_calls:
            best_k, best_calls = k, calls
    chosen = covered[:best_k]
    in_groups = {sn for _, members in chosen for sn in members}
    rest = [sn for sn in sns if sn not in in_groups]
    return [Batch(group, []) for group, _ in chosen] + [Batch(None, chunk) for chunk in _chunks(rest, cap)]


def _whole_groups(account: SolaxAccount, resolved: ResolvedTarget) -> list[tuple[Group, list[str]]]:
    """The groups whose every known member is in the target, largest first, with their members
    (each SN counted in one group only)."""
    wanted = set(resolved.sns)
    groups = Group.objects.filter(account=account, removed=False, device_count__gt=0)
    kind = resolved.target.kind
    if kind == TargetKind.GROUPS:
        groups = groups.filter(pk__in=[g.pk for g in resolved.target.groups])
    members: dict[int, list[str]] = {}
    for group_id, sn in (Inverter.objects.filter(account=account, removed=False, group__in=groups)
                         .values_list("group_id", "inverter_sn").iterator(chunk_size=5000)):
        members.setdefault(group_id, []).append(sn)
    by_id = {g.pk: g for g in groups.filter(pk__in=list(members))}
    # A group call reaches every member the cloud has: a group counts as whole only when the mirror
    # knows as many members as the cloud's count says, and all of them are targeted.
    whole = [(by_id[gid], sns) for gid, sns in members.items()
             if gid in by_id and by_id[gid].device_count == len(sns) and set(sns) <= wanted]
    whole.sort(key=lambda item: (-len(item[1]), item[0].name))
    seen: set[str] = set()
    result = []
    for group, sns in whole:
        if seen.isdisjoint(sns):
            result.append((group, sns))
            seen.update(sns)
    return result


def describe(target: Target, devices: Iterable[tuple[str, str]]) -> str:
    """Where a command goes, for its label: "group North", "3 groups", "the whole fleet", "SN123"."""
    sns = [sn for sn, _ in devices]
    if target.kind == TargetKind.GROUP and target.group is not None:
        return f"group {target.group.name}"
    if target.kind == TargetKind.GROUPS:
        return f"{len(target.groups)} groups ({len(sns)} inverters)"
    if target.kind == TargetKind.FLEET:
        return f"the whole fleet ({len(sns)} inverters)"
    if target.kind == TargetKind.SAVED and target.selection is not None:
        return f"selection {target.selection.name} ({len(sns)} inverters)"
    if target.kind == TargetKind.CHARGERS:
        return f"{len(sns)} chargers" if len(sns) > 1 else sns[0]
    if target.kind == TargetKind.INVERTER:
        return sns[0]
    return f"{len(sns)} inverters"
