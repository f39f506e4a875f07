"""Who decides about a command: a person on the pages or an API key through the REST API. The notes a
decision leaves name the decider, and four eyes compare the approver with who asked.

An API key counts as itself and as the person who made it: it may approve a command asked by another
person or another key, never one asked by itself, by the person who made it, or through another key
that person made (they hold both). A person likewise may not approve through the pages what a key
they made asked for.
"""

from __future__ import annotations

from typing import Any

from fleet.models import ApiKey, Command


def name_of(user: Any, api_key: ApiKey | None) -> str:
    """The decider as a note names it: "API key trading bot", "alice", else "an operator"."""
    if api_key is not None:
        return f"API key {api_key.name}"
    return str(getattr(user, "username", "") or "an operator")


def _people(user: Any, api_key: ApiKey | None) -> set[int]:
    """The people behind a decider or an asker: the person, and the maker of the key."""
    people = {getattr(user, "pk", None), api_key.created_by_id if api_key is not None else None}
    return {pk for pk in people if pk is not None}


def same_asker(command: Command, user: Any, api_key: ApiKey | None) -> bool:
    """Whether the decider is the one who asked for ``command``: the same key, or the same person behind
    either (reads the asking key's maker: one query when the command came from the API)."""
    if api_key is not None and command.api_key_id == api_key.pk:
        return True
    asked = _people(None, command.api_key if command.api_key_id is not None else None)
    if command.created_by_id is not None:
        asked.add(command.created_by_id)
    return bool(asked & _people(user, api_key))
