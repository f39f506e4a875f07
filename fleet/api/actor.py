"""Who made a change through the API, and the hook an audit log listens to.

Every change the API makes (a command sent, a group created, renamed or deleted, a member added or
removed) sends ``api_changed`` after the service accepted it. The audit log (issue 16, item 4) connects
a receiver in its AppConfig.ready; until then nobody listens and nothing more happens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.dispatch import Signal
from django.http import HttpRequest

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
    """Tell the listeners (the audit log) what the request's key changed."""
    api_changed.send(sender=Actor, actor=actor_of(request), action=action, object_kind=object_kind,
                     object_code=str(object_code) if object_code is not None else None,
                     before=before or {}, after=after or {})
