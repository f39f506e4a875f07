"""The call ledger: every request to SolaX is an ApiCall row before it is anything else."""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone as dj_timezone

from fleet.models.accounts import SolaxAccount
from solax.endpoints import ENDPOINTS

RESPONSE_LIMIT = 4000  # characters of a response kept in the ledger


class Priority(models.IntegerChoices):
    """Lower runs first. Reads never starve writes."""

    CONTROL = 0, "control write"
    MANAGEMENT = 1, "management write"
    POLL = 2, "result poll"
    READ = 3, "sync / status read"


class CallState(models.TextChoices):
    QUEUED = "queued", "queued"
    SENDING = "sending", "sending"
    SUCCEEDED = "succeeded", "succeeded"
    FAILED = "failed", "failed"
    UNKNOWN = "unknown", "unknown"
    CANCELLED = "cancelled", "cancelled"


FINAL_STATES = (CallState.SUCCEEDED, CallState.FAILED, CallState.UNKNOWN, CallState.CANCELLED)

# Priority by what an endpoint does; whether it writes is declared once, in solax.endpoints.
_PRIORITY_OF_KIND = {"control": Priority.CONTROL, "management": Priority.MANAGEMENT, "poll": Priority.POLL,
                     "read": Priority.READ}


def default_priority(endpoint: str) -> Priority:
    """Return the priority an endpoint gets unless its caller says otherwise."""
    return _PRIORITY_OF_KIND[ENDPOINTS[endpoint].kind]


def is_write_endpoint(endpoint: str) -> bool:
    """Whether calls to ``endpoint`` change the cloud: sent at most once, never resent automatically."""
    return ENDPOINTS[endpoint].write


class ApiCall(models.Model):
    # no index of its own: call_due and call_log start with account
    account = models.ForeignKey(SolaxAccount, models.CASCADE, related_name="calls", db_index=False)
    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    endpoint = models.CharField(max_length=40)
    params = models.JSONField(default=dict)  # never the token: the client adds it at send time
    purpose = models.CharField(max_length=200, blank=True)
    priority = models.PositiveSmallIntegerField(choices=Priority.choices)
    state = models.CharField(max_length=10, choices=CallState.choices, default=CallState.QUEUED)
    not_before = models.DateTimeField(default=dj_timezone.now)
    attempts = models.PositiveIntegerField(default=0)
    created = models.DateTimeField(default=dj_timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    vendor_code = models.CharField(max_length=20, blank=True)
    error = models.TextField(blank=True)  # the vendor's exception text or our description of the failure
    response = models.TextField(blank=True)  # bounded copy of the body
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    # Who asked: a handler name (see fleet.pipeline.handlers.register) with its context, and the origin's code
    # (a command, a sync run, a binding request) so the log can be filtered by it.
    handler = models.CharField(max_length=60, blank=True)
    context = models.JSONField(default=dict, blank=True)
    origin_kind = models.CharField(max_length=20, blank=True)
    origin_code = models.UUIDField(null=True, blank=True)

    class Meta:
        indexes = [
            # the dispatcher's question: the next due call of an account, by priority
            models.Index(fields=["account", "state", "priority", "not_before"], name="call_due"),
            models.Index(fields=["account", "created"], name="call_log"),
            # "is anything of this command / sync run still pending?" is asked after every answer
            models.Index(fields=["origin_code", "state"], name="call_origin"),
            models.Index(fields=["state", "sent_at"], name="call_stale"),
        ]
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.endpoint} ({self.state})"

    @property
    def is_write(self) -> bool:
        return is_write_endpoint(self.endpoint)

    @property
    def is_final(self) -> bool:
        return self.state in FINAL_STATES


class CallAttempt(models.Model):
    """One HTTP request that left (or may have left) for SolaX: what the budget counts.

    Kept apart from ApiCall because a call can be sent more than once (a read retried, a call
    re-queued after the vendor refused it) and every request counts against the vendor's limits.
    `seq` numbers an account's attempts 1, 2, 3... and `sent_at` never decreases along it (both are
    assigned under the account's lock), so the requests in any window are `last seq - first seq in
    the window + 1`: two index lookups, however many requests the day holds.
    """

    # no index of its own: both indexes below start with account
    account = models.ForeignKey(SolaxAccount, models.CASCADE, related_name="attempts", db_index=False)
    call = models.ForeignKey(ApiCall, models.CASCADE, related_name="attempt_rows")
    seq = models.PositiveBigIntegerField()
    sent_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["account", "sent_at"], name="attempt_window")]
        constraints = [models.UniqueConstraint(fields=["account", "seq"], name="attempt_seq")]

    def __str__(self) -> str:
        return f"attempt {self.seq} of account {self.account_id} at {self.sent_at:%H:%M:%S}"
