"""The command pages: roles, organization scoping, the plan-then-confirm flow, history filters with
exact query counts, the detail page's live progress and the UNKNOWN resolution."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from fleet.models import (
    ApiCall,
    Command,
    CommandState,
    DeviceResult,
    DeviceState,
    Group,
    Inverter,
    Resolution,
)
from tests.support.once import key_from, key_in

pytestmark = pytest.mark.django_db

GROUP_ON = {"target": "group", "superType": "1", "systemSwitch": "1"}


@pytest.fixture
def group(account):  # type: ignore[no-untyped-def]
    group = Group.objects.create(account=account, remote_id="1001", name="North")
    for i in range(3):
        Inverter.objects.create(account=account, group=group, remote_id=f"50{i}", inverter_sn=f"H4AA000000000{i}",
                                dongle_sn=f"SWAA00000{i}")
    return group


def make_command(account, state=CommandState.SUCCEEDED, user=None, **extra):  # type: ignore[no-untyped-def]
    command = Command.objects.create(account=account, kind="inverter_control", target_kind="selection",
                                     sns=["H4AA0000000000"], action={"superType": "1", "systemSwitch": "1"},
                                     label="System on to 1 inverter", state=state, created_by=user,
                                     devices_total=1, **extra)
    DeviceResult.objects.create(command=command, sn="H4AA0000000000", dongle_sn="SWAA000000",
                                state=DeviceState.SUCCEEDED if state == CommandState.SUCCEEDED else DeviceState.PENDING)
    return command


# New command ---------------------------------------------------------------------------------

def test_viewers_cannot_open_or_post_the_new_command_page(viewer_client, account, group):
    assert viewer_client.get("/commands/new/").status_code == 403
    assert viewer_client.post("/commands/new/", {**GROUP_ON, "group": group.code, "confirm": "yes"}).status_code == 403
    assert not ApiCall.objects.exists()


def test_the_new_command_page_prefills_a_selection(operator_client, account, group):
    body = operator_client.get("/commands/new/?sn=H4AA0000000000&sn=H4AA0000000001").content.decode()
    assert "H4AA0000000000\nH4AA0000000001" in body
    assert 'value="selection" selected' in body


def test_the_action_fields_swap_with_htmx(operator_client, account, group):
    response = operator_client.get("/commands/new/", {"superType": "0", "mode": "1"},
                                   HTTP_HX_REQUEST="true", HTTP_HX_TARGET="action-fields")
    body = response.content.decode()
    assert "<form" not in body
    for name in ("activePower", "reactivePower", "setType", "proidTime", "timeout"):
        assert f'name="{name}"' in body
    assert 'name="targetSoc"' not in body
    assert "(W)" in body and 'max="65535"' in body
    body = operator_client.get("/commands/new/", {"target": "chargers"}, HTTP_HX_REQUEST="true",
                               HTTP_HX_TARGET="action-fields").content.decode()
    assert 'name="chargerMode"' in body and 'name="superType"' not in body


def test_posting_shows_the_cost_plan_and_queues_nothing(operator_client, account, group):
    response = operator_client.post("/commands/new/", {**GROUP_ON, "group": group.code})
    body = response.content.decode()
    assert response.status_code == 200
    assert "Check before sending" in body and "group_control" in body
    assert "about 4 result polls" in body and "% of 10,000 calls" in body
    assert 'name="confirm" value="yes"' in body
    assert not ApiCall.objects.exists() and not Command.objects.exists()


def test_confirming_queues_the_command_with_who_when_and_where(operator_client, operator, account, group):
    plan = {**GROUP_ON, "group": group.code}
    key = key_in(operator_client.post("/commands/new/", plan))
    response = operator_client.post("/commands/new/", {**plan, "confirm": "yes", "once": key},
                                    REMOTE_ADDR="192.0.2.7")
    command = Command.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/commands/{command.code}/"
    assert (command.created_by, str(command.created_from), command.source) == (operator, "192.0.2.7", "manual")
    assert command.devices_total == 3 and command.results.count() == 3
    call = ApiCall.objects.get()
    assert (call.endpoint, call.params) == ("group_control", {"groupId": "1001", "superType": "1", "systemSwitch": "1"})
    assert call.origin_code == command.code


def test_bad_input_is_a_form_error_and_nothing_is_queued(operator_client, account, group):
    response = operator_client.post("/commands/new/", {"target": "group", "group": group.code, "superType": "0",
                                                       "mode": "3", "setType": "1", "targetSoc": "101",
                                                       "chargerPower": "100", "confirm": "yes"})
    assert response.status_code == 400
    body = response.content.decode()
    assert "Ensure this value is less than or equal to 100" in body  # targetSoc
    assert "required" in body  # timeout is missing
    assert not ApiCall.objects.exists() and not Command.objects.exists()


def test_a_group_of_another_organization_is_a_form_error(operator_client, account, group, other_account):
    theirs = Group.objects.create(account=other_account, remote_id="77", name="Theirs")
    response = operator_client.post("/commands/new/", {**GROUP_ON, "group": theirs.code, "confirm": "yes"})
    assert response.status_code == 400 and not Command.objects.exists()


def test_an_account_of_another_organization_is_404(operator_client, account, other_account):
    assert operator_client.get(f"/commands/new/?account={other_account.code}").status_code == 404
    assert operator_client.get(f"/commands/?account={other_account.code}").status_code == 404
    assert operator_client.get("/commands/?account=not-a-uuid").status_code == 404


def test_the_new_command_page_takes_get_and_post_only(operator_client, account):
    assert operator_client.put("/commands/new/").status_code == 405


def test_retry_failed_devices_prefills_only_the_failures(operator_client, account, group):
    command = make_command(account, state=CommandState.PARTIAL)
    DeviceResult.objects.filter(command=command).update(state=DeviceState.FAILED, answer="device busy")
    body = operator_client.get(f"/commands/new/?retry_of={command.code}").content.decode()
    assert "H4AA0000000000" in body and f'value="{command.code}"' in body
    plan = {"target": "inverter", "sns": "H4AA0000000000", "superType": "1", "systemSwitch": "1",
            "retry_of": command.code}
    key = key_in(operator_client.post("/commands/new/", plan))
    response = operator_client.post("/commands/new/", {**plan, "confirm": "yes", "once": key})
    retry = Command.objects.exclude(pk=command.pk).get()
    assert response.status_code == 302 and retry.retry_of == command and retry.source == "retry"


# History -------------------------------------------------------------------------------------

def test_the_history_filters_by_state_kind_target_user_and_date(viewer_client, account, operator, viewer,
                                                                django_assert_num_queries):
    make_command(account, user=operator)
    make_command(account, state=CommandState.FAILED, user=viewer)
    old = make_command(account, user=operator)
    Command.objects.filter(pk=old.pk).update(created=timezone.now() - timedelta(days=10))
    today = timezone.localdate().isoformat()
    # session, user, membership, the accounts (picker and choice in one), people, page (no count)
    with django_assert_num_queries(6):
        body = viewer_client.get(f"/commands/?state=succeeded&user=otto&since={today}").content.decode()
    assert body.count("System on to 1 inverter") == 1
    body = viewer_client.get("/commands/?kind=inverter_control&target=selection").content.decode()
    assert body.count("System on to 1 inverter") == 3
    body = viewer_client.get(f"/commands/?until={(timezone.localdate() - timedelta(days=5)).isoformat()}")
    assert body.content.decode().count("System on to 1 inverter") == 1


def test_bad_filters_say_so(viewer_client, account):
    make_command(account)
    body = viewer_client.get("/commands/?state=bogus&since=yesterday&user=nobody").content.decode()
    assert "Unknown state." in body and "must be a date" in body and "No such person" in body
    assert "System on to 1 inverter" not in body


def test_the_history_is_paged_with_a_constant_number_of_queries(viewer_client, account, django_assert_num_queries):
    for _ in range(60):
        make_command(account)
    # session, user, membership, the account, people, page (one row more than shown; no count)
    with django_assert_num_queries(6):
        response = viewer_client.get("/commands/?page=2", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="command-history")
    body = response.content.decode()
    assert "<html" not in body and "Page 2 · commands 51–60" in body and body.count("<tr>") == 11
    assert "Older" not in body and "Newer" in body
    first = viewer_client.get("/commands/").content.decode()
    assert "Page 1 · commands 1–50 of more" in first and "Older" in first
    for bad in ("0", "-3", "x"):  # a bad page number is the first page
        assert "Page 1 ·" in viewer_client.get(f"/commands/?page={bad}").content.decode()
    assert "No commands on page 10000." in viewer_client.get(f"/commands/?page={10**30}").content.decode()
    beyond = viewer_client.get("/commands/?page=9").content.decode()
    assert "No commands on page 9" in beyond and "Back to the newest" in beyond


def test_the_history_hides_other_organizations(viewer_client, account, other_account):
    make_command(other_account)
    assert "System on" not in viewer_client.get("/commands/").content.decode()


# Detail --------------------------------------------------------------------------------------

def test_the_detail_shows_calls_results_and_who(viewer_client, account, operator, django_assert_num_queries):
    command = make_command(account, user=operator, created_from="10.1.2.3")
    ApiCall.objects.create(account=account, endpoint="batch_control", priority=0, params={}, origin_code=command.code,
                           state="succeeded", response='{"success":true,"result":123}')
    ApiCall.objects.create(account=account, endpoint="query_command", priority=2, params={}, origin_code=command.code)
    # session, user, membership, command, batch counts, device counts by state (progress), retries,
    # device count + page, the page's device links, calls + their count, answers for devices not in the mirror
    with django_assert_num_queries(13):
        body = viewer_client.get(f"/commands/{command.code}/").content.decode()
    assert body.index("batch_control") < body.index("query_command")
    assert "otto" in body and "10.1.2.3" in body and "H4AA0000000000" in body
    assert 'hx-trigger="every 2s"' not in body  # done: no polling


def test_the_progress_polls_until_done_then_stops(viewer_client, account):
    command = make_command(account, state=CommandState.RUNNING)
    body = viewer_client.get(f"/commands/{command.code}/").content.decode()
    assert 'hx-trigger="every 2s"' in body
    live = viewer_client.get(f"/commands/{command.code}/", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="command-progress")
    assert live.status_code == 200 and "0 of 1 device answered" in live.content.decode()
    Command.objects.filter(pk=command.pk).update(state=CommandState.SUCCEEDED, devices_answered=1)
    DeviceResult.objects.filter(command=command).update(state=DeviceState.SUCCEEDED)
    done = viewer_client.get(f"/commands/{command.code}/", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="command-progress")
    assert done.status_code == 286 and "1 of 1 device answered" in done.content.decode()


def test_the_detail_of_another_organization_is_404(viewer_client, other_account):
    command = make_command(other_account)
    assert viewer_client.get(f"/commands/{command.code}/").status_code == 404


# UNKNOWN -------------------------------------------------------------------------------------

def test_unknown_commands_are_flagged_on_the_dashboard_until_resolved(operator_client, operator, account):
    command = make_command(account, state=CommandState.UNKNOWN)
    DeviceResult.objects.filter(command=command).update(state=DeviceState.UNKNOWN)
    body = operator_client.get("/").content.decode()
    assert "Needs attention" in body and f"/commands/{command.code}/" in body
    key = key_from(operator_client, f"/commands/{command.code}/")
    response = operator_client.post(f"/commands/{command.code}/resolve/", {"resolution": "delivered", "once": key})
    assert response.status_code == 302
    command.refresh_from_db()
    assert (command.resolution, command.resolved_by, command.state) == (Resolution.DELIVERED, operator,
                                                                        CommandState.SUCCEEDED)
    assert f"/commands/{command.code}/" not in operator_client.get("/").content.decode()


def test_resolving_needs_an_operator_and_post(viewer_client, operator_client, account, other_account):
    command = make_command(account, state=CommandState.UNKNOWN)
    assert viewer_client.post(f"/commands/{command.code}/resolve/", {"resolution": "delivered"}).status_code == 403
    assert operator_client.get(f"/commands/{command.code}/resolve/").status_code == 405
    theirs = make_command(other_account, state=CommandState.UNKNOWN)
    assert operator_client.post(f"/commands/{theirs.code}/resolve/", {"resolution": "delivered"}).status_code == 404
    command.refresh_from_db()
    assert command.resolution == ""


def test_a_bad_resolution_changes_nothing(operator_client, account):
    command = make_command(account, state=CommandState.UNKNOWN)
    key = key_from(operator_client, f"/commands/{command.code}/")
    response = operator_client.post(f"/commands/{command.code}/resolve/", {"resolution": "maybe", "once": key},
                                    follow=True)
    assert "choose delivered" in response.content.decode()
    command.refresh_from_db()
    assert command.resolution == "" and command.state == CommandState.UNKNOWN


def test_the_dashboard_shows_fleet_size_and_commands_in_flight(viewer_client, account, group):
    make_command(account, state=CommandState.RUNNING)
    body = viewer_client.get("/").content.decode()
    assert "Commands in flight" in body and "0/1" in body
    assert "<dt>Inverters</dt><dd>3</dd>" in body and "This minute" in body
