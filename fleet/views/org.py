"""Admin-only settings: SolaX accounts (tokens write-only), members with their roles, invitations."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from fleet.accounts import audit, invitations
from fleet.accounts.access import get_for_org, require_admin
from fleet.accounts.forms import RoleForm, SafetyEnvelopeForm, SolaxAccountForm
from fleet.accounts.invitation_forms import InvitationForm
from fleet.models import Invitation, Membership, Organization, Role, SafetyEnvelope, SolaxAccount
from fleet.views.base import HtmxHttpRequest

INVITATIONS_SHOWN = 50


def _settings_context(org: Organization, invitation_form: InvitationForm | None = None) -> dict[str, object]:
    return {
        "accounts": org.accounts.all(),
        "members": org.memberships.select_related("user").order_by("user__username"),
        "invitation_form": invitation_form or InvitationForm(),
        "invitations": org.invitations.select_related("accepted_by", "created_by")[:INVITATIONS_SHOWN],
        "invitation_count": org.invitations.count(),
        "roles": Role.choices,
        "email_enabled": settings.EMAIL_ENABLED,
    }


@require_GET
def settings_page(request: HtmxHttpRequest) -> HttpResponse:
    membership = require_admin(request)
    return render(request, "fleet/settings.html", _settings_context(membership.organization))


@require_http_methods(["GET", "POST"])
def account_add(request: HtmxHttpRequest) -> HttpResponse:
    membership = require_admin(request)
    form = SolaxAccountForm(request.POST or None, instance=SolaxAccount(organization=membership.organization))
    if request.method == "POST" and form.is_valid():
        if SolaxAccount.objects.filter(organization=membership.organization,
                                       name=form.cleaned_data["name"]).exists():
            form.add_error("name", "Your organization already has an account with this name.")
        elif (added := form.save_unless_taken()) is not None:
            audit.record(request, "account.create", added, changes=audit.form_created(form))
            messages.success(request, f"SolaX account “{added.name}” added.")
            return redirect("fleet-settings")
    return render(request, "fleet/account_form.html", {"form": form, "account": None})


@require_http_methods(["GET", "POST"])
def account_edit(request: HtmxHttpRequest, code: uuid.UUID) -> HttpResponse:
    require_admin(request)
    account = get_for_org(SolaxAccount.objects.all(), request, code=code)
    form = SolaxAccountForm(request.POST or None, instance=account)
    if request.method == "POST" and form.is_valid():
        clash = SolaxAccount.objects.filter(organization=account.organization,
                                            name=form.cleaned_data["name"]).exclude(pk=account.pk)
        changes = audit.form_changes(form)  # before the save: the form's initial values are the stored ones
        if clash.exists():
            form.add_error("name", "Your organization already has an account with this name.")
        elif form.save_unless_taken() is not None:
            if changes:
                audit.record(request, "account.update", account, changes=changes)
            messages.success(request, f"SolaX account “{account.name}” saved.")
            return redirect("fleet-settings")
    return render(request, "fleet/account_form.html", {"form": form, "account": account})


@require_POST
def invitation_add(request: HtmxHttpRequest) -> HttpResponse:
    """Create an invitation and show its link, this once (only its hash is kept)."""
    membership = require_admin(request)
    org = membership.organization
    form = InvitationForm(request.POST)
    if not form.is_valid():
        return render(request, "fleet/settings.html", _settings_context(org, form), status=400)
    data = form.cleaned_data
    invitation, token = invitations.create(org, request.user, email=data["email"],  # type: ignore[arg-type]
                                           username=data["username"], role=data["role"])
    audit.record(request, "invitation.create", invitation, name=invitation.email or invitation.username,
                 changes={"email": [None, invitation.email], "username": [None, invitation.username],
                          "role": [None, invitation.role], "expires_at": [None, invitation.expires_at]})
    mailed = invitations.send(invitation, token)
    response = render(request, "fleet/invitation_created.html", {
        "invitation": invitation, "link": invitations.link(token), "mailed": mailed,
        "email_enabled": settings.EMAIL_ENABLED})
    response["Cache-Control"] = "private, no-store"
    return response


@require_http_methods(["GET", "POST"])
def invitation_revoke(request: HtmxHttpRequest, code: str) -> HttpResponse:
    """GET asks for confirmation; POST withdraws the invitation if it is still pending."""
    membership = require_admin(request)
    invitation = get_object_or_404(Invitation, code=code, organization=membership.organization)
    if request.method == "GET":
        return render(request, "fleet/invitation_revoke.html", {"invitation": invitation})
    if invitations.revoke(invitation):
        audit.record(request, "invitation.revoke", invitation, name=invitation.email or invitation.username,
                     changes={"state": ["pending", "revoked"]})
        messages.success(request, "Invitation revoked: its link no longer works.")
    else:
        messages.error(request, f"This invitation is {invitation.state().label.lower()}: nothing to revoke.")
    return redirect("fleet-settings")


def _other_admins(member: Membership) -> bool:
    return Membership.objects.filter(organization=member.organization, role=Role.ADMIN).exclude(
        pk=member.pk).exists()


@require_POST
def member_role(request: HtmxHttpRequest, code: uuid.UUID) -> HttpResponse:
    membership = require_admin(request)
    member = get_object_or_404(Membership, code=code, organization=membership.organization)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a role: viewer, operator or admin.")
    elif member.role == Role.ADMIN and form.cleaned_data["role"] != Role.ADMIN and not _other_admins(member):
        messages.error(request, "The organization needs at least one admin.")
    else:
        before = member.role
        member.role = form.cleaned_data["role"]
        member.save(update_fields=["role"])
        if before != member.role:
            audit.record(request, "membership.role", member, changes={"role": [before, member.role]})
        messages.success(request, f"{member.user} is now {member.role}.")
    return redirect("fleet-settings")


@require_POST
def member_remove(request: HtmxHttpRequest, code: uuid.UUID) -> HttpResponse:
    membership = require_admin(request)
    member = get_object_or_404(Membership, code=code, organization=membership.organization)
    if member.role == Role.ADMIN and not _other_admins(member):
        messages.error(request, "The organization needs at least one admin.")
    else:
        audit.record(request, "membership.remove", member, changes={"role": [member.role, None]})
        member.delete()
        messages.success(request, f"{member.user} removed from {member.organization}.")
    return redirect("fleet-settings")


@require_http_methods(["GET", "POST"])
def envelope_edit(request: HtmxHttpRequest) -> HttpResponse:
    """Admins set the organization's safety envelope, checked before any command is queued."""
    membership = require_admin(request)
    envelope = SafetyEnvelope.objects.filter(organization=membership.organization).first() or SafetyEnvelope(
        organization=membership.organization)
    form = SafetyEnvelopeForm(request.POST or None, instance=envelope)
    if request.method == "POST":
        if form.is_valid():
            creating = envelope.pk is None
            changes = audit.form_created(form) if creating else audit.form_changes(form)
            saved = form.save(commit=False)
            saved.updated = timezone.now()
            saved.save()
            if changes:
                audit.record(request, "safety_envelope.update", saved, name="safety envelope", changes=changes)
            messages.success(request, "Saved the safety envelope.")
            return redirect("fleet-settings")
        return render(request, "fleet/envelope.html", {"form": form}, status=400)
    return render(request, "fleet/envelope.html", {"form": form})
