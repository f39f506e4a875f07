"""The audit log: record who changed what, when, from where, and each field's before -> after.

Every write a person (or an API key) makes calls ``record`` once the change is made, in the same
request; the scheduler's own work is not a person's change and is not recorded. Usage::

    from fleet.accounts import audit

    audit.record(request, "group.rename", group, changes={"name": [old, new]})
    audit.record(request, "account.update", account, changes=audit.form_changes(form))

    # an API key (the REST API): the key's name is the actor, the request gives the address
    audit.record(audit.Actor.api_key("trading", organization=org, address=audit.address_of(request)),
                 "command.create", command)
    # the system (a scheduled job), rarely worth it: its work is in the command history already
    audit.record(audit.Actor.system(org), "price_rule.update", rule, changes=...)

``changes`` maps a field name to ``[before, after]`` (``None`` for "not there": a create has
``[None, value]``). A secret field (see ``SECRET_FIELDS``: tokens, callback and webhook secrets,
API keys, passwords) is never stored: its pair becomes the word ``"changed"``. Values are turned
into JSON-safe text (model instances by their name, dates as ISO 8601, decimals as strings).

The action names and object kinds the page filters by are declared once here (``ACTIONS``,
``KINDS``); a new action is one line in ``ACTIONS``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django import forms
from django.db.models import Model, QuerySet
from django.http import HttpRequest

from fleet.accounts.access import current_membership
from fleet.accounts.throttle import client_address
from fleet.models import AuditEntry, Organization

# Field names whose values are never written to the log (on any model or form).
SECRET_FIELDS = frozenset({
    "token", "token_ciphertext", "token_digest", "token_last4", "token_hash",
    "callback_secret", "callback_secret_hash", "callback_secret_ciphertext",
    "secret", "secret_hash", "secret_ciphertext", "webhook_secret",
    "api_key", "key", "key_hash", "key_digest", "password", "password1", "password2",
})
CHANGED = "changed"
SYSTEM = "system"  # the actor label of the site's own jobs

# action -> what the log page calls it. One truth: the page's filter and its labels read this.
ACTIONS: dict[str, str] = {
    "group.create": "group created",
    "group.rename": "group renamed",
    "group.delete": "group deleted",
    "member.add": "member added",
    "member.replace": "member SN replaced",
    "member.remove": "member removed",
    "charger.add": "charger added",
    "charger.remove": "charger removed",
    "binding.submit": "devices bound",
    "command.create": "command sent",
    "command.resolve": "unknown command resolved",
    "command.cancel": "command cancelled",
    "command.approve": "command approved",
    "command.reject": "command rejected",
    "command.continue": "staged rollout continued",
    "schedule.create": "schedule created",
    "schedule.update": "schedule changed",
    "schedule.pause": "schedule paused or resumed",
    "schedule.delete": "schedule deleted",
    "device_windows.update": "device windows set",
    "price_zone.create": "price zone created",
    "price_series.upload": "prices uploaded",
    "price_rule.create": "price rule created",
    "price_rule.update": "price rule changed",
    "day_plan.accept": "day plan accepted",
    "account.create": "SolaX account added",
    "account.update": "SolaX account changed",
    "membership.add": "member joined",
    "membership.role": "role changed",
    "membership.remove": "member removed from the organization",
    "invitation.create": "invitation created",
    "invitation.revoke": "invitation revoked",
    "selection.create": "selection created",
    "selection.update": "selection changed",
    "selection.delete": "selection deleted",
    "safety_envelope.update": "safety envelope changed",
    # for the API keys and alert channels (built elsewhere; record() accepts any action name)
    "api_key.create": "API key created",
    "api_key.revoke": "API key revoked",
    "channel.create": "alert channel created",
    "channel.update": "alert channel changed",
    "channel.delete": "alert channel deleted",
    "alert.acknowledge": "alert acknowledged",
}

# model name -> the object kind the log shows and filters by
_KIND_OF_MODEL = {
    "group": "group", "inverter": "member", "charger": "charger", "bindingrequest": "binding",
    "command": "command", "schedule": "schedule", "pricezone": "price_zone", "priceseries": "price_series",
    "pricerule": "price_rule", "dayplan": "day_plan", "solaxaccount": "account", "membership": "membership",
    "invitation": "invitation", "savedselection": "selection", "safetyenvelope": "safety_envelope",
    "organization": "organization", "apikey": "api_key", "channel": "channel", "alert": "alert",
}
KINDS: dict[str, str] = {
    "group": "group", "member": "member", "charger": "charger", "binding": "binding", "command": "command",
    "schedule": "schedule", "price_zone": "price zone", "price_series": "price series", "price_rule": "price rule",
    "day_plan": "day plan", "account": "SolaX account", "membership": "membership", "invitation": "invitation",
    "selection": "selection", "safety_envelope": "safety envelope", "organization": "organization",
    "api_key": "API key", "channel": "alert channel", "alert": "alert",
}


@dataclass(frozen=True)
class Actor:
    """Who made a change: a person (``user``), an API key or the system, and from where.

    ``label`` is what the log keeps (it outlives the user or key). ``organization`` is needed when
    neither the object nor a request says which organization the entry belongs to.
    """

    label: str
    user: Any = None
    address: str | None = None
    organization: Organization | None = None

    @classmethod
    def system(cls, organization: Organization | None = None, label: str = SYSTEM) -> Actor:
        return cls(label=label, organization=organization)

    @classmethod
    def api_key(cls, name: str, *, organization: Organization, address: str | None = None,
                user: Any = None) -> Actor:
        """An API key named ``name`` (``user``: the key's creator, if the caller wants it linked)."""
        return cls(label=f"api key '{name}'"[:150], user=user, address=address, organization=organization)


def address_of(request: HttpRequest | None) -> str | None:
    """The client's address as the trusted proxies saw it (TRUSTED_PROXY_COUNT), or None."""
    address = client_address(request)
    return None if address == "unknown" else address


def actor_of(request: HttpRequest) -> Actor:
    """The logged-in person behind ``request`` (anonymous: "anonymous"), with their address."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return Actor(label="anonymous", address=address_of(request))
    return Actor(label=user.get_username()[:150], user=user, address=address_of(request))


def record(who: HttpRequest | Actor, action: str, obj: Model | None = None, *,
           changes: Mapping[str, Any] | None = None, organization: Organization | None = None,
           kind: str = "", code: object = "", name: str = "") -> AuditEntry:
    """Write one audit entry and return it.

    ``who``: the request (its logged-in user and client address) or an ``Actor`` (an API key, the
    system). ``obj``: the changed object; its kind, ``code`` and name are taken from it unless
    ``kind``/``code``/``name`` say otherwise (for a change to several objects, pass no object and
    name them). ``changes``: ``{field: [before, after]}``; secret fields are masked here, whatever
    the caller passed. The organization is, in this order: ``organization``, the actor's, the
    object's (its own ``organization`` or its account's), or the request's current organization.
    """
    actor: Actor = who if isinstance(who, Actor) else actor_of(who)
    org_id = _organization_id(who, actor, obj, organization)
    return AuditEntry.objects.create(
        organization_id=org_id, actor=actor.user, actor_label=actor.label, address=actor.address, action=action,
        object_kind=kind or _kind(obj), object_code=str(code or getattr(obj, "code", "") or "")[:64],
        object_name=(name or _name(obj))[:200], changes=masked(changes or {}))


def masked(changes: Mapping[str, Any]) -> dict[str, Any]:
    """``changes`` made JSON-safe, each secret field's pair replaced by ``"changed"``."""
    out: dict[str, Any] = {}
    for field, pair in changes.items():
        if field in SECRET_FIELDS:
            out[field] = CHANGED
        elif isinstance(pair, (list, tuple)) and len(pair) == 2:
            out[field] = [plain(pair[0]), plain(pair[1])]
        else:
            out[field] = plain(pair)
    return out


def form_changes(form: forms.BaseForm, fields: Iterable[str] | None = None) -> dict[str, list[Any]]:
    """The ``{field: [before, after]}`` of a bound, valid form: for each field in its
    ``changed_data`` (or only ``fields``), the form's initial value and the cleaned one. A secret
    field that was left blank is not a change and is left out."""
    wanted = set(fields) if fields is not None else None
    out: dict[str, list[Any]] = {}
    for field in form.changed_data:
        if wanted is not None and field not in wanted:
            continue
        after = form.cleaned_data.get(field)
        if field in SECRET_FIELDS and not after:
            continue
        before = form.get_initial_for_field(form.fields[field], field)
        if before == after:
            continue
        out[field] = [before, after]
    return out


def form_created(form: forms.BaseForm) -> dict[str, list[Any]]:
    """The changes of an object created by a valid form: ``[None, value]`` for each field with a
    value (secret fields as ``"changed"``, once masked)."""
    return {field: [None, value] for field, value in form.cleaned_data.items()
            if field in form.fields and value not in (None, "", [], {})}


def snapshot(obj: Model, fields: Iterable[str]) -> dict[str, Any]:
    """The current values of ``fields`` on ``obj``, to diff against after a change."""
    return {field: getattr(obj, field) for field in fields}


def diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, list[Any]]:
    """``{field: [before, after]}`` for each field whose value differs."""
    return {field: [before.get(field), after.get(field)] for field in {*before, *after}
            if plain(before.get(field)) != plain(after.get(field))}


def created(obj: Model, fields: Iterable[str]) -> dict[str, list[Any]]:
    """The changes of a creation: ``[None, value]`` for each of ``fields`` that has a value."""
    return {field: [None, value] for field in fields
            if (value := getattr(obj, field)) not in (None, "", [], {})}


def plain(value: Any) -> Any:
    """A JSON-safe version of a field value (secret keys of a nested mapping become "changed")."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Decimal):  # 3.00 from the database and 3 from a form are the same "3"
        return format(value.normalize(), "f") if value.is_finite() else str(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Model):
        return _name(value)
    if isinstance(value, Mapping):  # a secret nested in a JSON value (a channel's settings) is masked too
        return {str(k): CHANGED if str(k) in SECRET_FIELDS else plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset, QuerySet)):
        items = [plain(v) for v in value]
        return sorted(items, key=str) if isinstance(value, (set, frozenset)) else items
    return str(value)


def _kind(obj: Model | None) -> str:
    if obj is None:
        return ""
    model_name = obj._meta.model_name or ""
    return _KIND_OF_MODEL.get(model_name, model_name)


def _name(obj: Model | None) -> str:
    """What the log calls an object: its SN, label, person or name."""
    if obj is None:
        return ""
    for attribute in ("inverter_sn", "label", "name"):
        value = getattr(obj, attribute, None)
        if isinstance(value, str) and value:
            return value
    user = getattr(obj, "user", None) if obj._meta.model_name == "membership" else None
    if user is not None:
        return user.get_username()
    for attribute in ("sn", "email", "username"):
        value = getattr(obj, attribute, None)
        if isinstance(value, str) and value:
            return value
    return str(obj)


def _organization_id(who: HttpRequest | Actor, actor: Actor, obj: Model | None,
                     organization: Organization | None) -> int:
    if organization is not None:
        return organization.pk
    if actor.organization is not None:
        return actor.organization.pk
    if isinstance(obj, Organization):
        return obj.pk
    if obj is not None:
        if (org_id := getattr(obj, "organization_id", None)) is not None:
            return org_id
        account = getattr(obj, "account", None)
        if account is not None:
            return account.organization_id
    if isinstance(who, HttpRequest):
        return current_membership(who).organization_id
    raise ValueError("an audit entry needs an organization: pass organization= or an Actor with one")
