"""The safety envelope: an organization's limits, checked before anything is queued, each refusal
naming its rule; and whether a command is big enough to need a second operator's approval."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.db.models import Count
from django.utils import timezone

from fleet.commands.actions import CommandError
from fleet.models import CommandKind, DeviceResult, DeviceState, Inverter, SafetyEnvelope, SolaxAccount

LOOKUP_CHUNK = 5_000


def envelope_of(account: SolaxAccount) -> SafetyEnvelope | None:
    return SafetyEnvelope.objects.filter(organization_id=account.organization_id).first()


def discharges(kind: str, params: Mapping[str, Any]) -> bool:
    """Whether an action discharges batteries: a forced discharge, or a remote-control power below 0."""
    if kind != CommandKind.INVERTER_CONTROL:
        return False
    st, mode = int(params.get("superType", -1)), int(params.get("mode", -1))
    if st == 2 and mode == 3:
        return int(params.get("manualMode", -1)) == 2
    if st == 0:
        return any(int(params.get(name, 0)) < 0 for name in ("activePower", "chargerPower"))
    return False


def check(account: SolaxAccount, kind: str, params: Mapping[str, Any], sns: list[str],
          now: datetime | None = None) -> None:
    """Raise CommandError({"envelope": ...}) naming the first rule of the organization's envelope
    the command breaks; return quietly when it fits (or there is no envelope)."""
    envelope = envelope_of(account)
    if envelope is None:
        return
    n = len(sns)
    if envelope.max_devices is not None and n > envelope.max_devices:
        _refuse(f"{n:,} devices; the safety envelope allows at most {envelope.max_devices:,} per command")
    if envelope.max_remote_timeout is not None and "timeout" in params \
            and int(params["timeout"]) > envelope.max_remote_timeout:
        _refuse(f"a remote-control timeout of {params['timeout']} s; the safety envelope allows at most "
                f"{envelope.max_remote_timeout} s")
    if discharges(kind, params):
        soc = params.get("targetSoc")
        if envelope.min_discharge_soc is not None and soc is not None and int(soc) < envelope.min_discharge_soc:
            _refuse(f"a discharge to {soc} % SoC; the safety envelope's floor is {envelope.min_discharge_soc} %")
        if envelope.max_discharge_kw is not None:
            kw = _rated_kw(account, sns)
            if kw > envelope.max_discharge_kw:
                _refuse(f"a discharge of {kw:,.1f} kW rated; the safety envelope allows at most "
                        f"{envelope.max_discharge_kw:,.1f} kW at once")
    if envelope.max_writes_per_device_per_day is not None and kind == CommandKind.INVERTER_CONTROL:
        worn = _worn(account, sns, envelope.max_writes_per_device_per_day, now or timezone.now())
        if worn:
            more = f" and {len(worn) - 5} more" if len(worn) > 5 else ""
            _refuse(f"{', '.join(worn[:5])}{more} had {envelope.max_writes_per_device_per_day} control writes "
                    "today already (the safety envelope's limit for inverter flash wear)")


def needs_approval(account: SolaxAccount, devices: int) -> bool:
    envelope = envelope_of(account)
    return envelope is not None and envelope.approval_above_devices is not None \
        and devices > envelope.approval_above_devices


def _refuse(text: str) -> None:
    raise CommandError({"envelope": text})


def _chunks(items: list[str]) -> list[list[str]]:
    return [items[i:i + LOOKUP_CHUNK] for i in range(0, len(items), LOOKUP_CHUNK)]


def _rated_kw(account: SolaxAccount, sns: list[str]) -> float:
    """The rated kW of the devices, each counted once (an inverter in two groups has two rows)."""
    rated: dict[str, float] = {}
    for chunk in _chunks(sns):
        for sn, kw in Inverter.objects.filter(account=account, removed=False, inverter_sn__in=chunk).values_list(
                "inverter_sn", "rated_power"):
            rated[sn] = max(rated.get(sn, 0.0), kw or 0.0)
    return sum(rated.values())


def _worn(account: SolaxAccount, sns: list[str], limit: int, now: datetime) -> list[str]:
    """The SNs that had ``limit`` control writes or more since midnight UTC."""
    since = now.replace(hour=0, minute=0, second=0, microsecond=0)
    worn: list[str] = []
    for chunk in _chunks(sns):
        worn += (DeviceResult.objects.filter(sn__in=chunk, command__account=account, command__created__gte=since,
                                             command__kind=CommandKind.INVERTER_CONTROL)
                 .exclude(state=DeviceState.NOT_SENT).values("sn").annotate(n=Count("id"))
                 .filter(n__gte=limit).values_list("sn", flat=True))
    return sorted(worn)
