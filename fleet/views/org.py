"""Admin-only settings: SolaX accounts (tokens write-only) and members with their roles."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from fleet.access import get_for_org, require_admin
from fleet.forms import AddMemberForm, RoleForm, SolaxAccountForm
from fleet.models import Membership, Role, SolaxAccount
from fleet.views.base import HtmxHttpRequest


@require_GET
def settings_page(request: HtmxHttpRequest) -> HttpResponse:
    membership = require_admin(request)
    org = membership.organization
    return render(request, "fleet/settings.html", {
        "accounts": org.accounts.all(),
        "members": org.memberships.select_related("user").order_by("user__username"),
        "member_form": AddMemberForm(),
        "roles": Role.choices,
    })


@require_http_methods(["GET", "POST"])
def account_add(request: HtmxHttpRequest) -> HttpResponse:
    membership = require_admin(request)
    form = SolaxAccountForm(request.POST or None, instance=SolaxAccount(organization=membership.organization))
    if request.method == "POST" and form.is_valid():
        if SolaxAccount.objects.filter(organization=membership.organization,
                                       name=form.cleaned_data["name"]).exists():
            form.add_error("name", "Your organization already has an account with this name.")
        elif (added := form.save_unless_taken()) is not None:
            messages.success(request, f"SolaX account “{added.name}” added.")
            return redirect("fleet-settings")
    return render(request, "fleet/account_form.html", {"form": form, "account": None})


@require_http_methods(["GET", "POST"])
def account_edit(request: HtmxHttpRequest, code: str) -> HttpResponse:
    require_admin(request)
    account = get_for_org(SolaxAccount.objects.all(), request, code=code)
    form = SolaxAccountForm(request.POST or None, instance=account)
    if request.method == "POST" and form.is_valid():
        clash = SolaxAccount.objects.filter(organization=account.organization,
                                            name=form.cleaned_data["name"]).exclude(pk=account.pk)
        if clash.exists():
            form.add_error("name", "Your organization already has an account with this name.")
        elif form.save_unless_taken() is not None:
            messages.success(request, f"SolaX account “{account.name}” saved.")
            return redirect("fleet-settings")
    return render(request, "fleet/account_form.html", {"form": form, "account": account})


@require_POST
def member_add(request: HtmxHttpRequest) -> HttpResponse:
    membership = require_admin(request)
    org = membership.organization
    form = AddMemberForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        User = get_user_model()
        with transaction.atomic():
            user = User.objects.filter(username=data["username"]).first()
            if user is None:
                user = User.objects.create_user(data["username"], data["email"] or "", data["password"])
            if Membership.objects.filter(organization=org, user=user).exists():
                form.add_error("username", "Already a member of this organization.")
            else:
                Membership.objects.create(organization=org, user=user, role=data["role"])
                messages.success(request, f"{user.get_username()} added as {data['role']}.")
                return redirect("fleet-settings")
    return render(request, "fleet/settings.html", {
        "accounts": org.accounts.all(),
        "members": org.memberships.select_related("user").order_by("user__username"),
        "member_form": form,
        "roles": Role.choices,
    }, status=400)


def _other_admins(member: Membership) -> bool:
    return Membership.objects.filter(organization=member.organization, role=Role.ADMIN).exclude(
        pk=member.pk).exists()


@require_POST
def member_role(request: HtmxHttpRequest, code: str) -> HttpResponse:
    membership = require_admin(request)
    member = get_object_or_404(Membership, code=code, organization=membership.organization)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a role: viewer, operator or admin.")
    elif member.role == Role.ADMIN and form.cleaned_data["role"] != Role.ADMIN and not _other_admins(member):
        messages.error(request, "The organization needs at least one admin.")
    else:
        member.role = form.cleaned_data["role"]
        member.save(update_fields=["role"])
        messages.success(request, f"{member.user} is now {member.role}.")
    return redirect("fleet-settings")


@require_POST
def member_remove(request: HtmxHttpRequest, code: str) -> HttpResponse:
    membership = require_admin(request)
    member = get_object_or_404(Membership, code=code, organization=membership.organization)
    if member.role == Role.ADMIN and not _other_admins(member):
        messages.error(request, "The organization needs at least one admin.")
    else:
        member.delete()
        messages.success(request, f"{member.user} removed from {member.organization}.")
    return redirect("fleet-settings")
