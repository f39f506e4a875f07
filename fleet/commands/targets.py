"""Whom a command reaches: one resolution of a target (a group, SNs of inverters or of chargers) to
the account's devices, used by the command form, schedules, retries and the API alike."""

from __future__ import annotations

from dataclasses import dataclass

from fleet.commands.actions import CommandError
from fleet.models import Charger, Group, Inverter, SolaxAccount, TargetKind
from solax.control import clean_sns
from solax.errors import RequestValidationError


@dataclass(frozen=True)
class Target:
    kind: str  # TargetKind
    group: Group | None = None
    sns: tuple[str, ...] = ()


@dataclass(frozen=True)
class ResolvedTarget:
    target: Target
    devices: list[tuple[str, str]]  # (sn, dongle sn) in SN order; empty only if devices were not required

    @property
    def sns(self) -> list[str]:
        return [sn for sn, _ in self.devices]


def resolve_target(account: SolaxAccount, target: Target, *, require_devices: bool = True) -> ResolvedTarget:
    """Return the target's devices in this account; raise CommandError naming the bad field ("group"
    or "sns"): an unknown kind, another account's or a removed group, a group without members (when
    ``require_devices``), malformed SNs or SNs that are not this account's inverters or chargers."""
    if target.kind not in TargetKind.values:
        raise CommandError({"target": f"unknown target kind {target.kind!r}"})
    if target.kind == TargetKind.GROUP:
        group = target.group
        if group is None or group.account_id != account.pk or group.removed:
            raise CommandError({"group": "choose a group of this account"})
        devices = list(Inverter.objects.filter(group=group, removed=False).order_by("inverter_sn")
                       .values_list("inverter_sn", "dongle_sn"))
        if not devices and require_devices:
            raise CommandError({"group": f"group {group.name} has no members to control"})
        return ResolvedTarget(target, devices)
    try:
        sns = clean_sns(list(target.sns), "sns")
    except RequestValidationError as exc:
        raise CommandError(exc.errors) from None
    if target.kind == TargetKind.INVERTER and len(sns) != 1:
        raise CommandError({"sns": "one inverter: exactly one SN"})
    if target.kind == TargetKind.CHARGERS:
        known = dict.fromkeys(Charger.objects.filter(account=account, sn__in=sns).values_list("sn", flat=True), "")
    else:
        known = dict(Inverter.objects.filter(account=account, removed=False, inverter_sn__in=sns)
                     .values_list("inverter_sn", "dongle_sn"))
    missing = [sn for sn in sns if sn not in known]
    if missing:
        what = ("chargers of this account" if target.kind == TargetKind.CHARGERS
                else "inverters of this account's groups")
        more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        raise CommandError({"sns": f"not among the {what}: {', '.join(missing[:10])}{more}"})
    return ResolvedTarget(target, [(sn, known[sn]) for sn in sns])
