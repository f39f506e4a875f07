"""Throttle for failed logins, counted in the shared cache (CACHE_URL), so that every web process
sees the same counts.

Three counters, each over LOGIN_FAILURE_WINDOW seconds, and what each may refuse:

- per (username, client address), limit LOGIN_FAILURE_LIMIT: the brute-force guard. One address
  gets a handful of guesses at one account, then that pair is refused.
- per client address, limit 4 x LOGIN_FAILURE_LIMIT over any usernames: an address spraying many
  usernames is refused. It only ever blocks that address (an office NAT shares it, hence the room).
- per username from all addresses, limit LOGIN_USERNAME_LIMIT (much higher): a distributed guess.
  It never locks the account itself: it refuses only clients that cannot show a *device cookie*
  for that user (a signed cookie a browser gets after logging in as that user, see OWASP's
  "Slow down online guessing attacks with device cookies"). The user's own browsers keep logging
  in during an attack; only new devices wait for the window to pass. Because one address adds at
  most LOGIN_FAILURE_LIMIT failures to the count, reaching it takes many addresses.

So an outsider cannot lock a user out cheaply: their failures only count against their own
address, and the per-username count, which needs many addresses, still lets the user's own
devices in. The client address is the one TRUSTED_PROXY_COUNT proxies saw (see `client_address`).
"""

from __future__ import annotations

import hashlib
import ipaddress
import unicodedata

from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse

DEVICE_COOKIE = "fleet_device"
DEVICE_COOKIE_AGE = 90 * 24 * 3600
_DEVICE_SALT = "fleet.throttle.device"


def client_address(request: HttpRequest | None) -> str:
    """Return the client's address as the trusted proxies saw it.

    With TRUSTED_PROXY_COUNT = n > 0, each of our n proxies appends the address it was connected
    from to X-Forwarded-For, so the n-th entry from the right is the one our outermost proxy saw;
    anything left of it was written by the client and is ignored. With 0 (no proxy), or when the
    header has fewer entries or an entry that is no address, REMOTE_ADDR is used.
    """
    if request is None:
        return "unknown"
    address = request.META.get("REMOTE_ADDR", "") or "unknown"
    count = settings.TRUSTED_PROXY_COUNT
    if count > 0:
        hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
        if len(hops) >= count:
            address = hops[-count]
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return request.META.get("REMOTE_ADDR", "") or "unknown"


def _bucket(address: str) -> str:
    """Return what failures from `address` are counted under: the address, or for IPv6 its /64,
    which one host usually owns whole (else a client could pick a fresh address per guess)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def _user_hash(username: str) -> str:
    # Hash the username so that the cache never holds what people typed; fold case and Unicode
    # forms so that "Ada" and "ＡＤＡ" share one counter.
    folded = unicodedata.normalize("NFKC", username.strip()).casefold()
    return hashlib.sha256(folded.encode()).hexdigest()[:32]


def _pair_key(username: str, address: str) -> str:
    return f"login-fail:p:{_user_hash(username)}:{_bucket(address)}"


def _address_key(address: str) -> str:
    return f"login-fail:a:{_bucket(address)}"


def _username_key(username: str) -> str:
    return f"login-fail:u:{_user_hash(username)}"


def has_device_cookie(request: HttpRequest | None, username: str) -> bool:
    """Return True when the request carries a valid device cookie for `username`."""
    if request is None:
        return False
    try:
        value = request.get_signed_cookie(DEVICE_COOKIE, salt=_DEVICE_SALT, max_age=DEVICE_COOKIE_AGE)
    except (KeyError, signing.BadSignature):
        return False
    return value == _user_hash(username)


def set_device_cookie(response: HttpResponse, username: str) -> None:
    """Mark the browser as one that has logged in as `username` (the cookie holds only a hash)."""
    response.set_signed_cookie(DEVICE_COOKIE, _user_hash(username), salt=_DEVICE_SALT, max_age=DEVICE_COOKIE_AGE,
                               secure=settings.SESSION_COOKIE_SECURE, httponly=True, samesite="Lax")


def is_locked(username: str, address: str, request: HttpRequest | None = None) -> bool:
    """Return True while this attempt must be refused (see the module docstring for which counter
    refuses whom)."""
    limit = settings.LOGIN_FAILURE_LIMIT
    counts = cache.get_many([_pair_key(username, address), _address_key(address), _username_key(username)])
    if counts.get(_pair_key(username, address), 0) >= limit:
        return True
    if counts.get(_address_key(address), 0) >= limit * 4:
        return True
    under_attack = counts.get(_username_key(username), 0) >= settings.LOGIN_USERNAME_LIMIT
    return under_attack and not has_device_cookie(request, username)


def _incr(key: str) -> None:
    if not cache.add(key, 1, settings.LOGIN_FAILURE_WINDOW):
        try:
            cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, settings.LOGIN_FAILURE_WINDOW)


def record_failure(username: str, address: str) -> None:
    for key in (_pair_key(username, address), _address_key(address), _username_key(username)):
        _incr(key)


def clear(username: str, address: str) -> None:
    """Forget this pair's failures after a successful login (the other counters run out by themselves)."""
    cache.delete(_pair_key(username, address))
