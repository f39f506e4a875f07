"""A confirmation sends once (issue 11, item 1): one-time keys on the plan and on every write form.

A second submit of the same form (double click, browser retry, second tab) is shown what the first
one created; two people confirming the same action separately are both served, the second only after
a second confirmation; an expired, foreign or altered key changes nothing."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from functools import partial

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from fleet.accounts import once
from fleet.commands import service
from fleet.models import (
    ApiCall,
    BindingRequest,
    Command,
    CommandState,
    DeviceResult,
    DeviceState,
    Group,
    Inverter,
    OnceKey,
    Schedule,
)
from tests.conftest import make_member
from tests.fleet.test_command_views import make_command
from tests.fleet.test_schedule_views import post_data, windows
from tests.support.once import key_from, key_in
from tests.support.workers import at_once

pytestmark = pytest.mark.django_db

GROUP_ON = {"target": "group", "superType": "1", "systemSwitch": "1"}
HX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def group(account):  # type: ignore[no-untyped-def]
    group = Group.objects.create(account=account, remote_id="1001", name="North")
    for i in range(3):
        Inverter.objects.create(account=account, group=group, remote_id=f"50{i}", inverter_sn=f"H4AA000000000{i}",
                                dongle_sn=f"SWAA00000{i}")
    return group


@pytest.fixture
def second_operator(org):  # type: ignore[no-untyped-def]
    return make_member(org, "olga", "operator")


@pytest.fixture
def second_client(second_operator) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(second_operator)
    return client


def _plan(client: Client, data: dict[str, object]) -> str:
    """Show the cost plan and return its one-time key."""
    response = client.post("/commands/new/", data)
    assert response.status_code == 200 and "Check before sending" in response.content.decode()
    return key_in(response)


def _confirm(client: Client, data: dict[str, object], key: str, **extra: str):  # type: ignore[no-untyped-def]
    return client.post("/commands/new/", {**data, "confirm": "yes", "once": key, **extra})


# The new command -----------------------------------------------------------------------------

def test_a_double_submit_creates_one_command_and_shows_it(operator_client, account, group):
    plan = {**GROUP_ON, "group": group.code}
    key = _plan(operator_client, plan)
    first = _confirm(operator_client, plan, key)
    second = _confirm(operator_client, plan, key)
    command = Command.objects.get()
    assert ApiCall.objects.count() == 1
    assert first.status_code == second.status_code == 302
    assert first["Location"] == second["Location"] == f"/commands/{command.code}/"
    page = operator_client.get(second["Location"]).content.decode()
    assert "already submitted" in page and "nothing was sent twice" in page


def test_two_tabs_showing_the_same_plan_send_once(operator_client, account, group):
    plan = {**GROUP_ON, "group": group.code}
    first_tab, second_tab = _plan(operator_client, plan), _plan(operator_client, plan)
    assert first_tab == second_tab  # the same plan for the same person: one key
    _confirm(operator_client, plan, first_tab)
    response = _confirm(operator_client, plan, second_tab)
    assert response.status_code == 302 and Command.objects.count() == 1 and ApiCall.objects.count() == 1


def test_a_new_plan_after_sending_asks_for_a_second_confirmation(operator_client, account, group):
    plan = {**GROUP_ON, "group": group.code}
    _confirm(operator_client, plan, _plan(operator_client, plan))
    key = _plan(operator_client, plan)
    response = _confirm(operator_client, plan, key)
    body = response.content.decode()
    assert response.status_code == 200 and "An identical command was sent" in body and "s ago by you" in body
    assert Command.objects.count() == 1


def test_a_second_operator_sees_the_identical_command_and_must_confirm_again(
        operator_client, second_client, account, group):
    plan = {**GROUP_ON, "group": group.code}
    otto_key, olga_key = _plan(operator_client, plan), _plan(second_client, plan)
    assert otto_key != olga_key
    _confirm(operator_client, plan, otto_key)
    first = Command.objects.get()
    response = _confirm(second_client, plan, olga_key)
    body = response.content.decode()
    assert response.status_code == 200
    assert "An identical command was sent" in body and "s ago by otto" in body
    assert f"/commands/{first.code}/" in body and 'name="confirm_identical"' in body
    assert Command.objects.count() == 1 and ApiCall.objects.count() == 1  # nothing more yet
    assert key_in(response) == olga_key  # the same plan, still unused
    response = _confirm(second_client, plan, olga_key, confirm_identical="yes")
    assert response.status_code == 302
    assert Command.objects.count() == 2 and ApiCall.objects.count() == 2
    again = _confirm(second_client, plan, olga_key, confirm_identical="yes")  # and that one also once
    assert again.status_code == 302 and again["Location"] == response["Location"] and Command.objects.count() == 2


def test_another_target_or_action_is_not_identical(operator_client, second_client, account, group):
    plan = {**GROUP_ON, "group": group.code}
    _confirm(operator_client, plan, _plan(operator_client, plan))
    off = {**plan, "systemSwitch": "0"}
    response = _confirm(second_client, off, _plan(second_client, off))
    assert response.status_code == 302 and Command.objects.count() == 2


def test_an_identical_command_long_ago_needs_no_second_confirmation(operator_client, second_client, account,
                                                                    group, settings):
    plan = {**GROUP_ON, "group": group.code}
    _confirm(operator_client, plan, _plan(operator_client, plan))
    OnceKey.objects.filter(used_at__isnull=False).update(
        used_at=timezone.now() - timedelta(seconds=settings.ONCE_IDENTICAL_WINDOW_SECONDS + 1))
    response = _confirm(second_client, plan, _plan(second_client, plan))
    assert response.status_code == 302 and Command.objects.count() == 2


def test_an_expired_key_is_refused_and_changes_nothing(operator_client, account, group):
    plan = {**GROUP_ON, "group": group.code}
    key = _plan(operator_client, plan)
    OnceKey.objects.filter(key=key).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = _confirm(operator_client, plan, key)
    body = response.content.decode()
    assert response.status_code == 400 and "This form expired" in body and "nothing was done" in body
    assert not Command.objects.exists() and not ApiCall.objects.exists()
    assert OnceKey.objects.get(key=key).used_at is None
    fresh = key_in(response)  # the plan is shown again with a new key, which works
    assert fresh != key and _confirm(operator_client, plan, fresh).status_code == 302


def test_a_key_of_another_user_or_organization_is_refused(operator_client, second_client, account, group,
                                                          other_account):
    plan = {**GROUP_ON, "group": group.code}
    otto_key = _plan(operator_client, plan)
    response = _confirm(second_client, plan, otto_key)
    assert response.status_code == 400 and "was not issued to you" in response.content.decode()
    stranger = make_member(other_account.organization, "sam", "operator")
    OnceKey.objects.create(key="k" * 43, organization=other_account.organization, user=stranger,
                           purpose=f"command:{account.code}", expires_at=timezone.now() + timedelta(hours=1))
    for key in ("k" * 43, "", "x" * 500):
        response = _confirm(operator_client, plan, key)
        assert response.status_code == 400 and "was not issued to you" in response.content.decode()
    assert not Command.objects.exists() and not ApiCall.objects.exists()
    assert OnceKey.objects.filter(used_at__isnull=False).count() == 0
    assert _confirm(operator_client, plan, otto_key).status_code == 302  # still good for its owner


def test_a_plan_changed_after_it_was_shown_is_refused(operator_client, account, group):
    plan = {**GROUP_ON, "group": group.code}
    key = _plan(operator_client, plan)
    response = _confirm(operator_client, {**plan, "systemSwitch": "0"}, key)
    assert response.status_code == 400 and "The form changed after its plan was shown" in response.content.decode()
    assert not Command.objects.exists()


def test_a_failed_creation_leaves_the_key_usable(operator_client, account, group, monkeypatch):
    plan = {**GROUP_ON, "group": group.code}
    key = _plan(operator_client, plan)
    real = service.create_command

    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("database went away")

    monkeypatch.setattr(service, "create_command", broken)
    with pytest.raises(RuntimeError):
        _confirm(operator_client, plan, key)
    assert OnceKey.objects.get(key=key).used_at is None and not Command.objects.exists()
    monkeypatch.setattr(service, "create_command", real)
    assert _confirm(operator_client, plan, key).status_code == 302 and Command.objects.count() == 1


def test_retry_failed_devices_sends_once(operator_client, account, group):
    failed = make_command(account, state=CommandState.PARTIAL)
    DeviceResult.objects.filter(command=failed).update(state=DeviceState.FAILED, answer="device busy")
    plan = {"target": "inverter", "sns": "H4AA0000000000", "superType": "1", "systemSwitch": "1",
            "retry_of": failed.code}
    key = _plan(operator_client, plan)
    first, second = _confirm(operator_client, plan, key), _confirm(operator_client, plan, key)
    retry = Command.objects.get(retry_of=failed)
    assert first["Location"] == second["Location"] == f"/commands/{retry.code}/"
    assert ApiCall.objects.filter(origin_code=retry.code).count() == 1


# The UNKNOWN decision --------------------------------------------------------------------------

def test_send_again_on_purpose_sends_once(operator_client, account, group):
    unknown = make_command(account, state=CommandState.UNKNOWN)
    DeviceResult.objects.filter(command=unknown).update(state=DeviceState.UNKNOWN)
    key = key_from(operator_client, f"/commands/{unknown.code}/")
    first = operator_client.post(f"/commands/{unknown.code}/resolve/", {"resolution": "sent_again", "once": key})
    second = operator_client.post(f"/commands/{unknown.code}/resolve/", {"resolution": "sent_again", "once": key})
    again = Command.objects.get(retry_of=unknown)
    assert first["Location"] == second["Location"] == f"/commands/{again.code}/"
    assert ApiCall.objects.filter(origin_code=again.code).count() == 1
    page = operator_client.get(second["Location"]).content.decode()
    assert "already submitted" in page and "this command does not wait for a decision" not in page


def test_another_decision_with_a_used_key_is_refused(operator_client, account):
    unknown = make_command(account, state=CommandState.UNKNOWN)
    DeviceResult.objects.filter(command=unknown).update(state=DeviceState.UNKNOWN)
    key = key_from(operator_client, f"/commands/{unknown.code}/")
    operator_client.post(f"/commands/{unknown.code}/resolve/", {"resolution": "not_delivered", "once": key})
    response = operator_client.post(f"/commands/{unknown.code}/resolve/",
                                    {"resolution": "sent_again", "once": key}, follow=True)
    assert "already used for another request" in response.content.decode()
    assert not Command.objects.filter(retry_of=unknown).exists()


def test_a_decision_without_its_key_changes_nothing(operator_client, account):
    unknown = make_command(account, state=CommandState.UNKNOWN)
    response = operator_client.post(f"/commands/{unknown.code}/resolve/", {"resolution": "delivered"}, follow=True)
    assert "was not issued to you" in response.content.decode()
    unknown.refresh_from_db()
    assert unknown.resolution == "" and unknown.state == CommandState.UNKNOWN


# Device-side windows ---------------------------------------------------------------------------

def test_device_windows_send_once_and_a_second_operator_confirms_again(operator_client, second_client, account,
                                                                       group):
    data = windows(account, group)
    key = key_from(operator_client, "/schedules/device-windows/")
    first = operator_client.post("/schedules/device-windows/", {**data, "once": key})
    second = operator_client.post("/schedules/device-windows/", {**data, "once": key})
    command = Command.objects.get()
    assert first.status_code == 302 and second["Location"] == f"/commands/{command.code}/"
    assert ApiCall.objects.count() == 1
    olga_key = key_from(second_client, "/schedules/device-windows/")
    response = second_client.post("/schedules/device-windows/", {**data, "once": olga_key})
    assert response.status_code == 200 and "s ago by otto" in response.content.decode()
    assert Command.objects.count() == 1
    response = second_client.post("/schedules/device-windows/", {**data, "once": olga_key, "confirm_identical": "yes"})
    assert response.status_code == 302 and Command.objects.count() == 2


def test_device_windows_refuse_an_expired_key(operator_client, account, group):
    key = key_from(operator_client, "/schedules/device-windows/")
    OnceKey.objects.filter(key=key).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = operator_client.post("/schedules/device-windows/", {**windows(account, group), "once": key})
    assert response.status_code == 400 and "This form expired" in response.content.decode()
    assert not Command.objects.exists()


# Write forms -----------------------------------------------------------------------------------

@pytest.mark.parametrize("headers", [{}, HX])
def test_creating_a_group_twice_queues_one_call(operator_client, account, headers):
    key = key_from(operator_client, "/groups/")
    data = {"account": str(account.code), "name": "Pilot", "once": key}
    first = operator_client.post("/groups/new/", data, **headers)
    second = operator_client.post("/groups/new/", data, **headers)
    assert first.status_code in (200, 302)
    if headers:
        assert second.status_code == 200 and second["HX-Redirect"] == f"/groups/?account={account.code}"
    else:
        assert second.status_code == 302 and second["Location"] == f"/groups/?account={account.code}"
    assert ApiCall.objects.filter(endpoint="group_add").count() == 1


def test_after_a_group_is_created_the_list_carries_a_new_key(operator_client, account):
    key = key_from(operator_client, "/groups/")
    response = operator_client.post("/groups/new/", {"account": str(account.code), "name": "A", "once": key}, **HX)
    fresh = key_in(response)
    assert fresh != key
    operator_client.post("/groups/new/", {"account": str(account.code), "name": "B", "once": fresh}, **HX)
    assert ApiCall.objects.filter(endpoint="group_add").count() == 2


def test_a_stale_group_form_for_another_name_is_refused(operator_client, account):
    key = key_from(operator_client, "/groups/")
    operator_client.post("/groups/new/", {"account": str(account.code), "name": "A", "once": key})
    response = operator_client.post("/groups/new/", {"account": str(account.code), "name": "B", "once": key})
    assert response.status_code == 400 and "already used for another request" in response.content.decode()
    assert ApiCall.objects.filter(endpoint="group_add").count() == 1


def test_a_group_form_without_a_key_changes_nothing(operator_client, account):
    response = operator_client.post("/groups/new/", {"account": str(account.code), "name": "A"})
    assert response.status_code == 400 and "was not issued to you" in response.content.decode()
    assert not ApiCall.objects.exists()


def test_adding_a_member_twice_queues_one_call(operator_client, account, group):
    key = key_from(operator_client, f"/groups/{group.code}/")
    data = {"sn": "H4ZZ0000000001", "once": key}
    operator_client.post(f"/groups/{group.code}/members/add/", data, **HX)
    second = operator_client.post(f"/groups/{group.code}/members/add/", data, **HX)
    assert second["HX-Redirect"] == f"/groups/{group.code}/"
    assert ApiCall.objects.filter(endpoint="inverter_add").count() == 1


def test_a_member_key_of_another_group_is_refused(operator_client, account, group):
    other = Group.objects.create(account=account, remote_id="1002", name="South")
    key = key_from(operator_client, f"/groups/{other.code}/")
    response = operator_client.post(f"/groups/{group.code}/members/add/", {"sn": "H4ZZ0000000001", "once": key})
    assert response.status_code == 400 and "was not issued to you" in response.content.decode()
    assert not ApiCall.objects.exists()


def test_binding_twice_sends_one_request(operator_client, account):
    key = key_from(operator_client, "/binding/")
    data = {"account": str(account.code), "sns": "SW00000001, SW00000002", "once": key}
    first, second = operator_client.post("/binding/", data), operator_client.post("/binding/", data)
    assert first.status_code == second.status_code == 302 and first["Location"] == second["Location"]
    assert BindingRequest.objects.count() == 1 and ApiCall.objects.filter(endpoint="bind_devices").count() == 1


def test_binding_refuses_an_expired_key(operator_client, account):
    key = key_from(operator_client, "/binding/")
    OnceKey.objects.filter(key=key).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = operator_client.post("/binding/", {"account": str(account.code), "sns": "SW00000001", "once": key})
    assert response.status_code == 400 and "This form expired" in response.content.decode()
    assert not BindingRequest.objects.exists()


def test_creating_a_schedule_twice_saves_one(operator_client, account, group):
    data = {**post_data(account, group), "once": key_from(operator_client, "/schedules/new/")}
    first, second = operator_client.post("/schedules/new/", data), operator_client.post("/schedules/new/", data)
    schedule = Schedule.objects.get()
    assert first["Location"] == second["Location"] == f"/schedules/{schedule.code}/"


def test_keys_are_pruned_a_day_after_they_expire(operator_client, account, operator, org):
    old = OnceKey.objects.create(key="o" * 43, organization=org, user=operator, purpose="x",
                                 expires_at=timezone.now() - once.KEEP_AFTER_EXPIRY - timedelta(seconds=1))
    key_from(operator_client, "/binding/")
    assert not OnceKey.objects.filter(pk=old.pk).exists()


def test_viewers_get_no_keys(viewer_client, account):
    viewer_client.get("/groups/"), viewer_client.get("/binding/")
    assert not OnceKey.objects.exists()


# Concurrency: two submits at the same moment ---------------------------------------------------

@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_two_concurrent_submits_of_one_plan_create_exactly_one_command(operator, account, group, monkeypatch):
    """Two threads, two connections, real commits: the second waits for the organization's lock, then
    finds the key used and is sent to the first's command (PostgreSQL in CI; SQLite serialises too)."""
    client = Client()
    client.force_login(operator)
    plan = {**GROUP_ON, "group": group.code}
    key = _plan(client, plan)
    real = service.create_command

    def slow(*args, **kwargs):  # type: ignore[no-untyped-def]
        time.sleep(0.3)  # hold the transaction open while the other submit arrives
        return real(*args, **kwargs)

    monkeypatch.setattr(service, "create_command", slow)
    barrier = threading.Barrier(2)
    answers: list[object] = []

    def submit() -> None:
        try:
            own = Client()
            own.force_login(operator)
            barrier.wait()
            answers.append(_confirm(own, plan, key))
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            answers.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(answers) == 2 and all(getattr(a, "status_code", None) == 302 for a in answers), answers
    command = Command.objects.get()
    assert ApiCall.objects.count() == 1
    assert {a["Location"] for a in answers} == {f"/commands/{command.code}/"}  # type: ignore[index]


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_two_operators_confirming_at_once_get_one_command_and_one_warning(operator, second_operator, account,
                                                                          group, monkeypatch):
    """Their keys differ, so only the organization's lock makes the second see the first's command."""
    plan = {**GROUP_ON, "group": group.code}
    clients = []
    for user in (operator, second_operator):
        client = Client()
        client.force_login(user)
        clients.append((client, _plan(client, plan)))
    real = service.create_command

    def slow(*args, **kwargs):  # type: ignore[no-untyped-def]
        time.sleep(0.3)
        return real(*args, **kwargs)

    monkeypatch.setattr(service, "create_command", slow)
    answers = at_once(*(partial(_confirm, client, plan, key) for client, key in clients))
    assert sorted(getattr(a, "status_code", 0) for a in answers) == [200, 302], answers
    warned = next(a for a in answers if getattr(a, "status_code", 0) == 200)
    assert "An identical command was sent" in warned.content.decode()  # type: ignore[attr-defined]
    assert Command.objects.count() == 1 and ApiCall.objects.count() == 1


# Delete confirmations ----------------------------------------------------------------------------

def test_a_confirmed_group_delete_is_sent_once(operator_client, account, group):
    confirm = operator_client.get(f"/groups/{group.code}/delete/", **HX)
    key = key_in(confirm)
    operator_client.post(f"/groups/{group.code}/delete/", {"once": key}, **HX)
    second = operator_client.post(f"/groups/{group.code}/delete/", {"once": key}, **HX)
    assert second["HX-Redirect"] == f"/groups/?account={account.code}"
    assert ApiCall.objects.filter(endpoint="group_delete").count() == 1


def test_a_batch_delete_key_is_for_the_groups_it_showed(operator_client, account, group):
    other = Group.objects.create(account=account, remote_id="1002", name="South")
    data = {"account": str(account.code), "codes": [str(group.code)]}
    key = key_in(operator_client.post("/groups/delete/", data, **HX))
    response = operator_client.post("/groups/delete/", {"account": str(account.code), "confirm": "1", "once": key,
                                                        "codes": [str(group.code), str(other.code)]})
    assert response.status_code == 400 and "The form changed" in response.content.decode()
    assert not ApiCall.objects.exists()
    operator_client.post("/groups/delete/", {**data, "confirm": "1", "once": key})
    operator_client.post("/groups/delete/", {**data, "confirm": "1", "once": key})
    assert ApiCall.objects.filter(endpoint="group_delete").count() == 1


def test_a_confirmed_member_removal_is_sent_once(operator_client, account, group):
    member = group.members.first()
    key = key_in(operator_client.get(f"/members/{member.code}/remove/", **HX))
    first = operator_client.post(f"/members/{member.code}/remove/", {"once": key})
    second = operator_client.post(f"/members/{member.code}/remove/", {"once": key})
    assert first["Location"] == second["Location"] == f"/groups/{group.code}/"
    assert ApiCall.objects.filter(endpoint="inverter_delete").count() == 1
    without = operator_client.post(f"/members/{member.code}/remove/", **HX)
    assert "was not issued to you" in without.content.decode()
    assert ApiCall.objects.filter(endpoint="inverter_delete").count() == 1
