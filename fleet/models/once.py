"""One-time keys: a confirmation or a write form can be used once (see fleet.accounts.once)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone as dj_timezone

from fleet.models.accounts import Organization


class OnceKey(models.Model):
    """A key issued with a form (a cost plan, a write form) to one user in one organization for one
    ``purpose``. Submitting the form consumes it in the transaction that does the work; a second
    submit finds it used and is shown ``result_url`` (what the first submit did) instead."""

    key = models.CharField(max_length=64, unique=True)
    organization = models.ForeignKey(Organization, models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, models.CASCADE, related_name="+")
    purpose = models.CharField(max_length=100)
    # What was (or will be) submitted with the key: a hash of the plan's target and action, or of the
    # form's values. Identical fingerprints in one organization are "the same request".
    fingerprint = models.CharField(max_length=64, blank=True)
    created = models.DateTimeField(default=dj_timezone.now)
    expires_at = models.DateTimeField(db_index=True)
    used_at = models.DateTimeField(null=True, blank=True)
    result_url = models.CharField(max_length=300, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["organization", "user", "purpose", "used_at"], name="once_open"),
            models.Index(fields=["organization", "fingerprint", "used_at"], name="once_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.purpose} for {self.user_id} ({'used' if self.used_at else 'open'})"
