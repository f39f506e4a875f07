"""Day-ahead prices per zone, the price rules of targets, and the day plans compiled from them with
the edges the minute tick sends (fleet.prices.service)."""

from __future__ import annotations

import uuid
from datetime import time
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.utils import timezone as dj_timezone

from fleet.models.accounts import SolaxAccount
from fleet.models.commands import Command, TargetKind
from fleet.models.mirror import Group, SavedSelection

# The targets a price rule can follow: a group, several groups, a saved selection
RULE_TARGETS = (TargetKind.GROUP, TargetKind.GROUPS, TargetKind.SAVED)


class PriceZone(models.Model):
    """A bidding zone's prices as one account's sites pay them: a name, a timezone, a currency and,
    for the ENTSO-E fetcher, the zone's EIC code (e.g. 10Y1001A1001A82H for DE-LU)."""

    account = models.ForeignKey(SolaxAccount, models.CASCADE, related_name="price_zones")
    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=100)
    timezone = models.CharField(max_length=64)
    currency = models.CharField(max_length=3, default="EUR")
    eic = models.CharField("ENTSO-E area code", max_length=18, blank=True)
    created = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account", "name"], name="price_zone_name_per_account")]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class PriceSource(models.TextChoices):
    CSV = "csv", "CSV upload"
    A44 = "a44", "ENTSO-E XML upload"
    ENTSOE = "entsoe", "ENTSO-E API"


class PriceSeries(models.Model):
    """One upload or fetch of one local delivery day; the latest of a day is the one plans use."""

    zone = models.ForeignKey(PriceZone, models.CASCADE, related_name="series")
    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    day = models.DateField()
    minutes = models.PositiveSmallIntegerField()  # 15 or 60
    unit = models.CharField(max_length=3)  # "MWh" or "kWh": prices are kept as given
    source = models.CharField(max_length=10, choices=PriceSource.choices)
    filename = models.CharField(max_length=200, blank=True)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True,
                                    related_name="+")
    uploaded_at = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        indexes = [models.Index(fields=["zone", "day", "-uploaded_at"], name="price_series_day")]
        ordering = ["-day", "-uploaded_at"]

    def __str__(self) -> str:
        return f"{self.zone} {self.day}"


class PriceInterval(models.Model):
    series = models.ForeignKey(PriceSeries, models.CASCADE, related_name="intervals")
    start = models.DateTimeField()  # UTC
    minutes = models.PositiveSmallIntegerField()
    price = models.DecimalField(max_digits=12, decimal_places=5)  # in the series' currency per unit

    class Meta:
        constraints = [models.UniqueConstraint(fields=["series", "start"], name="price_interval_once")]
        ordering = ["start"]

    def __str__(self) -> str:
        return f"{self.start:%Y-%m-%d %H:%M} UTC {self.price}"


class PriceRule(models.Model):
    """How a target (a group, several groups or a saved selection) follows a zone's prices; prices
    are per MWh in the zone's currency. The target is resolved again at each send
    (fleet.commands.targets.resolve_target), as a schedule's is."""

    zone = models.ForeignKey(PriceZone, models.CASCADE, related_name="rules")
    target_kind = models.CharField(max_length=10, choices=[(k.value, k.label) for k in RULE_TARGETS],
                                   default=TargetKind.GROUP)
    group = models.ForeignKey(Group, models.CASCADE, null=True, blank=True, related_name="price_rules")
    groups = models.ManyToManyField(Group, blank=True, related_name="+")  # "several groups"
    selection = models.ForeignKey(SavedSelection, models.CASCADE, null=True, blank=True, related_name="price_rules")
    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    charge_hours = models.DecimalField(max_digits=4, decimal_places=2, default=0)
    charge_below = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    discharge_hours = models.DecimalField(max_digits=4, decimal_places=2, default=0)
    discharge_above = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    charge_cap = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    min_soc = models.PositiveSmallIntegerField(default=10)
    no_export_negative = models.BooleanField(default=True)
    window_start = models.TimeField(default=time(0))
    window_end = models.TimeField(default=time(0))  # 00:00: midnight at the end of the day
    updated = models.DateTimeField(default=dj_timezone.now)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True,
                                   related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["zone", "group"], name="price_rule_per_target")]

    def __str__(self) -> str:
        return f"{self.zone} → {self.target_label}"

    @property
    def target_label(self) -> str:
        """The target as the pages name it: the group's name, the groups' names, the selection's."""
        if self.target_kind == TargetKind.GROUPS:
            names = sorted(g.name for g in self.groups.all()) if self.pk else []
            return "groups " + ", ".join(names) if names else "several groups (none left)"
        if self.target_kind == TargetKind.SAVED:
            return f"selection {self.selection.name}" if self.selection else "a saved selection (gone)"
        return self.group.name if self.group else "a group (gone)"


class PlanForm(models.TextChoices):
    WINDOWS = "windows", "device windows (one write)"
    EDGES = "edges", "edges (one command each)"


class PlanState(models.TextChoices):
    PROPOSED = "proposed", "proposed"
    ACCEPTED = "accepted", "accepted"
    SUPERSEDED = "superseded", "superseded"


class DayPlan(models.Model):
    """A rule compiled on one day's prices: its periods, averages and cost in calls."""

    rule = models.ForeignKey(PriceRule, models.CASCADE, related_name="plans")
    series = models.ForeignKey(PriceSeries, models.CASCADE, related_name="plans")
    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    day = models.DateField()
    form = models.CharField(max_length=10, choices=PlanForm.choices)
    periods = models.JSONField(default=list)  # [{"kind", "start", "end", "average"}], UTC ISO, per MWh
    edges = models.JSONField(default=list)  # [{"at", "label", "action"}] as they will be sent
    avg_charge = models.DecimalField(max_digits=10, decimal_places=2, null=True)
    avg_discharge = models.DecimalField(max_digits=10, decimal_places=2, null=True)
    notes = models.JSONField(default=list)
    calls = models.PositiveIntegerField()  # control calls the plan costs per target
    state = models.CharField(max_length=10, choices=PlanState.choices, default=PlanState.PROPOSED)
    # An estimate of the day's value: spread x the energy the target's inverters can move at their
    # rated power in the shorter of the charge and discharge time (battery size and losses unknown)
    value_estimate = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    energy_estimate_kwh = models.DecimalField(max_digits=12, decimal_places=1, null=True, blank=True)
    devices_without_power = models.PositiveIntegerField(default=0)
    created = models.DateTimeField(default=dj_timezone.now)
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True,
                                    related_name="+")

    class Meta:
        indexes = [models.Index(fields=["rule", "day", "state"], name="day_plan_state")]
        ordering = ["-day", "-created"]

    def __str__(self) -> str:
        return f"{self.rule} {self.day} ({self.state})"

    @property
    def spread(self) -> Decimal | None:
        if self.avg_charge is None or self.avg_discharge is None:
            return None
        return self.avg_discharge - self.avg_charge


class PlanEdgeState(models.TextChoices):
    PENDING = "pending", "pending"
    FIRED = "fired", "fired"  # its command was created
    REJECTED = "rejected", "rejected"
    MISSED = "missed", "missed"
    SUPERSEDED = "superseded", "superseded"  # a newer plan replaced it before it was due


class PlanEdge(models.Model):
    """One command of an accepted plan, due at ``due_at``; fired once by the minute tick. While it is
    pending, the call pipeline keeps ``calls`` minute slots of its account for it shortly before it
    is due, as for a schedule's next edge (fleet.pipeline.ledger.reserved_slots)."""

    plan = models.ForeignKey(DayPlan, models.CASCADE, related_name="sent_edges")
    account = models.ForeignKey(SolaxAccount, models.CASCADE, null=True, related_name="+", db_index=False)
    calls = models.PositiveIntegerField(default=1)  # control calls the edge's command needs
    due_at = models.DateTimeField()
    label = models.CharField(max_length=100)
    action = models.JSONField()
    fallback = models.BooleanField(default=False)  # self use after the day, unless the next day has a plan
    state = models.CharField(max_length=10, choices=PlanEdgeState.choices, default=PlanEdgeState.PENDING)
    command = models.ForeignKey(Command, models.SET_NULL, null=True, blank=True, related_name="+")
    error = models.CharField(max_length=500, blank=True)

    class Meta:
        indexes = [models.Index(fields=["state", "due_at"], name="plan_edge_due"),
                   models.Index(fields=["account", "state", "due_at"], name="plan_edge_reserve")]
        ordering = ["due_at", "id"]

    def __str__(self) -> str:
        return f"{self.label} at {self.due_at:%Y-%m-%d %H:%M} UTC ({self.state})"
