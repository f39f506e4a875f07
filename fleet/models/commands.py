"""Control commands, the vendor calls they became, and each device's result."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone as dj_timezone

from fleet.models.accounts import SolaxAccount
from fleet.models.calls import ApiCall
from fleet.models.mirror import Group


class CommandState(models.TextChoices):
    QUEUED = "queued", "queued"
    SENDING = "sending", "sending"
    ACCEPTED = "accepted", "accepted"  # the cloud took it and gave a command id
    RUNNING = "running", "running"  # a task id is known; devices are answering
    SUCCEEDED = "succeeded", "succeeded"
    PARTIAL = "partial", "partial"
    FAILED = "failed", "failed"
    UNKNOWN = "unknown", "unknown"  # a send may or may not have arrived: an operator decides
    CANCELLED = "cancelled", "cancelled"
    EXPIRED = "expired", "expired"


ACTIVE_COMMAND_STATES = (CommandState.QUEUED, CommandState.SENDING, CommandState.ACCEPTED, CommandState.RUNNING)


class TargetKind(models.TextChoices):
    INVERTER = "inverter", "one inverter"
    SELECTION = "selection", "a selection of inverters"
    GROUP = "group", "a group"
    CHARGERS = "chargers", "EV chargers"


class CommandKind(models.TextChoices):
    INVERTER_CONTROL = "inverter_control", "inverter control"
    CHARGER_MODE = "charger_mode", "EV charger mode"


class Resolution(models.TextChoices):
    DELIVERED = "delivered", "delivered"
    NOT_DELIVERED = "not_delivered", "not delivered"
    SENT_AGAIN = "sent_again", "sent again on purpose"


class Command(models.Model):
    account = models.ForeignKey(SolaxAccount, models.CASCADE, related_name="commands", db_index=False)
    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    kind = models.CharField(max_length=20, choices=CommandKind.choices)
    target_kind = models.CharField(max_length=10, choices=TargetKind.choices)
    group = models.ForeignKey(Group, models.SET_NULL, null=True, blank=True, related_name="commands")
    sns = models.JSONField(default=list, blank=True)  # inverter SNs or charger SNs (not for a group)
    # The validated action: superType and the solax.control field values, or the charger mode.
    action = models.JSONField(default=dict)
    label = models.CharField(max_length=200)  # "Forced charge 3000 W to group North"
    state = models.CharField(max_length=10, choices=CommandState.choices, default=CommandState.QUEUED)
    created = models.DateTimeField(default=dj_timezone.now)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True,
                                   related_name="commands")
    created_from = models.GenericIPAddressField(null=True, blank=True)
    source = models.CharField(max_length=20, default="manual")  # manual, schedule, retry
    expires_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    retry_of = models.ForeignKey("self", models.SET_NULL, null=True, blank=True, related_name="retries")
    # Denormalised counts for the history list (fast at 200,000 commands).
    devices_total = models.PositiveIntegerField(default=0)
    devices_answered = models.PositiveIntegerField(default=0)
    devices_succeeded = models.PositiveIntegerField(default=0)
    devices_failed = models.PositiveIntegerField(default=0)
    resolution = models.CharField(max_length=15, choices=Resolution.choices, blank=True)
    resolved_by = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True,
                                    related_name="+")
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["account", "-created"], name="command_history"),
            models.Index(fields=["account", "state", "-created"], name="command_state"),
            models.Index(fields=["account", "created_by", "-created"], name="command_user"),
        ]
        ordering = ["-created"]

    def __str__(self) -> str:
        return self.label


class CommandBatch(models.Model):
    """One control call of a command (a group call, a batch of SNs, or a pileCmd of <= 100 chargers)
    and the ids the cloud gave it."""

    command = models.ForeignKey(Command, models.CASCADE, related_name="batches")
    sns = models.JSONField(default=list, blank=True)
    call = models.OneToOneField(ApiCall, models.SET_NULL, null=True, blank=True, related_name="batch")
    vendor_command_id = models.CharField(max_length=60, blank=True)
    task_id = models.CharField(max_length=60, blank=True)
    state = models.CharField(max_length=10, choices=CommandState.choices, default=CommandState.QUEUED)
    polls = models.PositiveIntegerField(default=0)
    next_poll_at = models.DateTimeField(null=True, blank=True)
    # Answers for SNs the mirror does not know (SN -> the vendor's text): recorded, never dropped.
    unmatched = models.JSONField(default=dict, blank=True)

    class Meta:
        indexes = [models.Index(fields=["task_id"], name="batch_task")]

    def __str__(self) -> str:
        return f"batch of {self.command} ({self.state})"


class DeviceState(models.TextChoices):
    PENDING = "pending", "pending"
    SUCCEEDED = "succeeded", "succeeded"
    FAILED = "failed", "failed"
    NO_ANSWER = "no_answer", "no answer"
    UNKNOWN = "unknown", "unknown"


class DeviceResult(models.Model):
    command = models.ForeignKey(Command, models.CASCADE, related_name="results")
    batch = models.ForeignKey(CommandBatch, models.SET_NULL, null=True, blank=True, related_name="results")
    sn = models.CharField(max_length=40)  # inverter SN, or charger SN
    dongle_sn = models.CharField(max_length=40, blank=True)  # getQueryResult answers per dongle SN
    state = models.CharField(max_length=10, choices=DeviceState.choices, default=DeviceState.PENDING)
    answer = models.CharField(max_length=500, blank=True)  # the vendor's text
    answered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["command", "sn"], name="one_result_per_device")]
        indexes = [models.Index(fields=["command", "state"], name="result_state")]
        ordering = ["sn"]

    def __str__(self) -> str:
        return f"{self.sn}: {self.state}"


class CallbackReceipt(models.Model):
    """An EV callback, kept once per (task, kind, SN) so that duplicates change nothing."""

    account = models.ForeignKey(SolaxAccount, models.CASCADE, related_name="callbacks")
    task_id = models.CharField(max_length=60)
    rsp_type = models.PositiveSmallIntegerField()
    sn = models.CharField(max_length=40, blank=True)
    received = models.DateTimeField(default=dj_timezone.now)
    body = models.TextField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account", "task_id", "rsp_type", "sn"],
                                               name="one_callback")]

    def __str__(self) -> str:
        return f"callback {self.rsp_type} of {self.task_id}"
