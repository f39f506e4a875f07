"""``Idempotency-Key``: a retried API request returns what the first one created, once per key.

``once_per_key`` runs the work inside a transaction that first locks the organization row (PostgreSQL
``SELECT ... FOR UPDATE``; SQLite serialises writers anyway), so two concurrent requests with one key run
one after the other and the second sees the first's row. The key is kept with the SHA-256 of the
request body: the same key with another body is a client bug (``Conflict``), not a retry.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from fleet.models import ApiKey, IdempotencyKey, Organization

KEEP = timedelta(hours=24)  # a retry later than this creates anew
MAX_KEY_LENGTH = 200


class Replay(Exception):
    """The key was used with the same body: ``code`` is what that request created."""

    def __init__(self, code: uuid.UUID) -> None:
        super().__init__(str(code))
        self.code = code


class Conflict(Exception):
    """The key was used with another body."""


def body_hash(body: Any) -> str:
    """The SHA-256 of a JSON-able body, independent of key order and spacing."""
    text = json.dumps(body, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


class Slot:
    """Where the work records what it created: ``done(code)``."""

    def __init__(self) -> None:
        self.code: uuid.UUID | None = None

    def done(self, code: uuid.UUID) -> None:
        self.code = code


@contextmanager
def once_per_key(organization: Organization, purpose: str, key: str, digest: str, *,
                 api_key: ApiKey | None = None) -> Iterator[Slot]:
    """Run the body once per (organization, purpose, key) within KEEP. Raises Replay (same body) or
    Conflict (another body) before the work when the key was used; records the key with the work's
    result in the work's transaction, so a failed request leaves the key unused."""
    now = timezone.now()
    with transaction.atomic():
        Organization.objects.select_for_update().filter(pk=organization.pk).first()
        IdempotencyKey.objects.filter(organization=organization, created__lt=now - KEEP).delete()
        used = IdempotencyKey.objects.filter(organization=organization, purpose=purpose, key=key).first()
        if used is not None:
            if used.body_hash != digest:
                raise Conflict(key)
            raise Replay(used.result_code)
        slot = Slot()
        yield slot
        if slot.code is not None:
            IdempotencyKey.objects.create(organization=organization, purpose=purpose, key=key, body_hash=digest,
                                          result_code=slot.code, api_key=api_key, created=now)
