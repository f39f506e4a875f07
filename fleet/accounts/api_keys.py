"""API keys: created (the key shown once, only its SHA-256 kept), looked up when presented, revoked.

A key reads ``sfk_<prefix>_<secret>``: the prefix (8 random characters) is public and finds the row,
the secret is 32 random bytes; the SHA-256 of the whole key is compared in constant time.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from fleet.crypto import secret_hash
from fleet.models import ApiKey, Organization

KEY_START = "sfk_"
# last_used_at is written at most this often, so that reading through the API is not a write per request.
LAST_USED_PRECISION = timedelta(minutes=1)


class KeyNameTaken(Exception):
    """An active key of the organization has this name already."""


def create(organization: Organization, name: str, scope: str, *, user: Any = None) -> tuple[ApiKey, str]:
    """Store a new key and return it with its plaintext, which is never stored and never shown again.
    Raises KeyNameTaken when an active key has the same name."""
    prefix = secrets.token_hex(4)
    key = f"{KEY_START}{prefix}_{secrets.token_urlsafe(32)}"
    try:
        with transaction.atomic():
            row = ApiKey.objects.create(organization=organization, name=name, scope=scope, prefix=prefix,
                                        key_hash=secret_hash(key),
                                        created_by=user if user is not None and user.is_authenticated else None)
    except IntegrityError:
        raise KeyNameTaken(name) from None
    return row, key


def authenticate(presented: str) -> ApiKey | None:
    """Return the active key ``presented`` is, with its organization (one query; one more a minute to
    record its use), or None for anything else: malformed, unknown, wrong secret, revoked."""
    if not presented.startswith(KEY_START) or len(presented) > 100:
        return None
    prefix, _, rest = presented[len(KEY_START):].partition("_")
    if not rest or len(prefix) != 8:
        return None
    row = ApiKey.objects.select_related("organization").filter(prefix=prefix, revoked_at=None).first()
    if row is None or not hmac.compare_digest(row.key_hash, secret_hash(presented)):
        return None
    now = timezone.now()
    if row.last_used_at is None or row.last_used_at < now - LAST_USED_PRECISION:
        ApiKey.objects.filter(pk=row.pk).update(last_used_at=now)
        row.last_used_at = now
    return row


def revoke(key: ApiKey, *, user: Any = None) -> bool:
    """Revoke ``key`` now (requests with it get 401 from then on); False if it was revoked already."""
    done = ApiKey.objects.filter(pk=key.pk, revoked_at=None).update(
        revoked_at=timezone.now(), revoked_by=user if user is not None and user.is_authenticated else None)
    key.refresh_from_db()
    return done == 1
