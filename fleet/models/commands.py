"""Control commands, the vendor calls they became, and each device's result."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone as dj_timezone

from fleet.models.accounts import Organization, SolaxAccount
from fleet.models.api import ApiKey
from fleet.models.calls import ApiCall
from fleet.models.mirror import Group, SavedSelection


class CommandState(models.TextChoices):
    APPROVAL = "approval", "awaiting approval"  # over the envelope's size threshold: a second operator decides
    QUEUED = "queued", "queued"
    ACCEPTED = "accepted", "accepted"  # the cloud took it and gave a command id
    RUNNING = "running", "running"  # a task id is known; devices are answering
    SUCCEEDED = "succeeded", "succeeded"
    PARTIAL = "partial", "partial"
    FAILED = "failed", "failed"
    UNKNOWN = "unknown", "unknown"  # a send may or may not have arrived: an operator decides
    CANCELLED = "cancelled", "cancelled"
    EXPIRED = "expired", "expired"


ACTIVE_COMMAND_STATES = (CommandState.APPROVAL, CommandState.QUEUED, CommandState.ACCEPTED, CommandState.RUNNING)


class TargetKind(models.TextChoices):
    INVERTER = "inverter", "one inverter"
    SELECTION = "selection", "a selection of inverters"
    GROUP = "group", "a group"
    GROUPS = "groups", "several groups"
    SAVED = "saved", "a saved selection"
    FLEET = "fleet", "the whole fleet"
    CHARGERS = "chargers", "EV chargers"


class CommandKind(models.TextChoices):
    INVERTER_CONTROL = "inverter_control", "inverter control"
    CHARGER_MODE = "charger_mode", "EV charger mode"


class Resolution(models.TextChoices):
    DELIVERED = "delivered", "delivered"
    NOT_DELIVERED = "not_delivered", "not delivered"
    SENT_AGAIN = "sent_again", "sent again on purpose"


class RolloutStage(models.TextChoices):
    """A staged rollout: the canary batches go first; the rest is held until their results are known."""

    CANARY = "canary", "canary sent, waiting for its results"
    PASSED = "passed", "canary passed, waiting for an operator to continue"
    HALTED = "halted", "halted"
    CONTINUED = "continued", "continued to the rest"
    CANCELLED = "cancelled", "cancelled"


class Command(models.Model):
    account = models.ForeignKey(SolaxAccount, models.CASCADE, related_name="commands", db_index=False)
    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    kind = models.CharField(max_length=20, choices=CommandKind.choices)
    target_kind = models.CharField(max_length=10, choices=TargetKind.choices)
    group = models.ForeignKey(Group, models.SET_NULL, null=True, blank=True, related_name="commands")
    groups = models.ManyToManyField(Group, blank=True, related_name="+")  # "several groups"
    selection = models.ForeignKey(SavedSelection, models.SET_NULL, null=True, blank=True, related_name="commands")
    sns = models.JSONField(default=list, blank=True)  # inverter SNs or charger SNs (not for a group)
    # The validated action: superType and the solax.control field values, or the charger mode.
    action = models.JSONField(default=dict)
    label = models.CharField(max_length=200)  # "Forced charge 3000 W to group North"
    state = models.CharField(max_length=10, choices=CommandState.choices, default=CommandState.QUEUED)
    created = models.DateTimeField(default=dj_timezone.now)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True,
                                   related_name="commands")
    created_from = models.GenericIPAddressField(null=True, blank=True)
    source = models.CharField(max_length=20, default="manual")  # manual, schedule, retry, api
    # The API key that sent it (source "api"): who, with created_from saying from where.
    api_key = models.ForeignKey(ApiKey, models.SET_NULL, null=True, blank=True, related_name="commands")
    # The latest deadline of its batches (each counted from its own send): when the last result is due.
    expires_at = models.DateTimeField(null=True, blank=True)
    # The operator's "must start by": batches still unsent then are cancelled, never sent late.
    start_by = models.DateTimeField(null=True, blank=True)
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
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True,
                                    related_name="+")
    approved_at = models.DateTimeField(null=True, blank=True)
    # The API key that decided (through the REST API), where a person's decision fills the *_by above.
    resolved_by_key = models.ForeignKey(ApiKey, models.SET_NULL, null=True, blank=True, related_name="+")
    approved_by_key = models.ForeignKey(ApiKey, models.SET_NULL, null=True, blank=True, related_name="+")
    # Staged rollout (empty stage: none): the canary's size as asked ("10 %", "20 devices") and in
    # devices, the failure share (percent) at which it halts, and whether it continues by itself.
    rollout_stage = models.CharField(max_length=10, choices=RolloutStage.choices, blank=True)
    rollout_canary_asked = models.CharField(max_length=20, blank=True)
    rollout_canary = models.PositiveIntegerField(default=0)
    rollout_threshold = models.PositiveSmallIntegerField(default=0)
    rollout_auto = models.BooleanField(default=True)
    rollout_note = models.CharField(max_length=200, blank=True)  # "halted: 3 of 20 canary devices failed ..."
    rollout_decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True,
                                           related_name="+")
    rollout_decided_at = models.DateTimeField(null=True, blank=True)
    rollout_decided_by_key = models.ForeignKey(ApiKey, models.SET_NULL, null=True, blank=True, related_name="+")

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
    group = models.ForeignKey(Group, models.SET_NULL, null=True, blank=True, related_name="+")  # group_control
    sns = models.JSONField(default=list, blank=True)
    call = models.OneToOneField(ApiCall, models.SET_NULL, null=True, blank=True, related_name="batch")
    vendor_command_id = models.CharField(max_length=60, blank=True)
    task_id = models.CharField(max_length=60, blank=True)
    state = models.CharField(max_length=10, choices=CommandState.choices, default=CommandState.QUEUED)
    polls = models.PositiveIntegerField(default=0)
    next_poll_at = models.DateTimeField(null=True, blank=True)
    # Counted from the batch's own send: results later than this are not waited for.
    deadline = models.DateTimeField(null=True, blank=True)
    # Answers for SNs the mirror does not know (SN -> the vendor's text): recorded, never dropped.
    unmatched = models.JSONField(default=dict, blank=True)
    # A staged rollout's canary batch (sent first); the others are held (no call) until it passes.
    canary = models.BooleanField(default=False)

    class Meta:
        indexes = [models.Index(fields=["task_id"], name="batch_task"),
                   # the detail's batch counts read this index only, never the rows' SN lists
                   models.Index(fields=["command", "state"], name="batch_state")]

    def __str__(self) -> str:
        return f"batch of {self.command} ({self.state})"


class DeviceState(models.TextChoices):
    PENDING = "pending", "pending"
    SUCCEEDED = "succeeded", "succeeded"
    FAILED = "failed", "failed"
    NO_ANSWER = "no_answer", "no answer"
    NOT_SENT = "not_sent", "not sent"  # its batch was cancelled before it left
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
        indexes = [models.Index(fields=["command", "state"], name="result_state"),
                   models.Index(fields=["sn", "command"], name="result_sn")]  # writes per device per day
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


class SafetyEnvelope(models.Model):
    """An organization's limits, checked before anything is queued (empty: no limit). A command above
    ``approval_above_devices`` waits for a second operator's approval before it is sent."""

    organization = models.OneToOneField(Organization, models.CASCADE, related_name="envelope")
    max_devices = models.PositiveIntegerField(null=True, blank=True,
                                              help_text="The most devices one command may reach.")
    max_discharge_kw = models.FloatField(null=True, blank=True, validators=[MinValueValidator(0)],
                                         help_text="The most rated kW one command may discharge at once.")
    min_discharge_soc = models.PositiveIntegerField(
        null=True, blank=True, validators=[MaxValueValidator(100)],
        help_text="The lowest SoC (%) a discharge may target.")
    max_remote_timeout = models.PositiveIntegerField(
        null=True, blank=True, help_text="Remote-control modes only with a timeout of at most this many seconds.")
    max_writes_per_device_per_day = models.PositiveIntegerField(
        null=True, blank=True, help_text="Inverter flash wear: control writes one device may get a day (UTC).")
    approval_above_devices = models.PositiveIntegerField(
        null=True, blank=True, help_text="A command to more devices needs a second operator's approval.")
    updated = models.DateTimeField(default=dj_timezone.now)

    def __str__(self) -> str:
        return f"safety envelope of {self.organization}"
