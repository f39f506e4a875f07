"""The accept page of an invitation: the one page besides login that needs no login, and only with
a token in its URL."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_not_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from fleet.accounts import audit, invitations, throttle
from fleet.accounts.access import SESSION_KEY
from fleet.accounts.invitation_forms import InvitationSignupForm, User
from fleet.models import Invitation, InvitationState, Membership
from fleet.views.base import HtmxHttpRequest

_GONE = {
    InvitationState.ACCEPTED: "This invitation has already been used.",
    InvitationState.REVOKED: "This invitation was withdrawn by an admin of the organization.",
    InvitationState.EXPIRED: "This invitation has expired.",
}


def _unusable(request: HtmxHttpRequest, exc: invitations.InvitationUnusable) -> HttpResponse:
    if exc.state is None:
        message, status = "This invitation link is not valid. Check that you copied all of it.", 404
    else:
        message, status = _GONE[exc.state], 410
    response = render(request, "fleet/invitation_unusable.html", {"message": message}, status=status)
    response["Cache-Control"] = "private, no-store"
    return response


def _joined(request: HtmxHttpRequest, membership: Membership, invitation: Invitation) -> HttpResponse:
    """The person (logged in by now) joined: log it, make the organization theirs, greet them."""
    audit.record(request, "membership.add", membership, organization=membership.organization,
                 changes={"role": [None, membership.role], "invitation": [None, str(invitation.code)]})
    request.session[SESSION_KEY] = str(membership.organization.code)
    messages.success(request, f"Welcome to {membership.organization.name}: you joined as "
                              f"{membership.get_role_display().lower()}.")
    return redirect("fleet-dashboard")


def _page(request: HtmxHttpRequest, invitation: Invitation, form: InvitationSignupForm | None,
          status: int = 200, **extra: object) -> HttpResponse:
    response = render(request, "fleet/invitation_accept.html",
                      {"invitation": invitation, "form": form, **extra}, status=status)
    response["Cache-Control"] = "private, no-store"
    return response


def _signup_form(request: HtmxHttpRequest, invitation: Invitation) -> InvitationSignupForm:
    # The invitation's address becomes the user's, so the password rules see it too.
    instance = User(email=invitation.email)
    if request.method == "POST":
        return InvitationSignupForm(request.POST, instance=instance)
    return InvitationSignupForm(initial={"username": invitation.username}, instance=instance)


@login_not_required
@require_http_methods(["GET", "POST"])
def invitation_accept(request: HtmxHttpRequest, token: str) -> HttpResponse:
    """Show the invitation; POST joins the logged-in user, or creates the new user and joins them."""
    try:
        invitation = invitations.lookup(token)
    except invitations.InvitationUnusable as exc:
        return _unusable(request, exc)

    if request.user.is_authenticated:
        already = Membership.objects.filter(organization=invitation.organization, user_id=request.user.pk).exists()
        if request.method == "GET" or already:
            return _page(request, invitation, None, status=409 if already and request.method == "POST" else 200,
                         already=already)
        try:
            membership = invitations.accept_as(invitation, request.user)  # type: ignore[arg-type]
        except invitations.InvitationUnusable as exc:
            return _unusable(request, exc)
        except invitations.AlreadyMember:
            return _page(request, invitation, None, status=409, already=True)
        return _joined(request, membership, invitation)

    form = _signup_form(request, invitation)
    if request.method == "GET":
        return _page(request, invitation, form)
    if not form.is_valid():
        return _page(request, invitation, form, status=400)
    try:
        membership = invitations.accept_as_new_user(invitation, form)
    except invitations.InvitationUnusable as exc:
        return _unusable(request, exc)
    except invitations.UsernameTaken:
        form.add_error("username", "A user with that username already exists.")
        return _page(request, invitation, form, status=400)
    user = membership.user
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    response = _joined(request, membership, invitation)
    throttle.set_device_cookie(response, user.get_username())
    return response
