"""Fleet models. People and accounts live here; the pipeline, mirror and commands add their own."""

from __future__ import annotations

import secrets
import uuid
import zoneinfo
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone as dj_timezone

from fleet import crypto
from fleet.base_urls import validate_base_url


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


def validate_timezone_name(value: str) -> None:
    """Refuse a zone that is not an IANA name ("Europe/Berlin"); empty means "the default"."""
    if value and value not in zoneinfo.available_timezones():
        raise ValidationError(f"{value!r} is not a known time zone (e.g. Europe/Berlin).")


class Membership(models.Model):
    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organization = models.ForeignKey(Organization, models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.VIEWER)
    created = models.DateTimeField(default=dj_timezone.now)
    # The zone this person reads times in (an IANA name); empty: the organization's first account's.
    timezone = models.CharField(max_length=64, blank=True, validators=[validate_timezone_name])

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


# Pause reasons that a newly entered token ends (the form clears them; see SolaxAccountForm.save).
TOKEN_UNREADABLE_REASON = "token cannot be decrypted: check TOKEN_ENCRYPTION_KEYS"
TOKEN_SHARED_REASON = "another account holds the same token: enter this account's own token in Settings"
TOKEN_PAUSE_PREFIXES = ("SolaX rejected the token", TOKEN_UNREADABLE_REASON, TOKEN_SHARED_REASON)
# A pause that only a person ends (by entering a token), not the clock.
UNTIL_CHANGED = datetime(9999, 12, 31, tzinfo=UTC)


def long_ago() -> datetime:
    return datetime(2000, 1, 1, tzinfo=UTC)


def validate_calls_per_minute(value: int) -> None:
    """Refuse a per-minute budget above SOLAX_MAX_CALLS_PER_MINUTE (read at validation time)."""
    if value > settings.SOLAX_MAX_CALLS_PER_MINUTE:
        raise ValidationError(f"At most {settings.SOLAX_MAX_CALLS_PER_MINUTE:,} calls a minute "
                              "(SOLAX_MAX_CALLS_PER_MINUTE).")


def validate_calls_per_day(value: int) -> None:
    """Refuse a daily budget above SOLAX_MAX_CALLS_PER_DAY (read at validation time)."""
    if value > settings.SOLAX_MAX_CALLS_PER_DAY:
        raise ValidationError(f"At most {settings.SOLAX_MAX_CALLS_PER_DAY:,} calls a day (SOLAX_MAX_CALLS_PER_DAY).")


class SolaxAccount(models.Model):
    """A SolaX Cloud token and the budget that every request made with it shares."""

    organization = models.ForeignKey(Organization, models.CASCADE, related_name="accounts")
    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=100)
    token_ciphertext = models.TextField(editable=False)
    token_last4 = models.CharField(max_length=4, editable=False)
    # One token, one budget: a keyed digest of the token (fleet.crypto.token_digest), unique across
    # every organization. NULL only for a legacy row whose token could not be read at migration time.
    token_digest = models.CharField(max_length=64, unique=True, null=True, editable=False)
    # Only under SOLAX_ALLOWED_BASE_URLS: the token goes there (the dispatcher checks again at send time).
    vpp_base_url = models.URLField(default=_default_vpp_url, validators=[validate_base_url])
    ev_base_url = models.URLField(default=_default_ev_url, validators=[validate_base_url])
    timezone = models.CharField(max_length=64, default=_default_tz)
    calls_per_minute = models.PositiveIntegerField(
        default=10, validators=[MinValueValidator(1), validate_calls_per_minute])
    calls_per_day = models.PositiveIntegerField(
        default=10_000, validators=[MinValueValidator(1), validate_calls_per_day])
    # Calls held back from each limit so that clock skew and latency never push us over it.
    safety_margin_per_minute = models.PositiveIntegerField(default=1)
    safety_margin_per_day = models.PositiveIntegerField(default=100)
    # Share of the daily budget that only control writes may spend.
    control_share_percent = models.PositiveIntegerField(default=20)
    # The most SNs one batch call (batchTempControl) carries. The document states no maximum; 100
    # until a real cloud is known to take more. A command's plan says which limit applies.
    # How long after a send this account's devices were seen to answer (learned; empty: the default).
    result_delay_seconds = models.FloatField(null=True, blank=True, editable=False)
    # The page size the cloud actually returned (learned by the last sync when a first page came back
    # shorter than asked): a sync's call estimate uses it instead of the size asked. None: no cap seen.
    sync_page_cap = models.PositiveIntegerField(null=True, blank=True, editable=False)
    max_sns_per_call = models.PositiveIntegerField(
        default=100, validators=[MinValueValidator(1), MaxValueValidator(10_000)],
        help_text="The most SNs one batch control call carries (the vendor states no maximum).")
    paused_until = models.DateTimeField(null=True, blank=True)
    pause_reason = models.CharField(max_length=200, blank=True)
    # The earliest moment this account's budget lets any call out (the minute or the day was spent
    # when a claim last looked). The beat sweep lists only accounts past it (by index), so accounts
    # that cannot send yet cost it nothing; a claim that finds budget again never reads it.
    send_not_before = models.DateTimeField(default=long_ago, editable=False)
    # The EV callback address carries a secret. Only its hash is looked up (a copy of the database, or a
    # log of its queries, does not give the address away); the secret itself is encrypted like the token,
    # because it must be sent to SolaX with every pileCmd (fleet.calls.callback_url).
    callback_secret_hash = models.CharField(max_length=64, unique=True, editable=False)
    callback_secret_ciphertext = models.TextField(editable=False)
    created = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "name"], name="account_name_per_org")]
        indexes = [models.Index(fields=["send_not_before"], name="account_send_not_before")]
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
        """Store `token` encrypted, with its keyed digest; only its last four digits stay readable."""
        self.token_ciphertext = crypto.encrypt(token)
        self.token_digest = crypto.token_digest(token)
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
    def token_readable(self) -> bool:
        """True when TOKEN_ENCRYPTION_KEYS open the stored token (the pipeline sends nothing otherwise)."""
        return crypto.can_decrypt(self.token_ciphertext)

    @property
    def token_problem(self) -> str:
        """What the pages say about the stored token when the keys cannot open it, else ""."""
        return "" if self.token_readable else TOKEN_UNREADABLE_REASON

    @property
    def minute_limit(self) -> int:
        """calls_per_minute, held to SOLAX_MAX_CALLS_PER_MINUTE whatever the row says."""
        return max(1, min(self.calls_per_minute, settings.SOLAX_MAX_CALLS_PER_MINUTE))

    @property
    def day_limit(self) -> int:
        """calls_per_day, held to SOLAX_MAX_CALLS_PER_DAY whatever the row says."""
        return max(1, min(self.calls_per_day, settings.SOLAX_MAX_CALLS_PER_DAY))

    @property
    def masked_token(self) -> str:
        return f"••••{self.token_last4}" if self.token_last4 else "(none)"

    @property
    def callback_url(self) -> str:
        """The account's EV callback address. Its path is a secret: it is added to pile_cmd at send
        time and never stored in the ledger, which every member of the organization can read."""
        return f"{settings.PUBLIC_BASE_URL.rstrip('/')}/solax/callback/{self.get_callback_secret()}/"

    @property
    def tzinfo(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)

    def is_paused(self, now=None) -> bool:  # type: ignore[no-untyped-def]
        now = now or dj_timezone.now()
        return self.paused_until is not None and self.paused_until > now


class InvitationState(models.TextChoices):
    PENDING = "pending", "Pending"
    ACCEPTED = "accepted", "Accepted"
    REVOKED = "revoked", "Revoked"
    EXPIRED = "expired", "Expired"


class Invitation(models.Model):
    """A one-time link with which a person joins an organization with a role, by their own consent.

    Only a SHA-256 of the link's random token is stored (the token has 256 bits, so a plain hash is
    enough). A pending invitation has neither `accepted_at` nor `revoked_at` and `expires_at` is
    ahead; accepting sets `accepted_at` with a conditional UPDATE, so that one person wins.
    """

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organization = models.ForeignKey(Organization, models.CASCADE, related_name="invitations")
    email = models.EmailField(blank=True)
    username = models.CharField(max_length=150, blank=True, help_text="Suggested username for a new person.")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.VIEWER)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True, related_name="+")
    created = models.DateTimeField(default=dj_timezone.now)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True,
                                    related_name="+")
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]
        indexes = [models.Index(fields=["organization", "-created"], name="invitation_org_created")]

    def __str__(self) -> str:
        return f"Invitation of {self.email or self.username or 'someone'} to {self.organization} ({self.role})"

    def state(self, now: datetime | None = None) -> InvitationState:
        """Return what became of the invitation, as of `now`."""
        if self.accepted_at is not None:
            return InvitationState.ACCEPTED
        if self.revoked_at is not None:
            return InvitationState.REVOKED
        if self.expires_at <= (now or dj_timezone.now()):
            return InvitationState.EXPIRED
        return InvitationState.PENDING

    @property
    def current_state(self) -> InvitationState:
        return self.state()
