"""The audit log: an entry for each kind of change a person makes through the pages, with who, when,
from where and before -> after (never a secret); the admins' page with its filters, paging and CSV."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

from fleet.accounts import audit
from fleet.mirror.forms import GroupNameForm
from fleet.models import (
    AuditEntry,
    Charger,
    Command,
    CommandState,
    DayPlan,
    Group,
    Inverter,
    Invitation,
    Membership,
    PriceRule,
    PriceZone,
    SafetyEnvelope,
    SavedSelection,
    Schedule,
    SolaxAccount,
)
from tests.conftest import TOKEN, make_member
from tests.fleet.test_command_views import make_command
from tests.fleet.test_price_views import _csv, _rule_data, _tomorrow
from tests.fleet.test_schedule_views import post_data, windows
from tests.support.once import key_from, key_in

pytestmark = pytest.mark.django_db

NEW_TOKEN = "99887766554433221100123"
PASSWORD = "Correct-Horse-Battery-42"
ON = {"target": "group", "superType": "1", "systemSwitch": "1"}


@pytest.fixture
def north(account):  # type: ignore[no-untyped-def]
    group = Group.objects.create(account=account, remote_id="100", name="North", device_count=2)
    Inverter.objects.create(account=account, group=group, remote_id="1", inverter_sn="SNA1", dongle_sn="SWA1")
    Inverter.objects.create(account=account, group=group, remote_id="2", inverter_sn="SNB2", dongle_sn="SWB2")
    return group


def only(action: str) -> AuditEntry:
    """The one entry of ``action`` (failing if there is none or several)."""
    entries = list(AuditEntry.objects.filter(action=action))
    assert len(entries) == 1, (action, [e.action for e in AuditEntry.objects.all()])
    return entries[0]


def table_text() -> str:
    """Every stored value of every entry, to look for secrets in."""
    return json.dumps([list(row) for row in AuditEntry.objects.values_list(
        "actor_label", "address", "action", "object_kind", "object_code", "object_name", "changes")], default=str)


# The mirror ----------------------------------------------------------------------------------

def test_creating_renaming_and_deleting_a_group_is_logged(operator_client, operator, sim_account):
    key = key_from(operator_client, f"/groups/?account={sim_account.code}")
    operator_client.post("/groups/new/", {"account": str(sim_account.code), "name": "Pilot East", "once": key},
                         REMOTE_ADDR="198.51.100.7")
    entry = only("group.create")
    assert (entry.actor, entry.actor_label, entry.address) == (operator, "otto", "198.51.100.7")
    assert entry.organization == sim_account.organization and entry.object_kind == "group"
    assert entry.object_name == "Pilot East" and entry.changes["name"] == [None, "Pilot East"]
    assert timezone.now() - entry.at < timedelta(minutes=1)

    group = Group.objects.create(account=sim_account, remote_id="77", name="Old name")
    assert operator_client.post(f"/groups/{group.code}/rename/", {"name": "New name"}).status_code == 302
    entry = only("group.rename")
    assert entry.changes == {"name": ["Old name", "New name"]} and entry.object_code == str(group.code)

    confirm = operator_client.get(f"/groups/{group.code}/delete/")
    operator_client.post(f"/groups/{group.code}/delete/", {"once": key_in(confirm)})
    entry = only("group.delete")
    assert entry.object_code == str(group.code) and entry.changes == {"name": ["Old name", None]}


def test_a_refused_write_is_not_logged(operator_client, viewer_client, account, north, other_account):
    operator_client.post(f"/groups/{north.code}/rename/", {"name": ""})  # a form error
    viewer_client.post(f"/groups/{north.code}/rename/", {"name": "Mine"})  # 403
    theirs = Group.objects.create(account=other_account, remote_id="9", name="Theirs")
    assert operator_client.post(f"/groups/{theirs.code}/rename/", {"name": "Mine"}).status_code == 404
    assert not AuditEntry.objects.exists()


def test_members_added_replaced_and_removed_are_logged(operator_client, account, north):
    key = key_from(operator_client, f"/groups/{north.code}/")
    operator_client.post(f"/groups/{north.code}/members/add/", {"sn": "SNCC3333", "once": key})
    entry = only("member.add")
    assert entry.object_name == "SNCC3333"
    assert entry.changes == {"group": [None, "North"], "inverter_sn": [None, "SNCC3333"]}

    member = Inverter.objects.get(inverter_sn="SNA1")
    operator_client.post(f"/members/{member.code}/replace/", {"sn": "SNZZ9999"})
    entry = only("member.replace")
    assert entry.object_code == str(member.code) and entry.changes == {"inverter_sn": ["SNA1", "SNZZ9999"]}

    confirm = operator_client.get(f"/members/{member.code}/remove/")
    operator_client.post(f"/members/{member.code}/remove/", {"once": key_in(confirm)})
    entry = only("member.remove")
    assert (entry.object_kind, entry.object_name, entry.changes) == ("member", "SNA1", {"group": ["North", None]})


def test_batch_deletes_and_ungrouped_adds_are_logged_per_object(operator_client, account, north):
    south = Group.objects.create(account=account, remote_id="200", name="South")
    data = {"account": str(account.code), "codes": [str(north.code), str(south.code)]}
    confirm = operator_client.post("/groups/delete/", data)
    operator_client.post("/groups/delete/", {**data, "confirm": "1", "once": key_in(confirm)})
    assert set(AuditEntry.objects.filter(action="group.delete").values_list("object_name", flat=True)) == {
        "North", "South"}
    operator_client.post("/inverters/ungrouped/add/", {"account": str(account.code), "group": str(south.code),
                                                       "sn": "H4AA0000000077"})
    entry = only("member.add")
    assert entry.changes == {"group": [None, "South"], "inverter_sn": [None, "H4AA0000000077"]}


def test_chargers_and_bindings_are_logged(operator_client, account):
    operator_client.post("/chargers/", {"account": str(account.code), "sn": "C1AA0000000002", "label": "Depot",
                                        "once": key_from(operator_client, "/chargers/")})
    charger = Charger.objects.get()
    entry = only("charger.add")
    assert entry.object_code == str(charger.code) and entry.changes == {"sn": [None, "C1AA0000000002"],
                                                                       "label": [None, "Depot"]}
    operator_client.post(f"/chargers/{charger.code}/remove/")
    assert only("charger.remove").changes == {"sn": ["C1AA0000000002", None]}

    key = key_from(operator_client, f"/binding/?account={account.code}")
    operator_client.post("/binding/", {"account": str(account.code), "sns": "SWAAAA0001, SWAAAA0002", "once": key})
    entry = only("binding.submit")
    assert entry.object_kind == "binding" and entry.changes == {"sns": [None, ["SWAAAA0001", "SWAAAA0002"]]}


# Commands --------------------------------------------------------------------------------------

def _send(client: Client, account: SolaxAccount, group: Group, switch: str = "1") -> Command:
    data = {**ON, "group": str(group.code), "systemSwitch": switch}
    plan = client.post(f"/commands/new/?account={account.code}", data)
    client.post(f"/commands/new/?account={account.code}", {**data, "confirm": "yes", "once": key_in(plan)})
    return Command.objects.order_by("-id").first()  # type: ignore[return-value]


def test_sending_and_cancelling_a_command_is_logged(operator_client, operator, account, north):
    command = _send(operator_client, account, north)
    entry = only("command.create")
    assert (entry.object_code, entry.object_name, entry.actor) == (str(command.code), command.label, operator)
    assert entry.changes["action"] == [None, {"superType": "1", "systemSwitch": "1"}]
    assert entry.changes["state"] == [None, "queued"]
    operator_client.post(f"/commands/{command.code}/cancel/")
    entry = only("command.cancel")
    assert entry.changes == {"state": ["queued", "cancelled"], "batches cancelled": [None, 1]}


def test_resolving_an_unknown_command_is_logged(operator_client, account):
    command = make_command(account, state=CommandState.UNKNOWN)
    key = key_from(operator_client, f"/commands/{command.code}/")
    operator_client.post(f"/commands/{command.code}/resolve/", {"resolution": "delivered", "once": key})
    assert only("command.resolve").changes == {"resolution": ["", "delivered"]}


def test_approving_and_rejecting_is_logged_with_the_second_operator(org, operator_client, account, north):
    SafetyEnvelope.objects.create(organization=org, approval_above_devices=1)
    first, second = _send(operator_client, account, north), _send(operator_client, account, north, "0")
    checker = make_member(org, "petra", "operator")
    client = Client()
    client.force_login(checker)
    client.post(f"/commands/{first.code}/approve/", {"decision": "approve"})
    client.post(f"/commands/{second.code}/approve/", {"decision": "reject"})
    approved, rejected = only("command.approve"), only("command.reject")
    assert approved.actor == rejected.actor == checker
    assert approved.changes == {"state": ["approval", "queued"]} and approved.object_code == str(first.code)
    assert rejected.changes == {"state": ["approval", "cancelled"]}  # a rejected command ends cancelled


# Schedules and prices ----------------------------------------------------------------------------

def test_schedule_create_edit_pause_and_delete_are_logged(operator_client, account, north):
    operator_client.post("/schedules/new/", {**post_data(account, north),
                                             "once": key_from(operator_client, "/schedules/new/")})
    schedule = Schedule.objects.get()
    created = only("schedule.create")
    assert created.object_code == str(schedule.code) and created.changes["name"] == [None, "Night charge"]
    assert created.changes["start_time"] == [None, "02:00:00"] and created.changes["group"] == [None, "North"]

    operator_client.post(f"/schedules/{schedule.code}/edit/",
                         post_data(account, north, name="Early charge", start_time="01:00"))
    assert only("schedule.update").changes == {"name": ["Night charge", "Early charge"],
                                               "start_time": ["02:00:00", "01:00:00"]}
    operator_client.post(f"/schedules/{schedule.code}/pause/")
    assert only("schedule.pause").changes == {"enabled": [True, False]}
    operator_client.post(f"/schedules/{schedule.code}/delete/")
    deleted = only("schedule.delete")
    assert deleted.changes["name"] == ["Early charge", None] and deleted.object_name == "Early charge"


def test_device_windows_are_logged_as_the_command_they_send(operator_client, account, north):
    key = key_from(operator_client, "/schedules/device-windows/")
    assert operator_client.post("/schedules/device-windows/", {**windows(account, north), "once": key}
                                ).status_code == 302
    command = Command.objects.get()
    entry = only("command.create")
    assert entry.object_code == str(command.code) and entry.changes["action"][1]["mode"] == "10"


def test_price_zone_upload_rule_and_accept_are_logged(operator_client, account, north):
    operator_client.post(f"/prices/zones/new/?account={account.code}",
                         {"name": "DE-LU", "timezone": "Europe/Berlin", "currency": "eur"})
    zone = PriceZone.objects.get()
    assert only("price_zone.create").changes["name"] == [None, "DE-LU"]

    operator_client.post(f"/prices/{zone.code}/rules/new/", _rule_data(north, charge_cap="120"))
    rule = PriceRule.objects.get()
    created = only("price_rule.create")
    assert created.object_code == str(rule.code) and created.object_name == "North in DE-LU"
    assert created.changes["charge_hours"] == [None, "3"] and created.changes["charge_cap"] == [None, "120"]
    operator_client.post(f"/prices/rules/{rule.code}/", _rule_data(north, charge_cap="120", charge_hours="4"))
    assert only("price_rule.update").changes == {"charge_hours": ["3", "4"]}  # decimals as text

    day = _tomorrow()
    operator_client.post(f"/prices/{zone.code}/upload/", {"file": SimpleUploadedFile("duck.csv", _csv(day)),
                                                          "unit": "MWh"})
    upload = only("price_series.upload")
    assert upload.changes["day"] == [None, day.isoformat()] and upload.changes["prices"][1] in (23, 24, 25)
    assert upload.changes["file"] == [None, "duck.csv"]
    plan = DayPlan.objects.get()
    operator_client.post(f"/prices/plans/{plan.code}/accept/")
    accepted = only("day_plan.accept")
    assert accepted.changes["state"] == ["proposed", "accepted"] and accepted.object_code == str(plan.code)


# Accounts, members, invitations, selections, the envelope --------------------------------------

def _account_form(**overrides: object) -> dict[str, object]:
    return {"name": "North", "token": NEW_TOKEN, "timezone": "Europe/Vienna", "calls_per_minute": 10,
            "calls_per_day": 10000, "vpp_base_url": "https://www.solaxcloud.com:9443/proxy",
            "ev_base_url": "https://www.solaxcloud.com/proxyApp/proxy/api", **overrides}


def test_accounts_are_logged_without_their_token(admin_client_, admin_user, org):
    assert admin_client_.post("/settings/accounts/new/", _account_form()).status_code == 302
    account = SolaxAccount.objects.get()
    created = only("account.create")
    assert created.actor == admin_user and created.changes["token"] == audit.CHANGED
    assert created.changes["name"] == [None, "North"] and created.changes["calls_per_minute"] == [None, 10]

    # a blank token keeps it: only the budget changed
    admin_client_.post(f"/settings/accounts/{account.code}/", _account_form(token="", calls_per_minute=8))
    assert only("account.update").changes == {"calls_per_minute": [10, 8]}
    AuditEntry.objects.filter(action="account.update").delete()
    admin_client_.post(f"/settings/accounts/{account.code}/", _account_form(token=TOKEN, calls_per_minute=8))
    assert only("account.update").changes == {"token": "changed"}
    account.refresh_from_db()
    secrets = [NEW_TOKEN, TOKEN, account.get_callback_secret(), account.token_ciphertext, account.callback_secret_hash]
    text = table_text()
    assert not [secret for secret in secrets if secret in text]
    page = admin_client_.get("/settings/audit/").content.decode()
    assert "(secret)" in page and not [secret for secret in secrets if secret in page]


def test_roles_removals_invitations_and_joining_are_logged(admin_client_, admin_user, org, client):
    otto = make_member(org, "otto", "operator")
    membership = Membership.objects.get(user=otto)
    admin_client_.post(f"/settings/members/{membership.code}/role/", {"role": "admin"})
    entry = only("membership.role")
    assert (entry.object_name, entry.changes) == ("otto", {"role": ["operator", "admin"]})
    admin_client_.post(f"/settings/members/{membership.code}/remove/")
    assert only("membership.remove").changes == {"role": ["admin", None]}

    response = admin_client_.post("/settings/invitations/new/", {"email": "new@example.com", "role": "operator"})
    token = re.search(r"/invite/([^/\"<]+)/", response.content.decode()).group(1)  # type: ignore[union-attr]
    invitation = Invitation.objects.get()
    created = only("invitation.create")
    assert created.object_code == str(invitation.code) and created.changes["role"] == [None, "operator"]

    client.post(f"/invite/{token}/", {"username": "nina", "password1": PASSWORD, "password2": PASSWORD})
    joined = only("membership.add")
    assert joined.actor_label == "nina" and joined.organization == org
    assert joined.changes == {"role": [None, "operator"], "invitation": [None, str(invitation.code)]}

    second = admin_client_.post("/settings/invitations/new/", {"email": "x@example.com", "role": "viewer"})
    other_token = re.search(r"/invite/([^/\"<]+)/", second.content.decode()).group(1)  # type: ignore[union-attr]
    pending = Invitation.objects.get(email="x@example.com")
    admin_client_.post(f"/settings/invitations/{pending.code}/revoke/")
    assert only("invitation.revoke").object_code == str(pending.code)
    text = table_text()
    for secret in (token, other_token, PASSWORD, invitation.token_hash, pending.token_hash):
        assert secret not in text


def test_selections_are_logged_with_counts_and_the_sns_they_gained_or_lost(operator_client, account, north):
    url = f"/selections/new/?account={account.code}"
    operator_client.post(url, {"name": "Pilot", "sns": "SNA1", "once": key_from(operator_client, url)})
    selection = SavedSelection.objects.get()
    assert only("selection.create").changes == {"name": [None, "Pilot"], "inverters": [None, 1],
                                                "sns": [None, ["SNA1"]]}
    operator_client.post(f"/selections/{selection.code}/", {"name": "Pilot 2", "sns": "SNB2"})
    assert only("selection.update").changes == {"name": ["Pilot", "Pilot 2"], "sns": [["SNA1"], ["SNB2"]]}
    operator_client.post(f"/selections/{selection.code}/delete/")
    assert only("selection.delete").changes == {"name": ["Pilot 2", None], "inverters": [1, None]}


def test_the_safety_envelope_is_logged_before_and_after(admin_client_, org):
    admin_client_.post("/settings/safety/", {"max_devices": "500", "approval_above_devices": "100"})
    assert only("safety_envelope.update").changes == {"max_devices": [None, 500],
                                                      "approval_above_devices": [None, 100]}
    AuditEntry.objects.all().delete()
    admin_client_.post("/settings/safety/", {"max_devices": "400", "approval_above_devices": "100"})
    assert only("safety_envelope.update").changes == {"max_devices": [500, 400]}


# The record() helper ------------------------------------------------------------------------------

def test_an_api_key_or_the_system_can_be_the_actor(org, account):
    entry = audit.record(audit.Actor.api_key("trading", organization=org, address="203.0.113.9"),
                         "group.rename", Group.objects.create(account=account, remote_id="5", name="G"),
                         changes={"name": ["G", "H"], "secret": ["s3cr3t-value", "n3w-value"]})
    assert (entry.actor, entry.actor_label, entry.address) == (None, "api key 'trading'", "203.0.113.9")
    assert entry.changes == {"name": ["G", "H"], "secret": "changed"}
    nested = audit.record(audit.Actor.system(org), "channel.update", None, kind="channel", name="ops hook",
                          changes={"config": [{"url": "https://a.example", "secret": "whsec-old"},
                                              {"url": "https://b.example", "secret": "whsec-new"}]})
    assert nested.changes == {"config": [{"url": "https://a.example", "secret": "changed"},
                                         {"url": "https://b.example", "secret": "changed"}]}
    assert "whsec" not in table_text() and "s3cr3t" not in table_text()
    system = audit.record(audit.Actor.system(), "price_rule.update", account)
    assert system.organization == org and system.actor_label == "system"
    with pytest.raises(ValueError):
        audit.record(audit.Actor.system(), "group.create")


def test_form_changes_are_the_changed_fields_only(account):
    group = Group.objects.create(account=account, remote_id="5", name="Old")
    form = GroupNameForm({"name": "New"}, account=account, group=group, initial={"name": "Old"})
    assert form.is_valid()
    assert audit.form_changes(form) == {"name": ["Old", "New"]}
    assert audit.diff({"a": 1, "b": 2}, {"a": 1, "b": 3}) == {"b": [2, 3]}


def test_the_address_is_the_one_the_trusted_proxy_saw(operator_client, account, north, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    operator_client.post(f"/groups/{north.code}/rename/", {"name": "Via proxy"}, REMOTE_ADDR="10.0.0.2",
                         HTTP_X_FORWARDED_FOR="1.2.3.4, 198.51.100.20")
    assert only("group.rename").address == "198.51.100.20"


# The page ---------------------------------------------------------------------------------------

def _csv_text(response) -> str:  # type: ignore[no-untyped-def]
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    return b"".join(response.streaming_content).decode()


def _entries(org, n: int, **fields: object) -> None:  # type: ignore[no-untyped-def]
    now = timezone.now()
    AuditEntry.objects.bulk_create(
        AuditEntry(organization=org, actor_label=str(fields.get("actor_label", "otto")),
                   action=str(fields.get("action", "group.rename")), object_kind=str(fields.get("kind", "group")),
                   object_name=str(fields.get("name", f"Group {i:03d}")), changes={"name": [f"a{i}", f"b{i}"]},
                   at=fields.get("at", now - timedelta(minutes=i)))  # type: ignore[arg-type]
        for i in range(n))


def test_only_admins_see_the_log_of_their_own_organization(viewer_client, operator_client, admin_client_, org,
                                                           other_org, client):
    _entries(org, 2)
    _entries(other_org, 1, name="Their secret group")
    for url in ("/settings/audit/", "/settings/audit.csv"):
        assert viewer_client.get(url).status_code == 403
        assert operator_client.get(url).status_code == 403
        assert client.get(url).status_code == 302  # to the login
        assert admin_client_.post(url).status_code == 405
    body = admin_client_.get("/settings/audit/").content.decode()
    assert "Group 000" in body and "Their secret group" not in body
    assert "Their secret group" not in _csv_text(admin_client_.get("/settings/audit.csv"))
    assert 'href="/settings/audit/"' in admin_client_.get("/settings/").content.decode()


def test_the_page_shows_times_in_the_zone_with_its_abbreviation(admin_client_, org, settings):
    settings.TIME_ZONE = "Europe/Berlin"
    at = datetime(2026, 7, 1, 10, 0, tzinfo=UTC)
    _entries(org, 1, at=at)
    body = admin_client_.get("/settings/audit/").content.decode()
    assert "2026-07-01 12:00:00 CEST" in body and "a0" in body and "b0" in body
    rows = list(csv.reader(io.StringIO(_csv_text(admin_client_.get("/settings/audit.csv")))))
    assert rows[1][0] == "2026-07-01 12:00:00 CEST"


def test_the_filters_narrow_the_page_and_the_csv(admin_client_, org):
    _entries(org, 3, actor_label="otto", action="group.rename")
    _entries(org, 2, actor_label="ada", action="schedule.create", kind="schedule", name="Night charge")
    old = timezone.now() - timedelta(days=40)
    _entries(org, 1, actor_label="ada", action="schedule.delete", kind="schedule", name="Ancient", at=old)

    def names(query: str) -> list[str]:
        response = admin_client_.get(f"/settings/audit/?{query}")
        assert response.status_code == 200
        return [entry.object_name for entry, _ in response.context["rows"]]

    assert len(names("")) == 6
    assert set(names("actor=ada")) == {"Night charge", "Ancient"}
    assert names("action=group.rename") == ["Group 000", "Group 001", "Group 002"]
    assert set(names("kind=schedule")) == {"Night charge", "Ancient"}
    assert names("q=ancient") == ["Ancient"]
    since = (timezone.localdate() - timedelta(days=1)).isoformat()
    assert "Ancient" not in names(f"since={since}") and len(names(f"since={since}")) == 5
    until = (timezone.localdate() - timedelta(days=30)).isoformat()
    assert names(f"until={until}") == ["Ancient"]
    export = admin_client_.get("/settings/audit.csv?actor=ada&kind=schedule")
    rows = list(csv.reader(io.StringIO(_csv_text(export))))
    assert rows[0][:4] == ["when", "who", "from", "action"] and {r[6] for r in rows[1:]} == {"Night charge", "Ancient"}
    assert export["Content-Disposition"].startswith("attachment")


def test_bad_filters_say_so_and_show_nothing(admin_client_, org):
    _entries(org, 2)
    for query in ("action=drop.table", "kind=nope", "since=yesterday", "until=2026-13-01"):
        response = admin_client_.get(f"/settings/audit/?{query}")
        assert response.status_code == 400 and not response.context["rows"]
        assert admin_client_.get(f"/settings/audit.csv?{query}").status_code == 400
    hx = admin_client_.get("/settings/audit/?kind=nope", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="audit-log")
    assert hx.status_code == 200 and b"<html" not in hx.content and b"Unknown kind" in hx.content


def test_csv_cells_that_look_like_formulas_are_defused(admin_client_, org):
    _entries(org, 1, name="=HYPERLINK(\"http://evil\")", actor_label="@otto")
    rows = list(csv.reader(io.StringIO(_csv_text(admin_client_.get("/settings/audit.csv")))))
    assert rows[1][6] == "'=HYPERLINK(\"http://evil\")" and rows[1][1] == "'@otto"


@pytest.mark.parametrize("entries", [3, 180])
def test_the_page_costs_the_same_queries_whatever_the_log(admin_client_, org, entries, django_assert_num_queries):
    _entries(org, entries)
    admin_client_.get("/settings/audit/")  # warm the session
    first = admin_client_.get("/settings/audit/?actor=otto")
    older = first.context["older"]
    assert bool(older) == (entries > 50)
    # session, user, membership, the actor suggestions, the page's rows: never a COUNT of the log
    with django_assert_num_queries(5):
        response = admin_client_.get("/settings/audit/", {"actor": "otto", "before": older or cursor_of_first(first)})
    assert response.status_code == 200
    assert len(response.context["rows"]) == (2 if entries == 3 else 50)


def cursor_of_first(response) -> str:  # type: ignore[no-untyped-def]
    from fleet.views.audit import cursor_of

    return cursor_of(response.context["rows"][0][0])


def test_the_pages_walk_the_log_by_keyset_both_ways(admin_client_, org):
    _entries(org, 120)
    names = [f"Group {i:03d}" for i in range(120)]  # newest first

    def page(**params: str):  # type: ignore[no-untyped-def]
        response = admin_client_.get("/settings/audit/", params)
        assert response.status_code == 200
        return response, [entry.object_name for entry, _ in response.context["rows"]]

    first, shown = page()
    assert shown == names[:50] and first.context["newer"] == "" and first.context["older"]
    second, shown = page(before=first.context["older"])
    assert shown == names[50:100] and "Older →" in second.content.decode() and "Newest" in second.content.decode()
    third, shown = page(before=second.context["older"])
    assert shown == names[100:] and third.context["older"] == ""
    back, shown = page(after=third.context["newer"])
    assert shown == names[50:100]
    # two entries at the same moment are told apart by their id
    same = AuditEntry.objects.get(object_name="Group 050").at  # 049, 050, 051 across the page boundary
    AuditEntry.objects.filter(object_name__in=names[49:52]).update(at=same)
    walked = page()[1] + page(before=page()[0].context["older"])[1]
    assert sorted(walked) == sorted(names[:100]) and len(set(walked)) == 100


def test_a_bad_cursor_is_a_400_that_shows_nothing(admin_client_, org):
    _entries(org, 2)
    for bad in ("yesterday,1", "2026-01-01T00:00:00,x", "2026-01-01T00:00:00,5", "1"):
        response = admin_client_.get("/settings/audit/", {"before": bad})
        assert response.status_code == 400 and not response.context["rows"], bad
