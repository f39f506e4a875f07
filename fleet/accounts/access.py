"""Access checks every view calls first: organization scoping (404) and roles (403)."""

from __future__ import annotations

import uuid
import zoneinfo
from typing import TypeVar

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Model, OuterRef, QuerySet, Subquery
from django.http import Http404, HttpRequest
from django.utils import timezone

from fleet.models import (
    Alert,
    AlertState,
    ApiCall,
    ApiKey,
    Channel,
    Charger,
    Command,
    DayPlan,
    Group,
    Inverter,
    Membership,
    PriceRule,
    PriceZone,
    Role,
    SavedSelection,
    Schedule,
    SolaxAccount,
    SyncRun,
)

SESSION_KEY = "fleet_org"
_M = TypeVar("_M", bound=Model)


API_KEY_ATTRIBUTE = "fleet_api_key"  # set by the REST API's authentication (fleet.api.core)


def api_key_of(request: HttpRequest) -> ApiKey | None:
    """Return the API key a request of the REST API was authenticated with, else None."""
    return getattr(request, API_KEY_ATTRIBUTE, None)


def current_membership(request: HttpRequest) -> Membership:
    """Return the user's membership in the organization they are working in.

    The organization is the one chosen in the session, else the user's first. A user with no
    membership gets a 403: they may log in but see nothing. A request of the REST API acts for its
    key: in the key's organization, with the role of its scope (read: viewer, operate: operator), so
    every lookup and role check below applies to it unchanged. That membership is never saved.
    """
    cached = getattr(request, "_fleet_membership", None)
    if cached is not None:
        return cached
    key = api_key_of(request)
    if key is not None:
        acting = Membership(organization=key.organization, role=key.role)
        request._fleet_membership = acting  # type: ignore[attr-defined]
        return acting
    memberships = Membership.objects.filter(user=request.user)  # type: ignore[misc]
    # The nav's badge of open alerts and the organization's first account's zone (the default zone)
    # ride along as correlated subqueries: no query of their own per page.
    open_alerts = (Alert.objects.filter(organization=OuterRef("organization"), state=AlertState.OPEN)
                   .order_by().values("organization").annotate(n=Count("pk")).values("n"))
    first_zone = SolaxAccount.objects.filter(organization=OuterRef("organization")).order_by("name")
    memberships = memberships.select_related("organization").annotate(
        open_alerts=Subquery(open_alerts), default_zone=Subquery(first_zone.values("timezone")[:1]))
    chosen = request.session.get(SESSION_KEY)
    membership = None
    if chosen:
        membership = memberships.filter(organization__code=chosen).first()
    if membership is None:
        membership = memberships.order_by("organization__name").first()
    if membership is None:
        raise PermissionDenied("You are not a member of any organization yet. Ask an admin to add you.")
    request._fleet_membership = membership  # type: ignore[attr-defined]
    activate_zone(membership)
    return membership


def zone_name(membership: Membership) -> str:
    """The zone this person reads times in: their own choice, else their organization's first
    account's, else TIME_ZONE."""
    return membership.timezone or getattr(membership, "default_zone", None) or settings.TIME_ZONE


def activate_zone(membership: Membership) -> None:
    """Show every time of this request in the person's zone (fleet.middleware.ResetZone ends it)."""
    try:
        timezone.activate(zoneinfo.ZoneInfo(zone_name(membership)))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        timezone.activate(zoneinfo.ZoneInfo(settings.TIME_ZONE))


def require_role(request: HttpRequest, role: str) -> Membership:
    """Return the current membership, or raise PermissionDenied if its role is below `role`."""
    membership = current_membership(request)
    if not membership.has_role(role):
        if api_key_of(request) is not None:
            raise PermissionDenied("This API key is read-only: this needs a key with the operate scope.")
        raise PermissionDenied(f"This needs the {Role(role).label.lower()} role.")
    return membership


def require_operator(request: HttpRequest) -> Membership:
    return require_role(request, Role.OPERATOR)


def require_admin(request: HttpRequest) -> Membership:
    return require_role(request, Role.ADMIN)


def get_for_org(queryset, request: HttpRequest, **lookup):  # type: ignore[no-untyped-def]
    """Return the one object of `queryset` matching `lookup` in the current organization, or 404."""
    membership = current_membership(request)
    obj = queryset.filter(organization=membership.organization, **lookup).first()
    if obj is None:
        raise Http404("No such object in your organization.")
    return obj


def account_choice(request: HttpRequest) -> tuple[list[SolaxAccount], SolaxAccount | None]:
    """Return the organization's accounts (for the picker) and the one chosen with ``account``
    (GET or POST), else the first; 404 for a code that is malformed or of another organization."""
    accounts = list(current_membership(request).organization.accounts.order_by("name"))
    code = request.POST.get("account") or request.GET.get("account")
    if not code:
        return accounts, accounts[0] if accounts else None
    try:
        wanted = uuid.UUID(str(code))
    except ValueError:
        raise Http404("No such account in your organization.") from None
    for account in accounts:
        if account.code == wanted:
            return accounts, account
    raise Http404("No such account in your organization.")


def account_or_404(request: HttpRequest) -> tuple[list[SolaxAccount], SolaxAccount]:
    """Like ``account_choice``, for pages that need an account: 404 when the organization has none."""
    accounts, account = account_choice(request)
    if account is None:
        raise Http404("No SolaX account yet.")
    return accounts, account


def parse_code(value: object) -> uuid.UUID:
    """Return ``value`` as a UUID code, or 404: a malformed code names nothing."""
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except ValueError:
        raise Http404("No such object in your organization.") from None


# Every object a URL or a form names, looked up within the user's organization (else 404) -------

def _in_organization(request: HttpRequest, queryset: QuerySet[_M], code: object, what: str) -> _M:
    organization = current_membership(request).organization
    obj = queryset.filter(code=parse_code(code), account__organization=organization).first()
    if obj is None:
        raise Http404(f"No such {what} in your organization.")
    return obj


def account_for_user(request: HttpRequest, code: object) -> SolaxAccount:
    organization = current_membership(request).organization
    account = SolaxAccount.objects.filter(code=parse_code(code), organization=organization).first()
    if account is None:
        raise Http404("No such account in your organization.")
    return account


def call_for_user(request: HttpRequest, code: object) -> ApiCall:
    """A call to SolaX of the organization (what a write became: queued, sent, answered)."""
    return _in_organization(request, ApiCall.objects.select_related("account"), code, "call")


def group_for_user(request: HttpRequest, code: object) -> Group:
    return _in_organization(request, Group.objects.select_related("account"), code, "group")


def member_for_user(request: HttpRequest, code: object) -> Inverter:
    """A group member (an inverter row) that is still in the cloud."""
    members = Inverter.objects.select_related("group", "account").filter(removed=False)
    return _in_organization(request, members, code, "member")


def inverter_for_user(request: HttpRequest, code: object) -> Inverter:
    """An inverter row (a group member) for its device page; a row removed from the cloud is still
    shown, for its history."""
    return _in_organization(request, Inverter.objects.select_related("group", "account"), code, "inverter")


def charger_for_user(request: HttpRequest, code: object) -> Charger:
    return _in_organization(request, Charger.objects.select_related("account"), code, "charger")


def command_for_user(request: HttpRequest, code: object, *, without_sns: bool = False) -> Command:
    """The command; ``without_sns`` leaves out the SN lists (its own, its saved selection's, its
    original's): a fleet-wide command's list is 50,000 SNs that the detail page never shows."""
    commands = Command.objects.select_related("account", "group", "selection", "created_by", "resolved_by", "retry_of",
                                              "api_key")
    if without_sns:
        commands = commands.defer("sns", "selection__sns", "retry_of__sns")
    return _in_organization(request, commands, code, "command")


def schedule_for_user(request: HttpRequest, code: object) -> Schedule:
    return _in_organization(request, Schedule.objects.select_related("account", "group"), code, "schedule")


def price_zone_for_user(request: HttpRequest, code: object) -> PriceZone:
    return _in_organization(request, PriceZone.objects.select_related("account"), code, "price zone")


def price_rule_for_user(request: HttpRequest, code: object) -> PriceRule:
    organization = current_membership(request).organization
    rule = (PriceRule.objects.select_related("zone__account", "group", "selection")
            .filter(code=parse_code(code), zone__account__organization=organization).first())
    if rule is None:
        raise Http404("No such price rule in your organization.")
    return rule


def day_plan_for_user(request: HttpRequest, code: object) -> DayPlan:
    organization = current_membership(request).organization
    plan = (DayPlan.objects.select_related("rule__zone__account", "rule__group", "rule__selection", "series",
                                           "accepted_by")
            .filter(code=parse_code(code), rule__zone__account__organization=organization).first())
    if plan is None:
        raise Http404("No such plan in your organization.")
    return plan


def sync_run_for_user(request: HttpRequest, code: object) -> SyncRun:
    return _in_organization(request, SyncRun.objects.select_related("account"), code, "sync")


def cloud_search_for_user(request: HttpRequest, code: object, endpoints: tuple[str, ...]) -> ApiCall:
    """A stored fuzzy query (groups or members) whose answer a page shows."""
    return _in_organization(request, ApiCall.objects.filter(endpoint__in=endpoints), code, "search")


def selection_for_user(request: HttpRequest, code: object) -> SavedSelection:
    return _in_organization(request, SavedSelection.objects.select_related("account"), code, "selection")


def alert_for_user(request: HttpRequest, code: object) -> Alert:
    organization = current_membership(request).organization
    alert = Alert.objects.select_related("account", "acknowledged_by").filter(
        code=parse_code(code), organization=organization).first()
    if alert is None:
        raise Http404("No such alert in your organization.")
    return alert


def channel_for_user(request: HttpRequest, code: object) -> Channel:
    organization = current_membership(request).organization
    channel = Channel.objects.filter(code=parse_code(code), organization=organization).first()
    if channel is None:
        raise Http404("No such channel in your organization.")
    return channel
