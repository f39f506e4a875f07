"""The safety envelope (each rule refuses with its name, nothing queued) and four-eyes approval."""

from __future__ import annotations

import pytest
from django.test import Client

from fleet.commands import service
from fleet.commands.actions import CommandError
from fleet.commands.targets import Target
from fleet.models import ApiCall, Command, CommandState, DeviceState, Group, Inverter, SafetyEnvelope
from tests.conftest import make_member
from tests.support.once import key_in

pytestmark = pytest.mark.django_db
DISCHARGE = {"superType": 2, "mode": 3, "manualMode": 2}
SOC_DISCHARGE = {"superType": 0, "mode": 3, "setType": 1, "targetSoc": 15, "chargerPower": -3000, "timeout": 600}
ON = {"superType": 1, "systemSwitch": 1}


@pytest.fixture
def group(account):  # type: ignore[no-untyped-def]
    group = Group.objects.create(account=account, remote_id="1", name="North", device_count=4)
    for i in range(4):
        Inverter.objects.create(account=account, group=group, remote_id=str(i), inverter_sn=f"SN{i}", rated_power=5)
    return group


def _envelope(org, **limits):  # type: ignore[no-untyped-def]
    return SafetyEnvelope.objects.create(organization=org, **limits)


@pytest.mark.parametrize(("limits", "action", "words"), [
    ({"max_devices": 3}, ON, "at most 3 per command"),
    ({"max_discharge_kw": 15}, DISCHARGE, "20.0 kW rated"),
    ({"min_discharge_soc": 20}, SOC_DISCHARGE, "floor is 20 %"),
    ({"max_remote_timeout": 300}, SOC_DISCHARGE, "at most 300 s"),
])
def test_each_rule_refuses_with_its_name_and_queues_nothing(org, account, group, limits, action, words):
    _envelope(org, **limits)
    with pytest.raises(CommandError) as info:
        service.create_command(account, Target("group", group=group), action)
    assert words in info.value.errors["envelope"]
    assert not Command.objects.exists() and not ApiCall.objects.exists()


def test_within_the_envelope_a_command_goes(org, account, group):
    _envelope(org, max_devices=4, max_discharge_kw=20, min_discharge_soc=10, max_remote_timeout=600)
    command = service.create_command(account, Target("group", group=group), SOC_DISCHARGE)
    assert command.state == CommandState.QUEUED and ApiCall.objects.count() == 1


def test_charging_is_not_a_discharge(org, account, group):
    _envelope(org, max_discharge_kw=1)
    service.create_command(account, Target("group", group=group), {"superType": 2, "mode": 3, "manualMode": 1})


def test_writes_per_device_per_day_guard_the_flash(org, account, group):
    _envelope(org, max_writes_per_device_per_day=2)
    target = Target("selection", sns=("SN0", "SN1"))
    service.create_command(account, target, ON)
    service.create_command(account, Target("selection", sns=("SN0",)), ON)
    with pytest.raises(CommandError) as info:
        service.create_command(account, target, ON)
    assert "SN0 had 2 control writes today" in info.value.errors["envelope"]
    service.create_command(account, Target("selection", sns=("SN1",)), ON)  # SN1 had one


def test_the_plan_names_the_rule(operator_client, org, account, group):
    _envelope(org, max_devices=2)
    response = operator_client.post(f"/commands/new/?account={account.code}",
                                    {"target": "group", "group": str(group.code), "superType": "1",
                                     "systemSwitch": "1"})
    assert response.status_code == 400 and "at most 2 per command" in response.content.decode()


def test_a_big_command_waits_for_a_second_operator(org, account, group, operator, operator_client):
    _envelope(org, approval_above_devices=3)
    data = {"target": "group", "group": str(group.code), "superType": "1", "systemSwitch": "1"}
    plan = operator_client.post(f"/commands/new/?account={account.code}", data)
    assert "a second operator approves" in plan.content.decode()
    operator_client.post(f"/commands/new/?account={account.code}", {**data, "confirm": "yes", "once": key_in(plan)})
    command = Command.objects.get()
    assert command.state == CommandState.APPROVAL and not ApiCall.objects.exists()
    # the one who asked cannot approve
    operator_client.post(f"/commands/{command.code}/approve/", {"decision": "approve"})
    assert Command.objects.get().state == CommandState.APPROVAL and not ApiCall.objects.exists()
    second = make_member(org, "petra", "operator")
    client = Client()
    client.force_login(second)
    page = client.get(f"/commands/{command.code}/").content.decode()
    assert "Approve and send" in page and command.label in client.get("/approvals/").content.decode()
    client.post(f"/commands/{command.code}/approve/", {"decision": "approve"})
    command.refresh_from_db()
    assert command.state == CommandState.QUEUED and command.approved_by == second
    call = ApiCall.objects.get()
    assert call.endpoint == "group_control" and call.params["groupId"] == "1"
    with pytest.raises(CommandError):
        service.approve_command(command, user=second)


def test_a_rejected_command_sends_nothing(org, account, group, operator):
    _envelope(org, approval_above_devices=1)
    command = service.create_command(account, Target("group", group=group), ON, user=operator)
    checker = make_member(org, "petra", "operator")
    service.reject_command(command, user=checker)
    command.refresh_from_db()
    assert command.state == CommandState.CANCELLED and not ApiCall.objects.exists()
    assert set(command.results.values_list("state", flat=True)) == {DeviceState.NOT_SENT}


def test_viewers_cannot_approve_and_other_organizations_get_404(org, account, group, viewer_client, other_account):
    _envelope(org, approval_above_devices=1)
    command = service.create_command(account, Target("group", group=group), ON)
    assert viewer_client.post(f"/commands/{command.code}/approve/", {"decision": "approve"}).status_code == 403
    theirs = Group.objects.create(account=other_account, remote_id="9", name="T")
    Inverter.objects.create(account=other_account, group=theirs, remote_id="9", inverter_sn="T9")
    other = service.create_command(other_account, Target("group", group=theirs), ON)
    owner = make_member(org, "petra", "operator")
    client = Client()
    client.force_login(owner)
    assert client.post(f"/commands/{other.code}/approve/", {"decision": "approve"}).status_code == 404


def test_admins_edit_the_envelope_and_bad_values_are_form_errors(admin_client_, operator_client, org):
    assert operator_client.get("/settings/safety/").status_code == 403
    assert admin_client_.post("/settings/safety/", {"min_discharge_soc": "150"}).status_code == 400
    assert not SafetyEnvelope.objects.exists()
    assert admin_client_.post("/settings/safety/", {"max_devices": "500", "approval_above_devices": "100"}
                              ).status_code == 302
    envelope = SafetyEnvelope.objects.get(organization=org)
    assert (envelope.max_devices, envelope.approval_above_devices, envelope.max_discharge_kw) == (500, 100, None)


def test_approval_is_refused_too_late_or_outside_a_tightened_envelope(org, account, group, operator):
    from datetime import timedelta

    from django.utils import timezone

    envelope = _envelope(org, approval_above_devices=1)
    late = service.create_command(account, Target("group", group=group), ON, user=operator,
                                  start_by=timezone.now() - timedelta(seconds=1))
    checker = make_member(org, "petra", "operator")
    with pytest.raises(CommandError, match="too late"):
        service.approve_command(late, user=checker)
    waiting = service.create_command(account, Target("group", group=group), DISCHARGE, user=operator)
    envelope.max_discharge_kw = 10
    envelope.save()
    with pytest.raises(CommandError) as info:
        service.approve_command(waiting, user=checker)
    assert "kW" in info.value.errors["envelope"] and not ApiCall.objects.exists()
