"""API keys of an organization and the Idempotency-Keys of the requests they made."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone as dj_timezone

from fleet.models.accounts import Organization, Role


class ApiKeyScope(models.TextChoices):
    READ = "read", "read"
    OPERATE = "operate", "operate"


# What a key may do, as the role a person would need for it (fleet.accounts.access checks roles).
SCOPE_ROLE = {ApiKeyScope.READ: Role.VIEWER, ApiKeyScope.OPERATE: Role.OPERATOR}


class ApiKey(models.Model):
    """A key for the REST API (/api/v1/). Only the SHA-256 of the key is kept; ``prefix`` is its public
    start, by which a presented key is looked up, and which the settings page shows."""

    organization = models.ForeignKey(Organization, models.CASCADE, related_name="api_keys")
    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=100)
    scope = models.CharField(max_length=10, choices=ApiKeyScope.choices, default=ApiKeyScope.READ)
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    key_hash = models.CharField(max_length=64, editable=False)
    created = models.DateTimeField(default=dj_timezone.now)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True,
                                   related_name="+")
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True,
                                   related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "name"], condition=models.Q(revoked_at=None),
                                               name="api_key_name_per_org")]
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"API key {self.name} ({self.scope})"

    @property
    def role(self) -> str:
        return SCOPE_ROLE[ApiKeyScope(self.scope)]

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class IdempotencyKey(models.Model):
    """One ``Idempotency-Key`` of an organization: the hash of the body it came with and the object the
    request created, so that a retry returns that object and another body with the same key is refused."""

    organization = models.ForeignKey(Organization, models.CASCADE, related_name="+")
    key = models.CharField(max_length=200)
    purpose = models.CharField(max_length=40)  # "command"
    body_hash = models.CharField(max_length=64)
    result_code = models.UUIDField()
    api_key = models.ForeignKey(ApiKey, models.SET_NULL, null=True, blank=True, related_name="+")
    created = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "purpose", "key"], name="one_idempotency_key")]
        indexes = [models.Index(fields=["created"], name="idempotency_age")]

    def __str__(self) -> str:
        return f"{self.purpose} {self.key}"
