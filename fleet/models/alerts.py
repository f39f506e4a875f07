"""Alerts (one row per episode of a condition), the channels they go to and each delivery's log."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone as dj_timezone

from fleet import crypto
from fleet.models.accounts import Organization, SolaxAccount


class AlertKind(models.TextChoices):
    COMMAND = "command", "command ended partial, failed or unknown"
    ACCOUNT_PAUSED = "account_paused", "account paused"
    EDGE_MISSED = "edge_missed", "schedule or price-plan edge missed"
    BUDGET = "budget", "day's budget runs out before the coming windows"
    DEVICES_SILENT = "devices_silent", "devices silent across several commands"
    SYNC = "sync", "sync incomplete or failed"


class Severity(models.TextChoices):
    INFO = "info", "info"
    WARNING = "warning", "warning"
    CRITICAL = "critical", "critical"


SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


class AlertState(models.TextChoices):
    OPEN = "open", "open"
    ACKNOWLEDGED = "acknowledged", "acknowledged"
    RESOLVED = "resolved", "resolved"


# An episode lasts while its alert is open or acknowledged: acknowledging silences nobody's condition.
ACTIVE_ALERT_STATES = (AlertState.OPEN, AlertState.ACKNOWLEDGED)


class Alert(models.Model):
    """One episode of a condition: raised once, resolved by itself when the condition ends.

    ``subject`` names what the episode is about within its kind (a command's, an account's or a
    schedule's code); the partial unique constraint lets only one active episode per (organization,
    kind, subject) exist, so two workers raising the same episode at once make one alert."""

    organization = models.ForeignKey(Organization, models.CASCADE, related_name="alerts", db_index=False)
    account = models.ForeignKey(SolaxAccount, models.CASCADE, null=True, blank=True, related_name="alerts")
    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    kind = models.CharField(max_length=20, choices=AlertKind.choices)
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.WARNING)
    subject = models.CharField(max_length=64)
    title = models.CharField(max_length=200)
    detail = models.TextField(blank=True)
    link = models.CharField(max_length=200, blank=True)  # a path of this site, e.g. the command's page
    context = models.JSONField(default=dict, blank=True)  # what the evaluation needs (e.g. silent SNs)
    state = models.CharField(max_length=12, choices=AlertState.choices, default=AlertState.OPEN)
    raised_at = models.DateTimeField(default=dj_timezone.now)
    acknowledged_by = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True,
                                        related_name="+")
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution = models.CharField(max_length=200, blank=True)  # why it ended

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "kind", "subject"], name="alert_one_episode",
                                    condition=Q(state__in=["open", "acknowledged"])),
        ]
        indexes = [
            models.Index(fields=["organization", "state", "-raised_at"], name="alert_list"),
            models.Index(fields=["state", "kind"], name="alert_active"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.subject} ({self.state})"

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE_ALERT_STATES


class ChannelKind(models.TextChoices):
    EMAIL = "email", "email"
    WEBHOOK = "webhook", "webhook"


class ChannelEvent(models.TextChoices):
    """What a channel may subscribe to (a test is sent on demand, to any channel)."""

    ALERT_RAISED = "alert.raised", "an alert is raised"
    ALERT_RESOLVED = "alert.resolved", "an alert is resolved"
    COMMAND_FINISHED = "command.finished", "a command finishes (succeeded, partial, failed, expired, cancelled)"


def default_events() -> list[str]:
    """A channel's events unless chosen: the alerts, as every channel had before commands were events."""
    return [ChannelEvent.ALERT_RAISED.value, ChannelEvent.ALERT_RESOLVED.value]


class Channel(models.Model):
    """Where an organization's events go: an email address or a signed webhook, with the events it
    subscribed to and a rule for alerts (which kinds, from which severity). A webhook's signing secret
    is stored encrypted and shown once."""

    organization = models.ForeignKey(Organization, models.CASCADE, related_name="channels", db_index=False)
    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    kind = models.CharField(max_length=10, choices=ChannelKind.choices)
    name = models.CharField(max_length=100)
    target = models.CharField(max_length=500)  # an email address or an http(s) URL
    secret_ciphertext = models.TextField(blank=True)
    events = models.JSONField(default=default_events)  # values of ChannelEvent
    kinds = models.JSONField(default=list, blank=True)  # alert kinds; empty: every kind
    min_severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.WARNING)
    enabled = models.BooleanField(default=True)
    created = models.DateTimeField(default=dj_timezone.now)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True,
                                   related_name="+")

    class Meta:
        indexes = [models.Index(fields=["organization", "name"], name="channel_list")]

    def __str__(self) -> str:
        return f"{self.kind} channel {self.name}"

    def __repr__(self) -> str:
        return f"<Channel {self.pk} {self.kind} {self.name!r}>"  # never the secret

    def set_secret(self, secret: str) -> None:
        self.secret_ciphertext = crypto.encrypt(secret)

    def get_secret(self) -> str:
        return crypto.decrypt(self.secret_ciphertext)

    def takes(self, event: str) -> bool:
        """Return True when this enabled channel subscribed to ``event``."""
        return self.enabled and event in (self.events or ())

    def matches(self, kind: str, severity: str) -> bool:
        """Return True when this channel's rule takes an alert of ``kind`` and ``severity``."""
        return (self.enabled and (not self.kinds or kind in self.kinds)
                and SEVERITY_RANK[Severity(severity)] >= SEVERITY_RANK[Severity(self.min_severity)])


class DeliveryState(models.TextChoices):
    PENDING = "pending", "pending"
    RETRYING = "retrying", "retrying"
    SENT = "sent", "sent"
    FAILED = "failed", "failed"


class Delivery(models.Model):
    """One message to one channel (an alert raised or resolved, a command finished, or a test) and what
    became of it. A command's event is delivered once per channel: a partial unique constraint, so a
    later move between final states or two workers recounting at once never send it twice."""

    channel = models.ForeignKey(Channel, models.CASCADE, related_name="deliveries")
    alert = models.ForeignKey(Alert, models.CASCADE, null=True, blank=True, related_name="deliveries")
    command = models.ForeignKey("fleet.Command", models.CASCADE, null=True, blank=True, related_name="deliveries")
    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    event = models.CharField(max_length=20)  # a ChannelEvent or "test"
    state = models.CharField(max_length=10, choices=DeliveryState.choices, default=DeliveryState.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)  # never the secret
    created = models.DateTimeField(default=dj_timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["channel", "command", "event"], name="delivery_once_per_command",
                                    condition=Q(command__isnull=False)),
        ]
        indexes = [models.Index(fields=["channel", "-created"], name="delivery_log"),
                   models.Index(fields=["state", "created"], name="delivery_pending")]

    def __str__(self) -> str:
        return f"{self.event} to {self.channel_id} ({self.state})"
