"""Who made a change through the API, and the hook an audit log listens to.

Every change the API makes (a command sent, a group created, renamed or deleted, a member added or
removed) is written to the audit log (``fleet.accounts.audit``) with the key as its actor, and sends
``api_changed`` after the service accepted it, for any other listener.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.dispatch import Signal
from django.http import HttpRequest

from fleet.accounts import audit
from fleet.accounts.access import api_key_of
from fleet.accounts.throttle import client_address
from fleet.models import ApiKey

# kwargs: actor (Actor), action ("group.create", ...), object_kind, object_code, before, after (dicts; never a secret)
api_changed = Signal()


@dataclass(frozen=True)
class Actor:
    """An API key and the address its request came from."""

    key: ApiKey
    ip: str | None

    @property
    def label(self) -> str:
        return f"API key {self.key.name}"


def actor_of(request: HttpRequest) -> Actor:
    key = api_key_of(request)
    assert key is not None, "only authenticated API requests have an actor"
    address = client_address(request)
    return Actor(key, address if address != "unknown" else None)


def changed(request: HttpRequest, action: str, object_kind: str, object_code: Any, *,
            before: dict[str, Any] | None = None, after: dict[str, Any] | None = None) -> None:
    """Record in the audit log what the request's key changed, and tell the listeners."""
    actor = actor_of(request)
    before, after = before or {}, after or {}
    changes = {field: [before.get(field), after.get(field)] for field in sorted({*before, *after})
               if before.get(field) != after.get(field)}
    name = next((str(side[field]) for side in (after, before) for field in ("name", "label", "sn") if side.get(field)),
                "")
    audit.record(audit.Actor.api_key(actor.key.name, organization=actor.key.organization, address=actor.ip),
                 action, None, kind=object_kind, code=object_code or "", name=name, changes=changes)
    api_changed.send(sender=Actor, actor=actor, action=action, object_kind=object_kind,
                     object_code=str(object_code) if object_code is not None else None,
                     before=before, after=after)
