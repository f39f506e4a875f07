"""Invitations: people join an organization by their own consent, through a one-time link.

An admin creates an invitation (an email and/or a suggested username, and a role) and gets the
link once; only a hash of its token is stored. Whoever opens the link accepts it, logged in as an
existing user or by creating a new one. Nothing here tells the admin whether a username exists.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import smtplib
from datetime import timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.contrib.auth.forms import UserCreationForm
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from fleet.models import Invitation, InvitationState, Membership, Organization

if TYPE_CHECKING:
    from django.contrib.auth.models import User

log = logging.getLogger(__name__)

TOKEN_BYTES = 32


class InvitationUnusable(Exception):
    """The link is unknown (`state` None: 404) or no longer usable (`state` says why: 410)."""

    def __init__(self, state: InvitationState | None) -> None:
        super().__init__(state or "unknown")
        self.state = state


class AlreadyMember(Exception):
    """The user already belongs to the invitation's organization (the invitation stays pending)."""


class UsernameTaken(Exception):
    """Someone took the username between the form's check and the insert."""


def hash_token(token: str) -> str:
    """Return the stored form of an invitation token: its SHA-256, hex."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def create(organization: Organization, created_by: User | None, *, email: str, username: str,
           role: str) -> tuple[Invitation, str]:
    """Create a pending invitation; return it and its token, which exists nowhere else afterwards."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    invitation = Invitation.objects.create(
        organization=organization, created_by=created_by, email=email, username=username, role=role,
        token_hash=hash_token(token), expires_at=timezone.now() + timedelta(days=settings.INVITATION_DAYS))
    return invitation, token


def link(token: str) -> str:
    """Return the absolute URL of the accept page for `token`."""
    return settings.PUBLIC_BASE_URL + reverse("fleet-invitation-accept", args=[token])


def send(invitation: Invitation, token: str) -> bool:
    """Mail the link to the invitation's address when email is configured; return True if it went.

    A mail server that refuses is logged (without the link) and reported to the admin, who can
    still pass the link on by hand.
    """
    if not (settings.EMAIL_ENABLED and invitation.email):
        return False
    org = invitation.organization
    body = (f"You have been invited to join {org.name} on solax-fleet as {invitation.get_role_display().lower()}.\n\n"
            f"Open this link to accept (it works once, until {invitation.expires_at:%Y-%m-%d %H:%M} UTC):\n"
            f"{link(token)}\n\nIf you did not expect this, ignore this message.\n")
    try:
        send_mail(f"Invitation to {org.name} on solax-fleet", body, None, [invitation.email])
    except (OSError, smtplib.SMTPException) as exc:
        log.warning("invitation %s: mail not sent: %s", invitation.code, type(exc).__name__)
        return False
    return True


def lookup(token: str) -> Invitation:
    """Return the pending invitation for `token`, or raise InvitationUnusable."""
    invitation = Invitation.objects.select_related("organization").filter(token_hash=hash_token(token)).first()
    if invitation is None:
        raise InvitationUnusable(None)
    state = invitation.state()
    if state != InvitationState.PENDING:
        raise InvitationUnusable(state)
    return invitation


def _claim(invitation: Invitation) -> None:
    """Mark the invitation accepted if it still is pending, or raise InvitationUnusable.

    A conditional UPDATE: of two people accepting at once, the second waits for the first's row lock
    and then finds nothing pending."""
    now = timezone.now()
    claimed = Invitation.objects.filter(pk=invitation.pk, accepted_at__isnull=True, revoked_at__isnull=True,
                                        expires_at__gt=now).update(accepted_at=now)
    if claimed != 1:
        invitation.refresh_from_db()
        raise InvitationUnusable(invitation.state(now))


def _join(invitation: Invitation, user: User) -> Membership:
    membership = Membership.objects.create(organization=invitation.organization, user=user, role=invitation.role)
    Invitation.objects.filter(pk=invitation.pk).update(accepted_by=user)
    invitation.refresh_from_db()
    return membership


def accept_as(invitation: Invitation, user: User) -> Membership:
    """Make the logged-in `user` a member with the invitation's role; return the membership.

    Raises AlreadyMember (the invitation stays pending, for the person it was meant for) or
    InvitationUnusable when someone else used it first."""
    if Membership.objects.filter(organization=invitation.organization, user=user).exists():
        raise AlreadyMember
    try:
        with transaction.atomic():
            _claim(invitation)
            return _join(invitation, user)
    except IntegrityError:  # the same user joined through another link a moment ago
        raise AlreadyMember


def accept_as_new_user(invitation: Invitation, form: UserCreationForm) -> Membership:
    """Create the user from a valid `form` and make them a member; return the membership.

    Raises UsernameTaken or InvitationUnusable; either way nothing is created and the invitation
    is as it was."""
    try:
        with transaction.atomic():
            _claim(invitation)
            user = form.save()
            return _join(invitation, user)
    except IntegrityError:
        raise UsernameTaken


def revoke(invitation: Invitation) -> bool:
    """Withdraw a pending invitation; return False when it was no longer pending."""
    now = timezone.now()
    done = Invitation.objects.filter(pk=invitation.pk, accepted_at__isnull=True, revoked_at__isnull=True).update(
        revoked_at=now) == 1
    invitation.refresh_from_db()
    return done
