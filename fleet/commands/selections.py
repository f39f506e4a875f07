"""Saved selections: named, reusable lists of an account's inverters, kept as command and schedule
targets. Their SNs are checked by the one target resolver, so a selection holds only known inverters."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from fleet.commands.actions import CommandError
from fleet.commands.targets import Target, resolve_target
from fleet.models import Group, Inverter, SavedSelection, SolaxAccount, TargetKind

MAX_SELECTION = 50_000  # a fleet's worth


def matching(account: SolaxAccount, *, group: Group | None = None, min_power: float | None = None,
             max_power: float | None = None) -> list[str]:
    """Return the SNs of the account's inverters that a filter (group, rated power in kW) picks."""
    rows = Inverter.objects.filter(account=account, removed=False, group__removed=False)
    if group is not None:
        rows = rows.filter(group=group)
    if min_power is not None:
        rows = rows.filter(rated_power__gte=min_power)
    if max_power is not None:
        rows = rows.filter(Q(rated_power__lte=max_power))
    return sorted(set(rows.values_list("inverter_sn", flat=True)))


def save(account: SolaxAccount, name: str, sns: list[str], *, user: Any = None,
         selection: SavedSelection | None = None) -> SavedSelection:
    """Create (or, with ``selection``, replace) a saved selection; raise CommandError naming the field
    ("name" or "sns"): no SNs, too many, SNs that are not this account's inverters, a name in use."""
    if not sns:
        raise CommandError({"sns": "a selection needs at least one inverter"})
    if len(sns) > MAX_SELECTION:
        raise CommandError({"sns": f"at most {MAX_SELECTION:,} inverters"})
    resolved = resolve_target(account, Target(TargetKind.SELECTION, sns=tuple(sns)))
    try:
        with transaction.atomic():
            if selection is None:
                return SavedSelection.objects.create(
                    account=account, name=name, sns=resolved.sns,
                    created_by=user if user is not None and user.is_authenticated else None)
            selection.name, selection.sns, selection.updated = name, resolved.sns, timezone.now()
            selection.save(update_fields=["name", "sns", "updated"])
            return selection
    except IntegrityError:
        raise CommandError({"name": f"a selection named {name!r} exists already"}) from None
