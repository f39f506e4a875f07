"""Schedules of charge/discharge windows and the occurrences the minute tick fired (or missed)."""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone as dj_timezone

from fleet.models.accounts import SolaxAccount, long_ago
from fleet.models.commands import Command, TargetKind
from fleet.models.mirror import Group, SavedSelection

# How far ahead of an edge the call pipeline keeps minute slots for it: the rolling minute plus one
# tick period; and how late a missed tick may still send an edge (later, it is marked missed).
RESERVE_AHEAD = timedelta(minutes=2)


def grace() -> timedelta:
    return timedelta(minutes=settings.SCHEDULE_GRACE_MINUTES)


class Schedule(models.Model):
    """A window: the start action at ``start_time``, the end action at ``end_time`` (the next day when
    it is not later than the start), on one ``date`` or on ``weekdays`` (0 = Monday), in ``timezone``."""

    account = models.ForeignKey(SolaxAccount, models.CASCADE, related_name="schedules", db_index=False)
    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=100)
    target_kind = models.CharField(max_length=10, choices=TargetKind.choices)
    group = models.ForeignKey(Group, models.SET_NULL, null=True, blank=True, related_name="schedules")
    groups = models.ManyToManyField(Group, blank=True, related_name="+")  # "several groups"
    selection = models.ForeignKey(SavedSelection, models.SET_NULL, null=True, blank=True, related_name="schedules")
    sns = models.JSONField(default=list, blank=True)  # inverter SNs (selection) or charger SNs
    start_action = models.JSONField(default=dict)
    end_action = models.JSONField(default=dict)
    start_time = models.TimeField()
    end_time = models.TimeField()
    date = models.DateField(null=True, blank=True)  # a one-off window; else weekdays
    weekdays = models.JSONField(default=list, blank=True)  # [0..6], Monday first
    timezone = models.CharField(max_length=64)
    enabled = models.BooleanField(default=True)
    valid_from = models.DateField(null=True, blank=True)
    valid_until = models.DateField(null=True, blank=True)
    # Control calls one edge needs, and the next edge's instant: the call pipeline reserves that many
    # minute slots shortly before it (fleet.pipeline.ledger.reserved_slots).
    calls_per_edge = models.PositiveIntegerField(default=1)
    next_edge_at = models.DateTimeField(null=True, blank=True)
    # When the minute tick must look at this schedule next (fleet.schedules.service.tick selects only
    # enabled schedules with wake_at <= now, by index): its next edge, a week ahead when it has none
    # within eight days, and "now" after every save so that the next tick re-reads it.
    wake_at = models.DateTimeField(default=long_ago)
    created = models.DateTimeField(default=dj_timezone.now)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True,
                                   related_name="+")

    class Meta:
        indexes = [
            models.Index(fields=["account", "enabled", "next_edge_at"], name="schedule_next_edge"),
            models.Index(fields=["account", "name"], name="schedule_list"),
            models.Index(fields=["enabled", "wake_at"], name="schedule_wake"),
        ]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Edge(models.TextChoices):
    START = "start", "start"
    END = "end", "end"


class OccurrenceState(models.TextChoices):
    FIRED = "fired", "fired"  # its command was created
    MISSED = "missed", "missed"  # the tick came later than the grace period
    REJECTED = "rejected", "rejected"  # the command service refused the action or target


class Occurrence(models.Model):
    """One edge of one occurrence, written once: the unique key is what makes a second tick harmless."""

    schedule = models.ForeignKey(Schedule, models.CASCADE, related_name="occurrences")
    local_date = models.DateField()  # the local date on which the window starts
    edge = models.CharField(max_length=5, choices=Edge.choices)
    due_at = models.DateTimeField()
    state = models.CharField(max_length=10, choices=OccurrenceState.choices)
    command = models.ForeignKey(Command, models.SET_NULL, null=True, blank=True, related_name="occurrences")
    error = models.CharField(max_length=500, blank=True)
    recorded = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["schedule", "local_date", "edge"], name="one_edge_once")]
        indexes = [models.Index(fields=["schedule", "-due_at"], name="occurrence_history")]
        ordering = ["-due_at"]

    def __str__(self) -> str:
        return f"{self.schedule} {self.local_date} {self.edge} ({self.state})"
