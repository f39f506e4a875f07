"""Fleet models. People and accounts live here; the pipeline, mirror and commands add their own."""

from __future__ import annotations

import secrets
import uuid
import zoneinfo
from typing import Any

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone as dj_timezone

from fleet import crypto


class Organization(models.Model):
    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=100, unique=True)
    created = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    VIEWER = "viewer", "Viewer"
    OPERATOR = "operator", "Operator"
    ADMIN = "admin", "Admin"


_RANK = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}


class Membership(models.Model):
    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organization = models.ForeignKey(Organization, models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.VIEWER)
    created = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "user"], name="one_membership")]
        ordering = ["organization__name", "user__username"]

    def __str__(self) -> str:
        return f"{self.user} in {self.organization} ({self.role})"

    def has_role(self, role: str) -> bool:
        """Return True when this membership's role is `role` or above it."""
        return _RANK[Role(self.role)] >= _RANK[Role(role)]

    @property
    def can_operate(self) -> bool:
        return self.has_role(Role.OPERATOR)

    @property
    def is_admin(self) -> bool:
        return self.has_role(Role.ADMIN)


def _callback_secret() -> str:
    return secrets.token_urlsafe(24)


def callback_secret_hash(secret: str) -> str:
    """Return the lookup key of an EV callback secret (see crypto.secret_hash)."""
    return crypto.secret_hash(secret)


def _default_vpp_url() -> str:
    return settings.SOLAX_VPP_BASE_URL


def _default_ev_url() -> str:
    return settings.SOLAX_EV_BASE_URL


def _default_tz() -> str:
    return settings.TIME_ZONE


class SolaxAccount(models.Model):
    """A SolaX Cloud token and the budget that every request made with it shares."""

    organization = models.ForeignKey(Organization, models.CASCADE, related_name="accounts")
    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=100)
    token_ciphertext = models.TextField(editable=False)
    token_last4 = models.CharField(max_length=4, editable=False)
    vpp_base_url = models.URLField(default=_default_vpp_url)
    ev_base_url = models.URLField(default=_default_ev_url)
    timezone = models.CharField(max_length=64, default=_default_tz)
    calls_per_minute = models.PositiveIntegerField(default=10, validators=[MinValueValidator(1)])
    calls_per_day = models.PositiveIntegerField(default=10_000, validators=[MinValueValidator(1)])
    # Calls held back from each limit so that clock skew and latency never push us over it.
    safety_margin_per_minute = models.PositiveIntegerField(default=1)
    safety_margin_per_day = models.PositiveIntegerField(default=100)
    # Share of the daily budget that only control writes may spend.
    control_share_percent = models.PositiveIntegerField(default=20)
    paused_until = models.DateTimeField(null=True, blank=True)
    pause_reason = models.CharField(max_length=200, blank=True)
    # The EV callback address carries a secret. Only its hash is looked up (a copy of the database, or a
    # log of its queries, does not give the address away); the secret itself is encrypted like the token,
    # because it must be sent to SolaX with every pileCmd (fleet.calls.callback_url).
    callback_secret_hash = models.CharField(max_length=64, unique=True, editable=False)
    callback_secret_ciphertext = models.TextField(editable=False)
    created = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "name"], name="account_name_per_org")]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"<SolaxAccount {self.name!r} token=…{self.token_last4}>"

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Save; a new account gets its callback secret here (it needs the encryption keys)."""
        if not self.callback_secret_hash:
            self.set_callback_secret(_callback_secret())
            if kwargs.get("update_fields") is not None:
                kwargs["update_fields"] = {*kwargs["update_fields"], "callback_secret_hash",
                                           "callback_secret_ciphertext"}
        super().save(*args, **kwargs)

    def set_token(self, token: str) -> None:
        """Store `token` encrypted; only its last four digits stay readable."""
        self.token_ciphertext = crypto.encrypt(token)
        self.token_last4 = token[-4:]

    def get_token(self) -> str:
        """Return the plaintext token, for the call pipeline only."""
        return crypto.decrypt(self.token_ciphertext)

    def set_callback_secret(self, secret: str) -> None:
        """Store the EV callback secret encrypted, and its hash for the lookup of incoming callbacks."""
        self.callback_secret_ciphertext = crypto.encrypt(secret)
        self.callback_secret_hash = callback_secret_hash(secret)

    def get_callback_secret(self) -> str:
        """Return the plaintext callback secret, to build the callback URL sent to SolaX."""
        return crypto.decrypt(self.callback_secret_ciphertext)

    @property
    def masked_token(self) -> str:
        return f"••••{self.token_last4}" if self.token_last4 else "(none)"

    @property
    def tzinfo(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)

    def is_paused(self, now=None) -> bool:  # type: ignore[no-untyped-def]
        now = now or dj_timezone.now()
        return self.paused_until is not None and self.paused_until > now
