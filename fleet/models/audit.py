"""The audit log: who changed what, when, from where, before -> after (never a secret)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone as dj_timezone

from fleet.models.accounts import Organization


class AuditEntry(models.Model):
    """One change made by a person, an API key or the system, in one organization.

    ``actor`` is the person (kept null when the user is deleted); ``actor_label`` is what the log
    shows and keeps: the username, "api key 'trading'" or "system". ``changes`` maps a field to
    ``[before, after]``; a secret field's values are never stored, only ``"changed"``.
    """

    organization = models.ForeignKey(Organization, models.CASCADE, related_name="audit_entries")
    at = models.DateTimeField(default=dj_timezone.now)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+")
    actor_label = models.CharField(max_length=150)
    address = models.GenericIPAddressField(null=True, blank=True)
    action = models.CharField(max_length=40)
    object_kind = models.CharField(max_length=30, blank=True)
    object_code = models.CharField(max_length=64, blank=True)
    object_name = models.CharField(max_length=200, blank=True)
    changes = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            # the page: an organization's newest first, optionally one action, kind or actor
            models.Index(fields=["organization", "-at", "-id"], name="audit_org_at"),
            models.Index(fields=["organization", "action", "-at"], name="audit_org_action_at"),
            models.Index(fields=["organization", "object_kind", "-at"], name="audit_org_kind_at"),
            models.Index(fields=["organization", "actor_label", "-at"], name="audit_org_actor_at"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_label} {self.action} {self.object_name}"
