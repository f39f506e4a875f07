"""The REST API (/api/v1/): key authentication (401), scopes (403), organization scoping (404),
validation naming every field (422), Idempotency-Key (409 and replays), RFC 9457 problem details for
each, every resource, cursor pagination, exact query counts and the OpenAPI document."""

from __future__ import annotations

import json
from datetime import date, time

import pytest
from django.test import Client
from django.utils import timezone

from fleet.accounts import api_keys
from fleet.models import (
    Alert,
    ApiCall,
    ApiKey,
    AuditEntry,
    Charger,
    Command,
    DayPlan,
    DeviceResult,
    Group,
    IdempotencyKey,
    Inverter,
    PriceRule,
    PriceSeries,
    PriceZone,
    SavedSelection,
    Schedule,
)

pytestmark = pytest.mark.django_db

SYSTEM_ON = {"superType": 1, "systemSwitch": 1}


def _problem(response, status):  # type: ignore[no-untyped-def]
    """Assert an RFC 9457 problem of ``status`` and return its body."""
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert body["type"].startswith("urn:solax-fleet:problem:")
    assert body["title"] and body["detail"]
    return body


class Api:
    """A test client that sends an API key."""

    def __init__(self, key: str | None, **headers: str) -> None:
        self.client = Client(enforce_csrf_checks=True)  # CSRF does not apply to key-authenticated requests
        self.headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.headers.update(headers)

    def get(self, path: str, **params):  # type: ignore[no-untyped-def]
        return self.client.get("/api/v1" + path, params, headers=self.headers)

    def send(self, method: str, path: str, body=None, **headers):  # type: ignore[no-untyped-def]
        data = json.dumps(body) if body is not None else ""
        return getattr(self.client, method)("/api/v1" + path, data=data, content_type="application/json",
                                            headers={**self.headers, **headers})

    def post(self, path: str, body=None, **headers):  # type: ignore[no-untyped-def]
        return self.send("post", path, body, **headers)


@pytest.fixture
def operate_key(org, admin_user):  # type: ignore[no-untyped-def]
    return api_keys.create(org, "trading bot", "operate", user=admin_user)


@pytest.fixture
def api(operate_key) -> Api:  # type: ignore[no-untyped-def]
    return Api(operate_key[1])


@pytest.fixture
def read_api(org) -> Api:  # type: ignore[no-untyped-def]
    return Api(api_keys.create(org, "dashboard", "read")[1])


@pytest.fixture
def group(account):  # type: ignore[no-untyped-def]
    group = Group.objects.create(account=account, remote_id="1001", name="North", device_count=3)
    for i in range(3):
        Inverter.objects.create(account=account, group=group, remote_id=f"50{i}", inverter_sn=f"H4AA000000000{i}",
                                dongle_sn=f"SWAA00000{i}")
    return group


@pytest.fixture
def theirs(other_account):  # type: ignore[no-untyped-def]
    """One object of every kind in another organization."""
    group = Group.objects.create(account=other_account, remote_id="9", name="Theirs", device_count=1)
    member = Inverter.objects.create(account=other_account, group=group, remote_id="99", inverter_sn="H4ZZ00000001")
    command = Command.objects.create(account=other_account, kind="inverter_control", target_kind="group",
                                     group=group, action={"superType": "1"}, label="theirs")
    schedule = Schedule.objects.create(account=other_account, name="Theirs", target_kind="group", group=group,
                                       start_action=SYSTEM_ON, end_action=SYSTEM_ON, start_time=time(1),
                                       end_time=time(2), weekdays=[0], timezone="UTC")
    selection = SavedSelection.objects.create(account=other_account, name="Theirs", sns=["H4ZZ00000001"])
    zone = PriceZone.objects.create(account=other_account, name="Z", timezone="UTC")
    series = PriceSeries.objects.create(zone=zone, day=date(2026, 1, 15), minutes=60, unit="MWh", source="upload")
    plan = DayPlan.objects.create(rule=PriceRule.objects.create(zone=zone, group=group), series=series,
                                  day=date(2026, 1, 15), form="windows", calls=1)
    call = ApiCall.objects.create(account=other_account, endpoint="group_add", params={}, priority=1)
    alert = Alert.objects.create(organization=other_account.organization, kind="sync", subject="x", title="Theirs")
    return {"alerts": alert, "groups": group, "members": member, "commands": command, "schedules": schedule,
            "selections": selection, "price-plans": plan, "accounts": other_account, "calls": call}


# 401 ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("headers", [
    {}, {"Authorization": "Bearer nope"}, {"Authorization": "Bearer sfk_00000000_" + "x" * 43},
    {"X-API-Key": "sfk_short"}, {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer " + "x" * 5000},
])
def test_a_missing_or_wrong_key_is_401(operate_key, headers):
    client = Client()
    for path in ("/api/v1/groups", "/api/v1/commands"):
        body = _problem(client.get(path, headers=headers), 401)
        assert "API key" in body["detail"]
    response = client.post("/api/v1/commands", data="{}", content_type="application/json", headers=headers)
    assert _problem(response, 401) and response["WWW-Authenticate"] == "Bearer"


def test_a_key_with_the_right_prefix_and_a_wrong_secret_is_401(operate_key):
    key, plaintext = operate_key
    forged = plaintext[:-4] + ("AAAA" if not plaintext.endswith("AAAA") else "BBBB")
    _problem(Api(forged).get("/groups"), 401)


def test_a_revoked_key_is_401(org, operate_key, account):
    key, plaintext = operate_key
    assert Api(plaintext).get("/groups").status_code == 200
    assert api_keys.revoke(key)
    _problem(Api(plaintext).get("/groups"), 401)
    _problem(Api(plaintext).post("/groups", {"name": "x"}), 401)
    assert not ApiCall.objects.exists()


def test_the_x_api_key_header_works_and_last_use_is_recorded(operate_key, account):
    key, plaintext = operate_key
    assert key.last_used_at is None
    response = Api(None, **{"X-API-Key": plaintext}).get("/accounts")
    assert response.status_code == 200
    key.refresh_from_db()
    assert key.last_used_at is not None and (timezone.now() - key.last_used_at).total_seconds() < 5


def test_the_api_needs_no_login_and_never_redirects(client, operate_key):
    response = client.get("/api/v1/groups")
    assert response.status_code == 401 and "Location" not in response


def test_only_the_hash_of_a_key_is_stored(operate_key):
    key, plaintext = operate_key
    row = ApiKey.objects.get(pk=key.pk)
    assert plaintext.startswith(f"sfk_{row.prefix}_")
    assert plaintext not in {row.key_hash, row.prefix, row.name}
    assert len(row.key_hash) == 64


# 403 ------------------------------------------------------------------------------------------

def test_a_read_key_reads_but_writing_is_403(read_api, account, group):
    assert read_api.get("/groups").status_code == 200
    member = group.members.first()
    for method, path, body in (
            ("post", "/groups", {"name": "South"}), ("patch", f"/groups/{group.code}", {"name": "N2"}),
            ("delete", f"/groups/{group.code}", None),
            ("post", f"/groups/{group.code}/members", {"sn": "H4BB00000001"}),
            ("delete", f"/members/{member.code}", None),
            ("post", "/commands/plan", {"target": {"kind": "group", "group": str(group.code)}, "action": SYSTEM_ON}),
            ("post", "/commands", {"target": {"kind": "group", "group": str(group.code)}, "action": SYSTEM_ON})):
        body_ = _problem(read_api.send(method, path, body), 403)
        assert "read-only" in body_["detail"]
    assert not ApiCall.objects.exists() and not Command.objects.exists()


# 404 ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["groups", "members", "commands", "schedules", "selections", "price-plans",
                                  "accounts", "calls", "alerts"])
def test_another_organizations_object_is_404(api, account, theirs, kind):
    code = theirs[kind].code
    paths = {"members": [("delete", f"/members/{code}")],
             "groups": [("get", f"/groups/{code}"), ("get", f"/groups/{code}/members"),
                        ("patch", f"/groups/{code}"), ("delete", f"/groups/{code}"),
                        ("post", f"/groups/{code}/members")],
             "commands": [("get", f"/commands/{code}"), ("get", f"/commands/{code}/results")],
             "alerts": [("get", f"/alerts/{code}"), ("post", f"/alerts/{code}/acknowledge")]}
    for method, path in paths.get(kind, [("get", f"/{kind}/{code}")]):
        body = {"name": "Mine now"} if method == "patch" else {"sn": "H4BB00000001"} if method == "post" else None
        response = api.get(path) if method == "get" else api.send(method, path, body)
        _problem(response, 404)
    assert not ApiCall.objects.filter(account=account).exists()


def test_unknown_paths_and_malformed_codes_are_problem_404s(api):
    _problem(api.get("/nowhere"), 404)
    _problem(api.get("/groups/not-a-uuid"), 404)
    _problem(api.get("/commands/12345/results"), 404)


def test_a_wrong_method_is_a_problem_405(api):
    response = api.send("put", "/groups", {})
    body = _problem(response, 405)
    assert "GET" in body["detail"] and response["Allow"]


# 422 ------------------------------------------------------------------------------------------

def _fields(body):  # type: ignore[no-untyped-def]
    return {error["field"] for error in body["errors"]}


def test_a_malformed_command_names_every_field(api, account):
    response = api.post("/commands", {"target": {"kind": "everything", "sns": ["x" * 41]},
                                      "action": {"superType": "two", "mode": True}, "start_within_minutes": 0,
                                      "colour": "red"})
    body = _problem(response, 422)
    assert _fields(body) == {"target.kind", "target.sns.0", "action.superType", "action.mode",
                             "start_within_minutes", "colour"}
    assert all(error["detail"] for error in body["errors"])
    assert not Command.objects.exists()


def test_a_missing_body_is_422_and_non_json_400(api, account):
    assert _fields(_problem(api.post("/commands", {}), 422)) == {"target", "action"}
    response = api.client.post("/api/v1/commands", data="{not json", content_type="application/json",
                               headers=api.headers)
    _problem(response, 400)


def test_the_domain_validation_names_every_field(api, account, group, theirs):
    # the same resolver and action builder as the page: every bad field at once
    response = api.post("/commands", {"target": {"kind": "selection", "sns": ["H4AA0000000000", "H4NOTMINE001"]},
                                      "action": {"superType": 2, "mode": 3}})
    body = _problem(response, 422)
    assert {"target.sns", "action.manualMode"} <= _fields(body)
    response = api.post("/commands/plan", {"target": {"kind": "group", "group": str(theirs["groups"].code)},
                                           "action": SYSTEM_ON})
    assert _fields(_problem(response, 422)) == {"target.group"}
    response = api.post("/commands", {"target": {"kind": "group"}, "action": SYSTEM_ON})
    assert _fields(_problem(response, 422)) == {"target.group"}
    response = api.post("/commands", {"account": str(theirs["accounts"].code),
                                      "target": {"kind": "chargers", "sns": ["C1"]}, "action": {"chargerMode": 9}})
    assert _fields(_problem(response, 422)) == {"account"}
    assert not Command.objects.filter(account=account).exists() and not ApiCall.objects.filter(account=account).exists()


def test_group_and_member_writes_validate_like_the_pages(api, account, group):
    assert _fields(_problem(api.post("/groups", {"name": "x" * 51}), 422)) == {"name"}
    body = _problem(api.post("/groups", {"name": "North"}), 422)
    assert "exists already" in body["errors"][0]["detail"]
    assert _fields(_problem(api.post("/groups", {}), 422)) == {"name"}
    assert _fields(_problem(api.post(f"/groups/{group.code}/members", {"sn": "no spaces!"}), 422)) == {"sn"}
    body = _problem(api.post(f"/groups/{group.code}/members", {"sn": "H4AA0000000001"}), 422)
    assert "member of a group already" in body["errors"][0]["detail"]
    assert not ApiCall.objects.exists()


def test_bad_paging_is_422(api, account):
    assert _fields(_problem(api.get("/groups", limit=0), 422)) == {"limit"}
    assert _fields(_problem(api.get("/groups", limit=201), 422)) == {"limit"}
    assert _fields(_problem(api.get("/groups", cursor="forged"), 422)) == {"cursor"}
    assert _fields(_problem(api.get("/commands", state="bogus"), 422)) == {"state"}


def test_a_cursor_of_another_list_is_refused(api, account, group):
    Group.objects.create(account=account, remote_id="1002", name="South")
    cursor = api.get("/groups", limit=1).json()["next_cursor"]
    assert cursor
    assert _fields(_problem(api.get("/chargers", cursor=cursor), 422)) == {"cursor"}


# Commands -------------------------------------------------------------------------------------

def _group_command(group):  # type: ignore[no-untyped-def]
    return {"target": {"kind": "group", "group": str(group.code)}, "action": SYSTEM_ON}


def test_a_plan_is_a_dry_run(api, account, group):
    response = api.post("/commands/plan", _group_command(group))
    assert response.status_code == 200, response.content
    plan = response.json()
    assert plan["devices"] == 3 and plan["sends"] == 1 and plan["group_calls"] == 1
    assert plan["endpoint"] == "group_control" and plan["calls"] == plan["sends"] + plan["polls"]
    assert plan["batches"] == [{"group": str(group.code), "sns": 0}]
    assert plan["goes_out_at"].endswith("+00:00") and plan["label"] == "System on to group North"
    assert not Command.objects.exists() and not ApiCall.objects.exists()


def test_a_command_records_the_key_and_where_it_came_from(api, account, group, operate_key, admin_user):
    response = api.post("/commands", _group_command(group))
    assert response.status_code == 201, response.content
    body = response.json()
    command = Command.objects.get()
    assert body["code"] == str(command.code) and body["state"] == "queued"
    assert command.api_key == operate_key[0] and command.source == "api" and command.created_from == "127.0.0.1"
    assert command.created_by is None
    assert body["api_key"] == "trading bot" and body["created_by"] is None
    assert body["created"].endswith("+00:00")
    assert body["url"] == f"/api/v1/commands/{command.code}"
    assert ApiCall.objects.get().endpoint == "group_control"
    assert DeviceResult.objects.filter(command=command).count() == 3
    # the page says who sent it
    page = Client()
    page.force_login(admin_user)
    assert "API key “trading bot” from 127.0.0.1 (api)" in page.get(f"/commands/{command.code}/").content.decode()


def test_a_retry_with_the_same_idempotency_key_returns_the_same_command(api, account, group):
    first = api.post("/commands", _group_command(group), **{"Idempotency-Key": "order-17"})
    assert first.status_code == 201, first.content
    # the same body with its keys in another order is the same body
    again = api.post("/commands", {"action": {"systemSwitch": 1, "superType": 1},
                                   "target": {"group": str(group.code), "kind": "group"}},
                     **{"Idempotency-Key": "order-17"})
    assert again.status_code == 200, again.content
    assert again.json()["code"] == first.json()["code"]
    assert Command.objects.count() == 1 and ApiCall.objects.count() == 1
    other = api.post("/commands", _group_command(group), **{"Idempotency-Key": "order-18"})
    assert other.status_code == 201 and other.json()["code"] != first.json()["code"]
    assert Command.objects.count() == 2


def test_the_same_idempotency_key_with_another_body_is_409(api, account, group):
    assert api.post("/commands", _group_command(group), **{"Idempotency-Key": "k1"}).status_code == 201
    changed = {"target": {"kind": "group", "group": str(group.code)}, "action": {"superType": 1, "systemSwitch": 0}}
    body = _problem(api.post("/commands", changed, **{"Idempotency-Key": "k1"}), 409)
    assert "Idempotency-Key" in body["detail"]
    assert Command.objects.count() == 1 and ApiCall.objects.count() == 1


def test_a_refused_request_leaves_its_idempotency_key_unused(api, account, group):
    bad = {"target": {"kind": "group", "group": str(group.code)}, "action": {"superType": 1}}
    _problem(api.post("/commands", bad, **{"Idempotency-Key": "k2"}), 422)
    assert not IdempotencyKey.objects.exists()
    assert api.post("/commands", _group_command(group), **{"Idempotency-Key": "k2"}).status_code == 201


def test_idempotency_keys_are_per_organization(api, account, group, other_org, other_account):
    assert api.post("/commands", _group_command(group), **{"Idempotency-Key": "shared"}).status_code == 201
    other_group = Group.objects.create(account=other_account, remote_id="7", name="Theirs", device_count=1)
    Inverter.objects.create(account=other_account, group=other_group, remote_id="77", inverter_sn="H4ZZ00000001")
    theirs = Api(api_keys.create(other_org, "their bot", "operate")[1])
    response = theirs.post("/commands", _group_command(other_group), **{"Idempotency-Key": "shared"})
    assert response.status_code == 201
    assert Command.objects.count() == 2


def test_the_history_and_a_commands_results_are_paged(api, account, group):
    codes = [api.post("/commands", {"target": {"kind": "selection",
                                               "sns": ["H4AA0000000000", "H4AA0000000001", "H4AA0000000002"]},
                                    "action": SYSTEM_ON}).json()["code"] for _ in range(3)]
    page = api.get("/commands", limit=2).json()
    assert [c["code"] for c in page["items"]] == codes[::-1][:2]
    assert page["next"].startswith("http://testserver/api/v1/commands?")
    rest = api.client.get(page["next"], headers=api.headers).json()
    assert [c["code"] for c in rest["items"]] == codes[:1] and rest["next"] is None
    detail = api.get(f"/commands/{codes[0]}").json()
    assert detail["devices"] == {"total": 3, "answered": 0, "succeeded": 0, "failed": 0}
    assert detail["calls_total"] == 1 and detail["calls_sent"] == 0 and detail["unmatched"] == {}
    first = api.get(f"/commands/{codes[0]}/results", limit=2).json()
    assert [r["sn"] for r in first["items"]] == ["H4AA0000000000", "H4AA0000000001"]
    assert first["items"][0]["state"] == "pending"
    second = api.get(f"/commands/{codes[0]}/results", limit=2, cursor=first["next_cursor"]).json()
    assert [r["sn"] for r in second["items"]] == ["H4AA0000000002"] and second["next_cursor"] is None
    assert [r["sn"] for r in api.get(f"/commands/{codes[0]}/results", sn="0001").json()["items"]] == \
        ["H4AA0000000001"]
    assert api.get(f"/commands/{codes[0]}/results", state="succeeded").json()["items"] == []
    assert len(api.get("/commands", state="queued").json()["items"]) == 3


# Groups and members: pending until the cloud answers -------------------------------------------

def test_group_writes_queue_a_call_and_answer_202(api, account, group):
    response = api.post("/groups", {"name": "South"})
    assert response.status_code == 202, response.content
    call = response.json()
    assert call["endpoint"] == "group_add" and call["state"] == "queued"
    assert call["url"] == f"/api/v1/calls/{call['code']}"
    assert not Group.objects.filter(name="South").exists()  # only when the cloud confirms
    assert api.get(f"/calls/{call['code']}").json()["state"] == "queued"

    response = api.send("patch", f"/groups/{group.code}", {"name": "North 2"})
    assert response.status_code == 202 and response.json()["endpoint"] == "group_update"
    group.refresh_from_db()
    assert group.name == "North"
    detail = api.get(f"/groups/{group.code}").json()
    assert detail["last_change"]["endpoint"] == "group_update" and detail["last_change"]["state"] == "queued"

    response = api.send("delete", f"/groups/{group.code}")
    assert response.status_code == 202 and response.json()["endpoint"] == "group_delete"
    assert ApiCall.objects.filter(account=account).count() == 3


def test_member_writes_queue_a_call(api, account, group):
    response = api.post(f"/groups/{group.code}/members", {"sn": "h4bb00000001"})
    assert response.status_code == 202 and response.json()["endpoint"] == "inverter_add"
    assert ApiCall.objects.get().params["inverterSn"] == "H4BB00000001"
    member = group.members.order_by("inverter_sn").first()
    response = api.send("delete", f"/members/{member.code}")
    assert response.status_code == 202 and response.json()["endpoint"] == "inverter_delete"
    assert response.json()["objects"] == [str(member.code)]


def test_groups_search_and_pages(api, account, group):
    for name in ("Alpha", "Beta", "Northwest"):
        Group.objects.create(account=account, remote_id=name, name=name)
    Group.objects.create(account=account, remote_id="gone", name="Gone", removed=True)
    names = [g["name"] for g in api.get("/groups").json()["items"]]
    assert names == ["Alpha", "Beta", "North", "Northwest"]
    assert [g["name"] for g in api.get("/groups", q="north").json()["items"]] == ["North", "Northwest"]
    assert [g["name"] for g in api.get("/groups", removed="true").json()["items"]] == ["Gone"]
    seen, cursor = [], None
    while True:
        page = api.get("/groups", limit=3, **({"cursor": cursor} if cursor else {})).json()
        seen += [g["name"] for g in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == names
    members = api.get(f"/groups/{group.code}/members", q="SWAA000001").json()["items"]
    assert [m["inverter_sn"] for m in members] == ["H4AA0000000001"]


# The other resources -------------------------------------------------------------------------

def test_accounts_show_the_budget_and_never_the_token(api, account):
    from tests.conftest import TOKEN

    response = api.get("/accounts")
    assert TOKEN not in response.content.decode() and TOKEN[-4:] not in response.content.decode()
    item = response.json()["items"][0]
    assert item["name"] == "Main" and item["timezone"] == "Europe/Berlin" and item["token_readable"] is True
    assert item["budget"]["minute_limit"] == 10 and item["budget"]["day_limit"] == 10_000
    assert item["budget"]["paused_until"] is None
    detail = api.get(f"/accounts/{account.code}").json()
    assert detail["code"] == str(account.code) and TOKEN not in json.dumps(detail)


def test_inverters_chargers_selections_schedules_and_price_plans(api, account, group):
    other = Group.objects.create(account=account, remote_id="2", name="South")
    Inverter.objects.create(account=account, group=other, remote_id="600", inverter_sn="H4CC00000001",
                            rated_power=5.0)
    inverters = api.get("/inverters").json()["items"]
    assert [i["inverter_sn"] for i in inverters] == [f"H4AA000000000{i}" for i in range(3)] + ["H4CC00000001"]
    assert inverters[-1]["group_name"] == "South" and inverters[-1]["rated_power_kw"] == 5.0
    assert [i["inverter_sn"] for i in api.get("/inverters", q="cc").json()["items"]] == ["H4CC00000001"]
    assert len(api.get("/inverters", group=str(group.code)).json()["items"]) == 3

    Charger.objects.create(account=account, sn="C0000002", status=1, read_at=timezone.now())
    Charger.objects.create(account=account, sn="C0000001")
    chargers = api.get("/chargers").json()["items"]
    assert [c["sn"] for c in chargers] == ["C0000001", "C0000002"] and chargers[1]["read_at"].endswith("+00:00")

    selection = SavedSelection.objects.create(account=account, name="Pilot", sns=["H4AA0000000000"])
    assert api.get("/selections").json()["items"][0] | {"size": 1, "name": "Pilot"} == \
        api.get("/selections").json()["items"][0]
    assert api.get(f"/selections/{selection.code}").json()["sns"] == ["H4AA0000000000"]

    schedule = Schedule.objects.create(account=account, name="Nightly", target_kind="group", group=group,
                                       start_action=SYSTEM_ON, end_action=SYSTEM_ON, start_time=time(1, 30),
                                       end_time=time(5), weekdays=[0, 2], timezone="Europe/Berlin")
    item = api.get("/schedules").json()["items"][0]
    assert item["name"] == "Nightly" and item["start_time"] == "01:30" and item["group"] == str(group.code)
    assert api.get(f"/schedules/{schedule.code}").json()["weekdays"] == [0, 2]

    zone = PriceZone.objects.create(account=account, name="DE-LU", timezone="Europe/Berlin")
    rule = PriceRule.objects.create(zone=zone, group=group)
    series = PriceSeries.objects.create(zone=zone, day=date(2026, 1, 15), minutes=60, unit="MWh", source="upload")
    plan = DayPlan.objects.create(rule=rule, series=series, day=date(2026, 1, 15), form="windows", calls=1,
                                  avg_charge="41.50")
    item = api.get("/price-plans").json()["items"][0]
    assert item["code"] == str(plan.code) and item["zone"] == "DE-LU" and item["avg_charge"] == "41.50"
    assert api.get(f"/price-plans/{plan.code}").json()["day"] == "2026-01-15"


# Query counts --------------------------------------------------------------------------------

# Every request: the key lookup (one query; its last use is written at most once a minute).
@pytest.mark.parametrize("path,queries", [
    ("/groups", 2), ("/inverters", 2), ("/chargers", 2), ("/selections", 2), ("/schedules", 2),
    ("/price-plans", 2), ("/commands", 2),
    ("/accounts", 2 + 2),  # the budget of each account: its use and its queue (fleet.pipeline.report)
])
def test_list_endpoints_take_a_fixed_number_of_queries(api, account, group, django_assert_num_queries, path,
                                                       queries):
    for i in range(30):
        g = Group.objects.create(account=account, remote_id=f"g{i}", name=f"G{i:02}")
        Inverter.objects.create(account=account, group=g, remote_id=f"m{i}", inverter_sn=f"H4DD{i:08}")
        Charger.objects.create(account=account, sn=f"C{i:07}")
        SavedSelection.objects.create(account=account, name=f"S{i}", sns=["H4AA0000000000"])
        Schedule.objects.create(account=account, name=f"S{i}", target_kind="group", group=g, start_action=SYSTEM_ON,
                                end_action=SYSTEM_ON, start_time=time(1), end_time=time(2), weekdays=[0],
                                timezone="UTC")
        Command.objects.create(account=account, kind="inverter_control", target_kind="group", group=g,
                               action=SYSTEM_ON, label=f"c{i}")
    zone = PriceZone.objects.create(account=account, name="Z", timezone="UTC")
    series = PriceSeries.objects.create(zone=zone, day=date(2026, 1, 15), minutes=60, unit="MWh", source="upload")
    for g in Group.objects.filter(account=account)[:30]:
        DayPlan.objects.create(rule=PriceRule.objects.create(zone=zone, group=g), series=series,
                               day=date(2026, 1, 15), form="windows", calls=1)
    assert api.get(path).status_code == 200  # the key's last use is written now, not in the counted requests
    with django_assert_num_queries(queries):
        first = api.get(path, limit=20)
    assert first.status_code == 200
    if path != "/accounts":  # one account: one page
        with django_assert_num_queries(queries):  # the next page too: a keyset, not an OFFSET
            second = api.client.get(first.json()["next"], headers=api.headers)
        assert second.status_code == 200 and len(second.json()["items"]) >= 10


def test_the_accounts_list_takes_two_queries_per_account(api, account, org, django_assert_num_queries):
    from fleet.models import SolaxAccount

    second = SolaxAccount(organization=org, name="Second")
    second.set_token("20230413104527266767799")
    second.save()
    api.get("/accounts")
    with django_assert_num_queries(2 + 2 * 2):
        assert len(api.get("/accounts").json()["items"]) == 2


def test_a_filtered_list_adds_the_account_lookup(api, account, group, django_assert_num_queries):
    api.get("/groups")
    with django_assert_num_queries(3):
        assert api.get("/groups", account=str(account.code)).status_code == 200


# OpenAPI and the docs ---------------------------------------------------------------------------

def test_the_openapi_document_lists_every_path():
    response = Client().get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.") and document["info"]["title"] == "solax-fleet API"
    paths = set(document["paths"])
    assert {"/api/v1/accounts", "/api/v1/accounts/{code}", "/api/v1/groups", "/api/v1/groups/{code}",
            "/api/v1/groups/{code}/members", "/api/v1/members/{code}", "/api/v1/inverters", "/api/v1/chargers",
            "/api/v1/selections", "/api/v1/selections/{code}", "/api/v1/commands", "/api/v1/commands/plan",
            "/api/v1/commands/{code}", "/api/v1/commands/{code}/results", "/api/v1/commands/{code}/cancel",
            "/api/v1/commands/{code}/approve", "/api/v1/commands/{code}/reject", "/api/v1/commands/{code}/resolve",
            "/api/v1/commands/{code}/resume", "/api/v1/commands/{code}/retry", "/api/v1/schedules",
            "/api/v1/schedules/{code}", "/api/v1/price-plans", "/api/v1/price-plans/{code}",
            "/api/v1/calls/{code}", "/api/v1/alerts", "/api/v1/alerts/{code}",
            "/api/v1/alerts/{code}/acknowledge"} == paths
    schemes = document["components"]["securitySchemes"]
    assert {s["type"] for s in schemes.values()} == {"http", "apiKey"}
    create = document["paths"]["/api/v1/commands"]["post"]
    assert {"200", "201", "409", "422", "401", "403"} <= set(create["responses"])
    assert any(p["name"] == "Idempotency-Key" and p["in"] == "header" for p in create["parameters"])
    # every $ref resolves
    text = json.dumps(document)
    for ref in {part.split('"')[0] for part in text.split('"$ref": "#/components/schemas/')[1:]}:
        assert ref in document["components"]["schemas"], ref


def test_the_openapi_document_is_valid_openapi():
    from openapi_spec_validator import validate

    validate(Client().get("/api/v1/openapi.json").json())


def test_the_docs_load_swagger_from_our_own_static_files_under_the_csp():
    response = Client().get("/api/v1/docs")
    assert response.status_code == 200
    page = response.content.decode()
    assert "/static/ninja/swagger-ui-bundle.js" in page and "cdn" not in page.lower()
    assert "<script>" not in page  # no inline script: the settings are a JSON block read by a static file
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_two_concurrent_posts_with_one_idempotency_key_create_one_command(operate_key, account, group,
                                                                           monkeypatch):
    """Two threads, two connections, real commits: the second waits for the organization's lock, then
    finds the key used and answers the first's command (PostgreSQL with DATABASE_URL; SQLite serialises)."""
    import threading
    import time as clock

    from django.db import connection

    from fleet.commands import service

    real = service.create_command

    def slow(*args, **kwargs):  # type: ignore[no-untyped-def]
        clock.sleep(0.3)  # hold the transaction open while the other request arrives
        return real(*args, **kwargs)

    monkeypatch.setattr(service, "create_command", slow)
    barrier = threading.Barrier(2)
    answers: list[object] = []

    def submit() -> None:
        try:
            own = Api(operate_key[1])
            barrier.wait()
            answers.append(own.post("/commands", _group_command(group), **{"Idempotency-Key": "race"}))
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            answers.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(getattr(a, "status_code", None) for a in answers) == [200, 201], answers
    command = Command.objects.get()
    assert {a.json()["code"] for a in answers} == {str(command.code)}  # type: ignore[attr-defined]
    assert ApiCall.objects.count() == 1


def test_every_change_tells_the_audit_hook_who_and_from_where(api, account, group):
    from fleet.api.actor import api_changed

    seen: list[dict] = []

    def receiver(sender, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(kwargs)

    api_changed.connect(receiver)
    try:
        api.post("/commands", _group_command(group))
        api.send("patch", f"/groups/{group.code}", {"name": "North 2"})
        api.post("/groups", {"name": "South"})
        api.post(f"/groups/{group.code}/members", {"sn": "H4BB00000001"})
        api.send("delete", f"/members/{group.members.first().code}")
        api.send("delete", f"/groups/{group.code}")
        api.get("/groups")  # reads change nothing
        api.post("/groups", {"name": "x" * 51})  # refused: nothing changed
    finally:
        api_changed.disconnect(receiver)
    assert [s["action"] for s in seen] == ["command.create", "group.rename", "group.create", "member.add",
                                           "member.remove", "group.delete"]
    assert {s["actor"].label for s in seen} == {"API key trading bot"}
    assert {s["actor"].ip for s in seen} == {"127.0.0.1"}
    assert seen[1]["before"] == {"name": "North"} and seen[1]["after"] == {"name": "North 2"}
    assert seen[0]["object_code"] == str(Command.objects.get().code)
    entries = list(AuditEntry.objects.order_by("pk"))  # the same changes, in the audit log
    assert [e.action for e in entries] == [s["action"] for s in seen]
    assert {(e.actor_label, e.address, e.actor_id) for e in entries} == {("api key 'trading bot'", "127.0.0.1", None)}
    assert entries[1].changes == {"name": ["North", "North 2"]} and entries[1].object_code == str(group.code)


def test_alerts_are_listed_paged_filtered_and_acknowledged_by_an_operate_key(api, read_api, org, account,
                                                                            django_assert_num_queries):
    from fleet.alerts import service as alerts

    rows = [alerts.raise_alert(org, "sync", f"s{i}", title=f"Sync {i} failed", account=account) for i in range(3)]
    api.get("/alerts")  # the key's first use writes its last-used time
    with django_assert_num_queries(2):  # the key, one keyset query
        first = api.get("/alerts", limit=2)
    assert first.status_code == 200
    body = first.json()
    assert [a["title"] for a in body["items"]] == ["Sync 2 failed", "Sync 1 failed"]
    assert body["items"][0]["state"] == "open" and body["items"][0]["account"] == str(account.code)
    rest = api.get("/alerts", limit=2, cursor=body["next_cursor"]).json()
    assert [a["title"] for a in rest["items"]] == ["Sync 0 failed"] and rest["next_cursor"] is None
    assert _problem(read_api.post(f"/alerts/{rows[0].code}/acknowledge"), 403)
    acked = api.post(f"/alerts/{rows[0].code}/acknowledge")
    assert acked.status_code == 200 and acked.json()["state"] == "acknowledged"
    assert _problem(api.post(f"/alerts/{rows[0].code}/acknowledge"), 409)
    assert [a["title"] for a in api.get("/alerts", state="acknowledged").json()["items"]] == ["Sync 0 failed"]
    assert _problem(api.get("/alerts", state="nonsense"), 422)
    assert api.get(f"/alerts/{rows[1].code}").json()["title"] == "Sync 1 failed"
    entry = AuditEntry.objects.get(action="alert.acknowledge")
    assert entry.actor_label == "api key 'trading bot'" and entry.object_name == "Sync 0 failed"
    assert entry.changes["state"] == ["open", "acknowledged"]
