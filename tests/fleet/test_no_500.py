"""No input makes a 500: NUL bytes, 1 MB strings and deeply nested JSON sent to every query parameter
and form field of every URL pattern (django.urls resolver), GET and POST, as an organisation admin and,
for Django admin's patterns, as a superuser.

Path converters are filled with real objects of the user's organisation, so each view goes past its
lookup. Fields come from the forms the pages render (every <form> whose action resolves to the pattern)
plus the parameters views read directly. Each request runs in a savepoint that is rolled back, so every
request sees the same world (a delete does not hide the next request's bug) and a PostgreSQL error in
one request cannot poison the next. Runs on SQLite by default and on PostgreSQL with DATABASE_URL.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import time, timedelta
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.urls.exceptions import Resolver404
from django.utils import timezone

from fleet.models import (
    ApiCall,
    Charger,
    Command,
    Group,
    Inverter,
    Membership,
    Priority,
    Schedule,
    SyncRun,
)

NUL = "a\x00b"
BIG = "x" * 1_000_000
DEEP = "[" * 5_000 + "]" * 5_000  # far past json's recursion limit (about 1,000)
PAYLOADS = {"nul": NUL, "1MB": BIG, "deep-json": DEEP}
LONG = "y" * 600  # a dozen parameters of this stay under the query-string limit
# Parameters views read straight from request.GET / request.POST, besides their forms' fields.
COMMON_GET_PARAMS = ("q", "endpoint", "page", "sort", "state", "kind", "account", "cloud", "origin", "removed",
                     "next", "edit")
COMMON_POST_PARAMS = ("confirm", "codes", "organization", "resolution", "account", "csrfmiddlewaretoken")


# The URL patterns, flattened ------------------------------------------------------------------

@dataclass
class Route:
    pattern: str  # e.g. "groups/<uuid:code>/rename/"
    name: str
    callback: Any
    converters: list[tuple[str, str]]  # (converter, argument name) in order


def _routes(resolvers: list[URLPattern | URLResolver], prefix: str = "") -> Iterator[Route]:
    for entry in resolvers:
        text = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            yield from _routes(entry.url_patterns, text)
        else:
            converters = re.findall(r"<(?:(\w+):)?(\w+)>|\(\?P<(\w+)>", text)
            yield Route(text, entry.name or "", entry.callback,
                        [(conv or ("regex" if regex else "str"), arg or regex) for conv, arg, regex in converters])


ALL_ROUTES = list(_routes(get_resolver().url_patterns))


# The world: one object of every kind in the admin's organisation ---------------------------------

@pytest.fixture
def world(org, account, admin_user):  # type: ignore[no-untyped-def]
    from tests.conftest import make_member

    group = Group.objects.create(account=account, remote_id="G1", name="North", device_count=1)
    inverter = Inverter.objects.create(account=account, group=group, remote_id="M1", inverter_sn="H4ABCDEF01",
                                       dongle_sn="SWABCDEF01")
    charger = Charger.objects.create(account=account, sn="C1234567")
    schedule = Schedule.objects.create(account=account, name="Nightly", target_kind="group", group=group,
                                       start_action={"superType": 2, "mode": 3}, end_action={"superType": 2,
                                                                                             "mode": 1},
                                       start_time=time(1), end_time=time(5), weekdays=[0, 1, 2],
                                       timezone="Europe/Berlin")
    command = Command.objects.create(account=account, kind="inverter", target_kind="group", group=group,
                                     action={"superType": 2, "mode": 3}, label="test", state="unknown")
    search = ApiCall.objects.create(account=account, endpoint="group_fuzzy_query", params={"name": "No"},
                                    priority=Priority.READ)
    run = SyncRun.objects.create(account=account)
    member = Membership.objects.get(user=make_member(org, "mo", "operator"))
    superuser = get_user_model().objects.create_superuser("root", "root@example.com", "pw-root-9x!")
    Membership.objects.create(organization=org, user=superuser, role="admin")
    from datetime import date

    from fleet.models import DayPlan, Invitation, PriceRule, PriceSeries, PriceZone, SavedSelection

    zone = PriceZone.objects.create(account=account, name="DE-LU", timezone="Europe/Berlin")
    rule = PriceRule.objects.create(zone=zone, group=group)
    series = PriceSeries.objects.create(zone=zone, day=date(2026, 1, 15), minutes=60, unit="MWh", source="upload")
    from datetime import UTC, datetime

    from fleet.models import PriceInterval

    PriceInterval.objects.bulk_create(PriceInterval(series=series, start=datetime(2026, 1, 14, 23, tzinfo=UTC)
                                                    + timedelta(hours=h), minutes=60, price=50 + h) for h in range(24))
    plan = DayPlan.objects.create(rule=rule, series=series, day=date(2026, 1, 15), form="windows", calls=1)
    selection = SavedSelection.objects.create(account=account, name="Pilot", sns=["H4ABCDEF01"])
    invitation = Invitation.objects.create(organization=org, email="x@example.com", token_hash="0" * 64,
                                           expires_at=timezone.now() + timedelta(days=1))
    from fleet.accounts import api_keys
    from fleet.models import Alert, Channel

    alert = Alert.objects.create(organization=org, account=account, kind="sync", subject=str(account.code),
                                 title="Sync failed")
    channel = Channel.objects.create(organization=org, kind="email", name="Ops", target="ops@example.com")
    api_key, api_key_plaintext = api_keys.create(org, "fuzzer", "operate")
    return {"alert": alert, "channel": channel, "api_key": api_key, "api_key_plaintext": api_key_plaintext,
            "account": account, "group": group, "inverter": inverter, "charger": charger, "schedule": schedule,
            "command": command, "search": search, "run": run, "member": member, "admin": admin_user,
            "superuser": superuser, "zone": zone, "rule": rule, "plan": plan, "selection": selection,
            "invitation": invitation}


# Which object fills the <uuid:code> of each URL name; a new pattern must be added here.
CODE_OF = {
    "fleet-schedule-": "schedule", "fleet-account-edit": "account", "fleet-member-": "member",
    "fleet-command-": "command", "fleet-group-member-replace": "inverter", "fleet-group-member-remove": "inverter",
    "fleet-group": "group", "fleet-cloud-result": "search", "fleet-sync-run": "run", "fleet-charger": "charger",
    "fleet-price-zone": "zone", "fleet-price-upload": "zone", "fleet-price-rule-create": "zone",
    "fleet-price-rule": "rule", "fleet-day-plan": "plan", "fleet-selection-": "selection",
    "fleet-invitation-revoke": "invitation", "fleet-alert-acknowledge": "alert", "fleet-channel": "channel",
    "fleet-api-key-": "api_key", "fleet-inverter": "inverter",
    # the REST API (namespace api-v1; django-ninja names a path after its first operation)
    "account": "account", "call": "search", "group": "group", "member-remove": "inverter", "selection": "selection",
    "schedule": "schedule", "price-plan": "plan", "command": "command", "alert": "alert",
}


def _code_for(name: str, world: dict[str, Any]) -> str:
    for prefix, key in CODE_OF.items():
        if name == prefix or (prefix.endswith("-") and name.startswith(prefix)) or name.startswith(prefix + "-"):
            return str(world[key].code)
    raise AssertionError(f"test_no_500 does not know which object fills {name!r}: add it to CODE_OF")


def _admin_value(route: Route, arg: str, world: dict[str, Any]) -> str:
    model_admin = getattr(route.callback, "model_admin", None)
    if arg == "object_id" and model_admin is not None:
        obj = model_admin.model.objects.first()
        return str(obj.pk) if obj is not None else "1"
    if arg == "app_label":
        return "fleet"
    if arg == "content_type_id":
        from django.contrib.contenttypes.models import ContentType

        return str(ContentType.objects.get_for_model(Group).pk)
    if arg == "id":  # UserAdmin's password page
        return str(world["superuser"].pk)
    return "1"


def _path(route: Route, world: dict[str, Any], str_value: str | None = None) -> str:
    path = "/" + route.pattern
    for conv, arg in route.converters:
        if route.pattern.startswith("admin/"):
            value = _admin_value(route, arg, world)
        elif conv in ("uuid", "uuidstr"):  # uuidstr: django-ninja's UUID converter
            value = _code_for(route.name, world)
        elif conv == "path" and route.pattern.startswith("api/"):  # the API's problem 404 for unknown paths
            value = "nowhere/at/all" if str_value is None else str_value
        elif arg == "token":  # an invitation link: a random, unknown one
            value = "x" * 43 if str_value is None else str_value
        elif arg == "secret":
            value = world["account"].get_callback_secret() if str_value is None else str_value
        else:
            raise AssertionError(f"no value for <{conv}:{arg}> in {route.pattern}")
        path = re.sub(r"<(?:\w+:)?" + arg + r">|\(\?P<" + arg + r">[^)]*\)", value.replace("\\", r"\\"), path,
                      count=1)
    return path.replace("^", "").replace("$", "").replace("\\Z", "")


# Forms rendered by the pages ------------------------------------------------------------------

@dataclass
class FormInfo:
    method: str
    fields: dict[str, str] = field(default_factory=dict)  # name -> default value
    files: set[str] = field(default_factory=set)


class _FormParser(HTMLParser):
    def __init__(self, page: str) -> None:
        super().__init__()
        self.page = page
        self.forms: list[tuple[str, FormInfo]] = []
        self.current: FormInfo | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.current = FormInfo(method=(a.get("method") or "get").lower())
            self.forms.append((a.get("action") or self.page, self.current))
        target = self.current if self.current is not None else (self.forms[-1][1] if self.forms else None)
        if target is None or tag not in ("input", "select", "textarea", "button"):
            return
        name = a.get("name")
        if not name:
            return
        if a.get("type") == "file":
            target.files.add(name)
        elif a.get("type") in ("checkbox", "radio") and "checked" not in a:
            target.fields.setdefault(name, "")
        else:
            target.fields[name] = a.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.current = None


def _url_name(action: str) -> str | None:
    try:
        return resolve(urlsplit(action).path).url_name
    except Resolver404:
        return None


# The requests ---------------------------------------------------------------------------------

@dataclass
class Outcome:
    failures: list[str] = field(default_factory=list)
    requests: int = 0


def _send(client: Client, user: Any, outcome: Outcome, label: str, method: str, path: str, **kwargs: Any) -> Any:
    session = client.cookies.get("sessionid")
    if session is None or getattr(client, "_fuzz_user", None) != user.pk:
        client.force_login(user)  # first request, another user, or the last request logged out
        client._fuzz_user = user.pk  # type: ignore[attr-defined]
        session = client.cookies.get("sessionid")
    data = kwargs.get("data")
    if method == "post" and isinstance(data, dict) and not any(hasattr(v, "read") for v in data.values()):
        kwargs = {"data": urlencode(data, doseq=True), "content_type": "application/x-www-form-urlencoded"}
    # A savepoint per request: each sees the same world, and a database error cannot poison the next.
    with transaction.atomic():
        response = getattr(client, method)(path, **kwargs)
        if hasattr(response, "streaming_content"):
            b"".join(response.streaming_content)
        transaction.set_rollback(True)
    if client.cookies.get("sessionid") is None or client.cookies["sessionid"].value != session.value:
        client._fuzz_user = None  # type: ignore[attr-defined]
    outcome.requests += 1
    if response.status_code >= 500:
        outcome.failures.append(f"{response.status_code} {method.upper()} {path[:80]} {label}")
    return response


def _discover_forms(client: Client, world: dict[str, Any]) -> dict[str, list[FormInfo]]:
    """GET every page without parameters and keep its forms, keyed by the URL name of their action."""
    forms: dict[str, list[FormInfo]] = {}
    for route in ALL_ROUTES:
        path = _path(route, world)
        user = world["superuser"] if route.pattern.startswith("admin/") else world["admin"]
        client.force_login(user)
        for variant in (path, path + "?edit=1"):
            response = client.get(variant, HTTP_HX_REQUEST="false")
            if "html" not in response.get("Content-Type", "") or response.status_code >= 300:
                continue
            parser = _FormParser(variant)
            parser.feed(response.content.decode("utf-8", "replace"))
            for action, info in parser.forms:
                name = _url_name(action)
                if name:
                    forms.setdefault(name, []).append(info)
    return forms


def _fields(forms: list[FormInfo], method: str) -> tuple[dict[str, str], set[str]]:
    fields: dict[str, str] = {}
    files: set[str] = set()
    for info in forms:
        if info.method == method:
            for name, value in info.fields.items():
                fields.setdefault(name, value)
            files |= info.files
    return fields, files


def _fuzz_route(client: Client, route: Route, world: dict[str, Any], forms: dict[str, list[FormInfo]],
                outcome: Outcome) -> None:
    user = world["superuser"] if route.pattern.startswith("admin/") else world["admin"]
    path = _path(route, world)
    mine = forms.get(route.name, [])
    for method, common in (("get", COMMON_GET_PARAMS), ("post", COMMON_POST_PARAMS)):
        fields, files = _fields(mine, method)
        names = sorted(set(fields) | set(common))
        for label, payload in PAYLOADS.items():
            # Every parameter at once (forms validate every field, views read parameters one by one).
            # 1 MB strings in every field would pass the POST size limit (2.5 MB), so they go two
            # fields at a time, with the page's defaults for the others; a 1 MB query string is
            # refused (414) before any view. GET forms (filters) also get each field alone.
            if not (method == "post" and label == "1MB"):
                _send(client, user, outcome, f"all={label}", method, path, data=dict.fromkeys(names, payload))
            if method == "post" and label == "1MB":
                for pair in (names[i:i + 2] for i in range(0, len(names), 2)):
                    data: dict[str, Any] = {**fields, **dict.fromkeys(pair, payload)}
                    _send(client, user, outcome, f"{'+'.join(pair)}={label}", method, path, data=data)
            if method == "get" and label != "1MB":
                for name in sorted(fields):
                    _send(client, user, outcome, f"{name}={label}", method, path, data={**fields, name: payload})
            for name in files:
                upload = SimpleUploadedFile("x.csv", payload.encode(), content_type="text/csv")
                _send(client, user, outcome, f"file {name}={label}", "post", path, data={**fields, name: upload})
        if method == "get":
            # long but served (just under the query-string limit): reaches the views' own checks
            _send(client, user, outcome, "all=long", "get", path, data=dict.fromkeys(names, LONG))
        if method == "post":
            # a JSON body (the callback takes one) with every field set, and a deep one
            for label, payload in PAYLOADS.items():
                body = json.dumps(dict.fromkeys(names, payload) if label != "1MB" else {"taskId": payload})
                _send(client, user, outcome, f"json {label}", "post", path, data=body,
                      content_type="application/json")
            _send(client, user, outcome, "json deep", "post", path, data=DEEP, content_type="application/json")
    for conv, arg in route.converters:
        if conv in ("str", "path") and not route.pattern.startswith("admin/"):
            for label, payload in (("nul", "a\x00b"), ("deep-json", "[[[[[[")):
                bad = _path(route, world, str_value=payload)
                _send(client, user, outcome, f"{arg}={label}", "get", bad)
                _send(client, user, outcome, f"{arg}={label}", "post", bad, data="{}", content_type="application/json")
        if conv in ("uuid", "uuidstr"):
            _send(client, user, outcome, f"{arg}=unknown", "get", path.replace(_code_for(route.name, world),
                                                                                 str(uuid.uuid4())))


def _run(world: dict[str, Any], routes: list[Route]) -> Outcome:
    # The API's key on every request: the pages ignore it, the API's views go past authentication.
    client = Client(raise_request_exception=False,
                    headers={"Authorization": f"Bearer {world['api_key_plaintext']}"})
    forms = _discover_forms(client, world)
    outcome = Outcome()
    for route in routes:
        _fuzz_route(client, route, world, forms, outcome)
    return outcome


FLEET_ROUTES = [r for r in ALL_ROUTES if not r.pattern.startswith("admin/")]
ADMIN_ROUTES = [r for r in ALL_ROUTES if r.pattern.startswith("admin/")]


def test_every_url_pattern_is_enumerated():
    names = {r.name for r in FLEET_ROUTES}
    assert {"fleet-groups", "fleet-group", "fleet-inverters", "fleet-chargers", "fleet-budget",
            "fleet-callback", "fleet-binding", "fleet-schedule-create", "fleet-invitation-add"} <= names
    from fleet.api.urls import urlpatterns as api_urlpatterns
    from fleet.urls import urlpatterns

    # every pattern but the admin and API includes, and every pattern of the API
    assert len(FLEET_ROUTES) == len(urlpatterns) - 2 + len(api_urlpatterns)
    assert {"commands-create", "command-results", "groups", "call", "fleet-api-keys"} <= names
    assert len(ADMIN_ROUTES) > 30


@pytest.mark.django_db
def test_no_input_makes_a_500_on_the_fleet_pages(world):
    outcome = _run(world, FLEET_ROUTES)
    assert outcome.requests > 700
    assert outcome.failures == [], "\n".join(outcome.failures)


@pytest.mark.django_db
def test_no_input_makes_a_500_in_django_admin(world):
    outcome = _run(world, ADMIN_ROUTES)
    assert outcome.requests > 400
    assert outcome.failures == [], "\n".join(outcome.failures)
