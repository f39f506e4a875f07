"""A confirmation sends once: one-time keys for cost plans and write forms.

A view ``issue``s a key when it shows a plan or a write form (a row: unique, expiring, for this user in
this organization and for one purpose) and renders it as the hidden field ``once``. The view that
receives the form does its work inside ``claim``: the key is consumed by a conditional UPDATE in the
same transaction that creates the command or queues the call, so that

- a second submit of the same form (a double click, a browser retry, a second tab showing the same
  plan) finds the key used and is sent to what the first submit created (``AlreadyDone``);
- a key that is expired, of another user or organization, or for another purpose is refused with a
  clear message and changes nothing (``Refused``);
- with ``identical=`` a request whose fingerprint (target and action) was sent in the organization
  within ``ONCE_IDENTICAL_WINDOW_SECONDS`` by any key is stopped (``Identical``: "sent N s ago by X")
  until the form comes back with the second confirmation ``IDENTICAL_FIELD``.

Consuming locks the organization row first, so two submits of one organization's protected forms
run one after the other (PostgreSQL ``SELECT ... FOR UPDATE``; SQLite's IMMEDIATE transactions
serialise every writer anyway): the second always sees what the first did.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils import timezone
from django_htmx.http import HttpResponseClientRedirect

from fleet.accounts.access import current_membership
from fleet.models import OnceKey, Organization

FIELD = "once"
IDENTICAL_FIELD = "confirm_identical"
# Keep used keys a while after they expire: a late retry still finds what it did.
KEEP_AFTER_EXPIRY = timedelta(days=1)


class OnceError(Exception):
    """Base of what ``claim`` raises instead of letting the work happen."""


class Refused(OnceError):
    """The key cannot be used: ``message`` says why, for the page."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class AlreadyDone(OnceError):
    """The key was consumed by an earlier submit of the same form, whose result is at ``url``."""

    def __init__(self, url: str, used_at: datetime) -> None:
        super().__init__(url)
        self.url = url
        self.used_at = used_at


@dataclass(frozen=True)
class Previous:
    """The identical request sent recently: by whom, how long ago, and where it is shown."""

    username: str
    seconds_ago: int
    url: str
    mine: bool

    @property
    def message(self) -> str:
        who = "you" if self.mine else self.username
        return f"An identical command was sent {self.seconds_ago} s ago by {who}."


class Identical(OnceError):
    """An identical request went out recently; the form must come back confirmed again."""

    def __init__(self, previous: Previous) -> None:
        super().__init__(previous.message)
        self.previous = previous


def fingerprint(*parts: Any) -> str:
    """Return a stable hash of JSON-able parts (lists of SNs should be sorted by the caller)."""
    text = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def command_fingerprint(account: Any, target_kind: str, group: Any, sns: Any, action: dict[str, Any]) -> str:
    """The fingerprint of a control command: same account, target and action means identical,
    whichever form sent it (new command, retry, device-side windows)."""
    return fingerprint("command", str(account.code), str(target_kind), str(group.code) if group else "",
                       sorted(str(sn) for sn in sns or ()), action)


def posted_fingerprint(request: HttpRequest) -> str:
    """The fingerprint of a write form: every posted value but the CSRF token and the key fields."""
    skip = {"csrfmiddlewaretoken", FIELD, IDENTICAL_FIELD}
    return fingerprint(sorted((k, v) for k, values in request.POST.lists() if k not in skip for v in values))


def _ttl() -> timedelta:
    return timedelta(seconds=settings.ONCE_KEY_SECONDS)


def issue(request: HttpRequest, purpose: str, fingerprint: str = "") -> str:
    """Return a key for a form shown to this user now: an open key of the same user, organization,
    purpose and fingerprint with at least half its life left is reused (a page that polls, two tabs
    showing the same plan), else a new one is stored. Old keys are pruned on the way."""
    organization = current_membership(request).organization
    now = timezone.now()
    open_key = (OnceKey.objects.filter(organization=organization, user=request.user, purpose=purpose,  # type: ignore[misc]
                                       fingerprint=fingerprint, used_at__isnull=True,
                                       expires_at__gt=now + _ttl() / 2)
                .order_by("-expires_at").values_list("key", flat=True).first())
    if open_key is not None:
        return open_key
    OnceKey.objects.filter(expires_at__lt=now - KEEP_AFTER_EXPIRY).delete()
    key = secrets.token_urlsafe(32)
    OnceKey.objects.create(key=key, organization=organization, user=request.user, purpose=purpose,  # type: ignore[misc]
                           fingerprint=fingerprint, created=now, expires_at=now + _ttl())
    return key


def _previous(row: OnceKey, fingerprint: str, now: datetime) -> Previous | None:
    window = timedelta(seconds=settings.ONCE_IDENTICAL_WINDOW_SECONDS)
    earlier = (OnceKey.objects.filter(organization_id=row.organization_id, fingerprint=fingerprint,
                                      used_at__gte=now - window)
               .exclude(pk=row.pk).select_related("user").order_by("-used_at").first())
    if earlier is None or earlier.used_at is None:
        return None
    return Previous(username=earlier.user.get_username(), seconds_ago=int((now - earlier.used_at).total_seconds()),
                    url=earlier.result_url, mine=earlier.user_id == row.user_id)


class Claim:
    """A consumed key, while the work is done: ``done(url)`` records where its result is shown."""

    def __init__(self, row: OnceKey) -> None:
        self.row = row
        self.url = ""

    def done(self, url: str) -> None:
        self.url = url


@contextmanager
def claim(request: HttpRequest, purpose: str, fingerprint: str = "", *, identical: bool = False) -> Iterator[Claim]:
    """Consume the key posted in ``FIELD`` for ``purpose`` and run the block in the same transaction.

    Raises ``Refused`` (missing, foreign, expired, other purpose, or a form that changed since its plan
    was shown), ``AlreadyDone`` (used before by the same request) or, with ``identical``, ``Identical``
    unless ``IDENTICAL_FIELD`` was posted; in every such case nothing is written. An exception in
    the block rolls the consumption back with the work: the form can be sent again.
    """
    organization = current_membership(request).organization
    key = request.POST.get(FIELD, "")
    with transaction.atomic():
        # Serialise the organization's protected submits: the second sees the first's key and command.
        Organization.objects.select_for_update().filter(pk=organization.pk).values_list("pk", flat=True).first()
        now = timezone.now()
        row = (OnceKey.objects.filter(key=key, organization=organization, user=request.user).first()  # type: ignore[misc]
               if key and len(key) <= 64 else None)
        if row is None or row.purpose != purpose:
            raise Refused("This form was not issued to you for this page (or it is from another organization): "
                          "nothing was done. Check the page and submit it again.")
        if row.used_at is not None:
            if row.fingerprint == fingerprint:
                raise AlreadyDone(row.result_url or "/", row.used_at)
            raise Refused("This form was already used for another request: nothing more was done. "
                          "Check the page and submit it again.")
        if row.expires_at <= now:
            minutes = max(1, settings.ONCE_KEY_SECONDS // 60)
            raise Refused(f"This form expired (it is valid for {minutes} minutes): nothing was done. "
                          "Check the page and submit it again.")
        if row.fingerprint and row.fingerprint != fingerprint:
            raise Refused("The form changed after its plan was shown: nothing was done. Check the new plan "
                          "and confirm it.")
        if identical and request.POST.get(IDENTICAL_FIELD) != "yes":
            previous = _previous(row, fingerprint, now)
            if previous is not None:
                raise Identical(previous)
        consumed = OnceKey.objects.filter(pk=row.pk, used_at__isnull=True).update(used_at=now, fingerprint=fingerprint)
        if consumed != 1:  # cannot happen under the lock; never do the work twice if it does
            raise Refused("This form was submitted twice at once: nothing more was done.")
        result = Claim(row)
        yield result
        OnceKey.objects.filter(pk=row.pk).update(result_url=result.url[:300])


def already_done(request: HttpRequest, purpose: str, fingerprint: str = "") -> AlreadyDone | None:
    """The earlier submit of this very form, if the posted key was used by it; else None. A view asks
    before it validates a form that checks for duplicates (a name, an SN), so that a double click's
    second submit is sent to what the first created rather than told that it exists already."""
    key = request.POST.get(FIELD, "")
    if not key or len(key) > 64:
        return None
    row = (OnceKey.objects.filter(key=key, organization=current_membership(request).organization,
                                  user=request.user, purpose=purpose, fingerprint=fingerprint,  # type: ignore[misc]
                                  used_at__isnull=False)
           .only("result_url", "used_at").first())
    if row is None or row.used_at is None:
        return None
    return AlreadyDone(row.result_url or "/", row.used_at)


def replay(request: HttpRequest, done: AlreadyDone, text: str = "nothing was sent twice.") -> HttpResponse:
    """The answer to a second submit: what the first one did, and no second request. ``text`` says
    what the operator should know of it (a secret shown once was shown to the first submit only)."""
    seconds = int((timezone.now() - done.used_at).total_seconds())
    messages.info(request, f"This was already submitted {seconds} s ago: {text}")
    if getattr(request, "htmx", False):
        return HttpResponseClientRedirect(done.url)
    return redirect(done.url)
