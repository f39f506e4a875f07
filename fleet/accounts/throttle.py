"""Throttle for failed logins: per username and per client address, counted in the cache."""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.core.cache import cache


def _keys(username: str, address: str) -> list[str]:
    # Hash the username so that the cache never holds what people typed.
    user_hash = hashlib.sha256(username.strip().lower().encode()).hexdigest()[:32]
    return [f"login-fail:u:{user_hash}", f"login-fail:a:{address}"]


def is_locked(username: str, address: str) -> bool:
    """Return True while the username or the address has too many recent failures."""
    limit = settings.LOGIN_FAILURE_LIMIT
    # The address gets more room than one username: several people may share an office NAT.
    counts = [cache.get(key, 0) for key in _keys(username, address)]
    return counts[0] >= limit or counts[1] >= limit * 4


def record_failure(username: str, address: str) -> None:
    for key in _keys(username, address):
        if not cache.add(key, 1, settings.LOGIN_FAILURE_WINDOW):
            try:
                cache.incr(key)
            except ValueError:  # expired between add and incr
                cache.set(key, 1, settings.LOGIN_FAILURE_WINDOW)


def clear(username: str, address: str) -> None:
    cache.delete(_keys(username, address)[0])
