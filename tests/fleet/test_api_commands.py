"""The REST API's decisions on a command (POST /api/v1/commands/{code}/cancel, approve, reject, resolve,
resume, retry): the same services as the command pages, an operate key (403 for a read key), the
organization's commands only (404), 409 problems for a decision that does not apply (a repeated one
too), 422 naming the body's fields, four eyes with a key counting as its maker, the audit log, and two
keys deciding at once (one decision takes effect)."""

from __future__ import annotations

import threading
import time as clock

import pytest
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone

from fleet.accounts import api_keys
from fleet.commands import service, tracking
from fleet.commands.rollout import RolloutSpec
from fleet.commands.targets import Target
from fleet.models import (
    ApiCall,
    AuditEntry,
    CallState,
    Command,
    CommandBatch,
    CommandState,
    DeviceResult,
    DeviceState,
    Group,
    Inverter,
    Resolution,
    RolloutStage,
    SafetyEnvelope,
)
from tests.conftest import make_member
from tests.fleet.test_api import Api, _problem
from tests.fleet.test_command_rollout import _batch_controls, _online, _stage, until

pytestmark = pytest.mark.django_db
ON = {"superType": 1, "systemSwitch": 1}
DECISIONS = ("cancel", "approve", "reject", "resume", "retry")


@pytest.fixture
def operate_key(org, admin_user):  # type: ignore[no-untyped-def]
    return api_keys.create(org, "trading bot", "operate", user=admin_user)


@pytest.fixture
def api(operate_key) -> Api:  # type: ignore[no-untyped-def]
    return Api(operate_key[1])


@pytest.fixture
def group(account):  # type: ignore[no-untyped-def]
    group = Group.objects.create(account=account, remote_id="1001", name="North", device_count=3)
    for i in range(3):
        Inverter.objects.create(account=account, group=group, remote_id=f"50{i}", inverter_sn=f"H4AA000000000{i}",
                                dongle_sn=f"SWAA00000{i}")
    return group


@pytest.fixture
def four_eyes(org):  # type: ignore[no-untyped-def]
    """Every command of more than one device waits for a second operator."""
    return SafetyEnvelope.objects.create(organization=org, approval_above_devices=1)


def _send(api: Api, group: Group) -> Command:
    response = api.post("/commands", {"target": {"kind": "group", "group": str(group.code)}, "action": ON})
    assert response.status_code == 201, response.content
    return Command.objects.get(code=response.json()["code"])


def _settle(command: Command, state: str, sns: list[str] | None = None) -> Command:
    """The devices (all, or ``sns``) answered ``state`` after their batches left, as the tracker records it."""
    with transaction.atomic():
        results = DeviceResult.objects.filter(command=command)
        if sns is not None:
            results = results.filter(sn__in=sns)
        results.update(state=state, answer="by the test", answered_at=timezone.now())
        CommandBatch.objects.filter(command=command, call__isnull=False).update(state=CommandState.RUNNING)
        tracking.refresh(Command.objects.get(pk=command.pk))
    return Command.objects.get(pk=command.pk)


def _audit(action: str) -> AuditEntry:
    return AuditEntry.objects.get(action=action)


# Cancel -----------------------------------------------------------------------------------------

def test_cancel_stops_the_unsent_calls_and_a_second_cancel_is_409(api, account, group):
    command = _send(api, group)
    response = api.post(f"/commands/{command.code}/cancel")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["code"] == str(command.code) and body["state"] == "cancelled"
    assert body["url"] == f"/api/v1/commands/{command.code}"
    assert ApiCall.objects.get().state == CallState.CANCELLED
    assert set(command.results.values_list("state", "answer")) == {
        (DeviceState.NOT_SENT, "not sent: cancelled by API key trading bot")}
    entry = _audit("command.cancel")
    assert entry.actor_label == "api key 'trading bot'" and entry.address == "127.0.0.1"
    assert entry.object_code == str(command.code) and entry.object_name == command.label
    assert entry.changes == {"state": ["queued", "cancelled"], "batches cancelled": [None, 1]}
    again = _problem(api.post(f"/commands/{command.code}/cancel"), 409)
    assert "sent or cancelled already" in again["detail"]
    assert AuditEntry.objects.filter(action="command.cancel").count() == 1


def test_a_command_that_awaits_approval_is_rejected_not_cancelled(api, account, group, four_eyes):
    command = _send(api, group)
    assert command.state == CommandState.APPROVAL
    assert "reject it" in _problem(api.post(f"/commands/{command.code}/cancel"), 409)["detail"]
    assert Command.objects.get().state == CommandState.APPROVAL


# Four eyes ---------------------------------------------------------------------------------------

def test_a_key_approves_a_persons_command_and_the_page_says_which_key(api, account, group, four_eyes, operator,
                                                                     admin_user):
    command = service.create_command(account, Target("group", group=group), ON, user=operator)
    assert command.state == CommandState.APPROVAL and not ApiCall.objects.exists()
    response = api.post(f"/commands/{command.code}/approve")
    assert response.status_code == 200, response.content
    assert response.json()["state"] == "queued"
    command.refresh_from_db()
    assert command.approved_by is None and command.approved_by_key.name == "trading bot"
    assert ApiCall.objects.get().endpoint == "group_control"
    entry = _audit("command.approve")
    assert entry.actor_label == "api key 'trading bot'" and entry.changes == {"state": ["approval", "queued"]}
    assert "does not wait for an approval" in _problem(api.post(f"/commands/{command.code}/approve"), 409)["detail"]
    assert ApiCall.objects.count() == 1
    page = Client()
    page.force_login(admin_user)
    assert "by API key “trading bot”" in page.get(f"/commands/{command.code}/").content.decode()


def test_a_key_never_approves_what_it_or_its_maker_asked(api, org, account, group, four_eyes, admin_user,
                                                         operator):
    own = _send(api, group)  # the key's own command
    refused = _problem(api.post(f"/commands/{own.code}/approve"), 403)
    assert "second operator" in refused["detail"] and "the person who made it" in refused["detail"]
    makers = service.create_command(account, Target("group", group=group), ON, user=admin_user)
    assert "second operator" in _problem(api.post(f"/commands/{makers.code}/approve"), 403)["detail"]
    sibling = Api(api_keys.create(org, "second bot", "operate", user=admin_user)[1])  # the same maker's
    _problem(sibling.post(f"/commands/{own.code}/approve"), 403)
    # the maker on the pages may not approve what their key asked either
    page = Client()
    page.force_login(admin_user)
    page.post(f"/commands/{own.code}/approve/", {"decision": "approve"})
    assert not ApiCall.objects.exists() and not AuditEntry.objects.filter(action="command.approve").exists()
    # another person's key approves
    others = Api(api_keys.create(org, "otto's bot", "operate", user=operator)[1])
    assert others.post(f"/commands/{own.code}/approve").json()["state"] == "queued"
    assert Command.objects.get(pk=own.pk).approved_by_key.name == "otto's bot"
    # and a key made by nobody in particular approves a person's command
    anonymous = Api(api_keys.create(org, "ops", "operate")[1])
    assert anonymous.post(f"/commands/{makers.code}/approve").status_code == 200


def test_approval_refused_by_the_envelope_now_is_409(api, account, group, four_eyes, operator):
    waiting = service.create_command(account, Target("group", group=group), ON, user=operator)
    four_eyes.max_devices = 2
    four_eyes.save()
    assert "at most 2" in _problem(api.post(f"/commands/{waiting.code}/approve"), 409)["detail"]
    assert Command.objects.get(pk=waiting.pk).state == CommandState.APPROVAL and not ApiCall.objects.exists()


def test_reject_sends_nothing_and_the_asker_may_reject(api, account, group, four_eyes):
    command = _send(api, group)
    response = api.post(f"/commands/{command.code}/reject")
    assert response.status_code == 200 and response.json()["state"] == "cancelled"
    command.refresh_from_db()
    assert command.approved_by_key.name == "trading bot" and not ApiCall.objects.exists()
    assert set(command.results.values_list("answer", flat=True)) == {"not sent: rejected by API key trading bot"}
    assert _audit("command.reject").changes == {"state": ["approval", "cancelled"]}
    _problem(api.post(f"/commands/{command.code}/reject"), 409)


# Resolve -----------------------------------------------------------------------------------------

def test_resolve_records_the_operators_word_once(api, account, group):
    command = _settle(_send(api, group), DeviceState.UNKNOWN)
    assert command.state == CommandState.UNKNOWN
    response = api.post(f"/commands/{command.code}/resolve", {"resolution": "delivered"})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["resolution"] == "delivered" and body["state"] == "succeeded" and body["sent_again"] is None
    command.refresh_from_db()
    assert command.resolved_by is None and command.resolved_by_key.name == "trading bot"
    assert set(command.results.values_list("answer", flat=True)) == {"marked delivered by API key trading bot"}
    assert _audit("command.resolve").changes == {"resolution": ["", "delivered"]}
    assert "does not wait for a decision" in _problem(
        api.post(f"/commands/{command.code}/resolve", {"resolution": "not_delivered"}), 409)["detail"]
    assert Command.objects.get(pk=command.pk).resolution == Resolution.DELIVERED


def test_resolve_sent_again_answers_the_new_command(api, account, group):
    command = _settle(_send(api, group), DeviceState.UNKNOWN, ["H4AA0000000001"])
    response = api.post(f"/commands/{command.code}/resolve", {"resolution": "sent_again"})
    assert response.status_code == 200, response.content
    again = Command.objects.get(retry_of=command)
    assert response.json()["sent_again"]["code"] == str(again.code)
    assert again.source == "resend" and again.api_key.name == "trading bot" and again.created_from == "127.0.0.1"
    assert _audit("command.resolve").changes["sent again as"] == [None, str(again.code)]


def test_a_command_that_is_not_unknown_is_not_resolved(api, account, group):
    command = _send(api, group)
    _problem(api.post(f"/commands/{command.code}/resolve", {"resolution": "delivered"}), 409)
    assert not AuditEntry.objects.filter(action="command.resolve").exists()


@pytest.mark.parametrize(("body", "field"), [
    ({}, "resolution"), ({"resolution": "maybe"}, "resolution"), ({"resolution": "delivered", "why": 1}, "why"),
])
def test_a_bad_resolution_is_422_naming_the_field(api, account, group, body, field):
    command = _settle(_send(api, group), DeviceState.UNKNOWN)
    problem = _problem(api.post(f"/commands/{command.code}/resolve", body), 422)
    assert field in [error["field"] for error in problem["errors"]]
    assert Command.objects.get(pk=command.pk).resolution == ""


# Resume a staged rollout --------------------------------------------------------------------------

def _halted(account: object, group: Group) -> Command:
    sns = tuple(group.members.order_by("inverter_sn").values_list("inverter_sn", flat=True))
    command = service.create_command(account, Target("selection", sns=sns), ON,  # type: ignore[arg-type]
                                     staged=RolloutSpec(1, "devices", 10))
    canary = list(DeviceResult.objects.filter(command=command, batch__canary=True).values_list("sn", flat=True))
    command = _settle(command, DeviceState.FAILED, canary)
    assert command.rollout_stage == RolloutStage.HALTED, command.rollout_note
    return command


def test_resume_continues_a_halted_rollout_once(api, account, group):
    command = _halted(account, group)
    held = CommandBatch.objects.filter(command=command, canary=False)
    assert not held.filter(call__isnull=False).exists()
    response = api.post(f"/commands/{command.code}/resume")
    assert response.status_code == 200, response.content
    assert response.json()["code"] == str(command.code)
    command.refresh_from_db()
    assert command.rollout_stage == RolloutStage.CONTINUED and command.rollout_decided_by_key.name == "trading bot"
    assert command.rollout_note.endswith("resumed by API key trading bot")
    assert not held.filter(call__isnull=True).exists()
    assert _audit("command.continue").changes == {"rollout stage": ["halted", "continued"]}
    assert "already continued (by API key trading bot)" in _problem(
        api.post(f"/commands/{command.code}/resume"), 409)["detail"]


def test_a_command_without_a_waiting_rollout_is_not_resumed(api, account, group):
    assert "does not wait for an operator" in _problem(
        api.post(f"/commands/{_send(api, group).code}/resume"), 409)["detail"]


def test_the_page_records_its_resume_in_the_audit_log_too(account, group, operator_client):
    command = _halted(account, group)
    operator_client.post(f"/commands/{command.code}/rollout/")
    entry = _audit("command.continue")
    assert entry.actor_label == "otto" and entry.object_code == str(command.code)
    assert entry.changes == {"rollout stage": ["halted", "continued"]}


# Retry the failed devices -------------------------------------------------------------------------

def test_retry_sends_the_action_again_to_the_failed_devices(api, account, group):
    command = _send(api, group)
    _problem(api.post(f"/commands/{command.code}/retry"), 409)  # still queued
    command = _settle(command, DeviceState.SUCCEEDED)
    command = _settle(command, DeviceState.FAILED, ["H4AA0000000000", "H4AA0000000002"])
    assert command.state == CommandState.PARTIAL
    response = api.post(f"/commands/{command.code}/retry", **{"Idempotency-Key": "retry-1"})
    assert response.status_code == 201, response.content
    retry = Command.objects.get(retry_of=command)
    assert response.json()["code"] == str(retry.code) and response.json()["source"] == "retry"
    assert sorted(retry.sns) == ["H4AA0000000000", "H4AA0000000002"] and retry.action == command.action
    assert retry.api_key.name == "trading bot" and retry.state == CommandState.QUEUED
    entry = AuditEntry.objects.get(action="command.create", object_code=str(retry.code))
    assert entry.changes["retry_of"] == [None, str(command.code)]
    # the same request again is the same retry; another key is another retry
    again = api.post(f"/commands/{command.code}/retry", **{"Idempotency-Key": "retry-1"})
    assert again.status_code == 200 and again.json()["code"] == str(retry.code)
    assert Command.objects.filter(retry_of=command).count() == 1
    assert api.post(f"/commands/{command.code}/retry").status_code == 201
    assert Command.objects.filter(retry_of=command).count() == 2


def test_a_command_without_failures_is_not_retried(api, account, group):
    command = _settle(_send(api, group), DeviceState.SUCCEEDED)
    assert "no device of this command failed" in _problem(api.post(f"/commands/{command.code}/retry"),
                                                          409)["detail"]
    assert not Command.objects.filter(retry_of=command).exists()


# Who may decide ------------------------------------------------------------------------------------

@pytest.mark.parametrize("decision", [*DECISIONS, "resolve"])
def test_a_read_key_is_403_no_key_401_and_another_organizations_command_404(org, account, group, api, decision,
                                                                           other_account):
    command = _send(api, group)
    body = {"resolution": "delivered"} if decision == "resolve" else None
    read = Api(api_keys.create(org, "dashboard", "read")[1])
    assert "operate scope" in _problem(read.post(f"/commands/{command.code}/{decision}", body), 403)["detail"]
    _problem(Api(None).post(f"/commands/{command.code}/{decision}", body), 401)
    theirs = Group.objects.create(account=other_account, remote_id="9", name="Theirs")
    Inverter.objects.create(account=other_account, group=theirs, remote_id="99", inverter_sn="H4ZZ00000001")
    other = service.create_command(other_account, Target("group", group=theirs), ON)
    _problem(api.post(f"/commands/{other.code}/{decision}", body), 404)
    assert Command.objects.get(pk=other.pk).state == CommandState.QUEUED
    assert ApiCall.objects.get(account=other_account).state == CallState.QUEUED
    assert not AuditEntry.objects.exclude(action="command.create").exists()


def test_the_decisions_are_in_the_openapi_document():
    paths = Client().get("/api/v1/openapi.json").json()["paths"]
    for decision in (*DECISIONS, "resolve"):
        operation = paths[f"/api/v1/commands/{{code}}/{decision}"]["post"]
        assert {"200", "401", "403", "404", "409"} <= set(operation["responses"]), decision
    assert "422" in paths["/api/v1/commands/{code}/resolve"]["post"]["responses"]
    assert "requestBody" in paths["/api/v1/commands/{code}/resolve"]["post"]


# Two keys at once (PostgreSQL) ----------------------------------------------------------------------

def _race(keys: list[str], path: str) -> list[object]:
    barrier = threading.Barrier(len(keys))
    answers: list[object] = []

    def submit(key: str) -> None:
        try:
            own = Api(key)
            barrier.wait()
            answers.append(own.post(path))
        except Exception as exc:  # noqa: BLE001 - reported by the assertions
            answers.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=submit, args=(key,)) for key in keys]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return answers


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
@pytest.mark.parametrize("decision", ["approve", "cancel"])
def test_two_keys_deciding_at_once_decide_once(org, account, group, operator, monkeypatch, decision):
    """Two threads, two connections, real commits: the second waits for the command's row lock, then
    finds the decision taken (409). PostgreSQL with DATABASE_URL; SQLite's one writer serialises them."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite serialises the two requests before they can race")
    SafetyEnvelope.objects.create(organization=org, approval_above_devices=1 if decision == "approve" else None)
    command = service.create_command(account, Target("group", group=group), ON, user=operator)
    slow_down = "safety" if decision == "approve" else "cancel_unsent"
    if slow_down == "safety":
        real_check = service.safety.check

        def slow_check(*args, **kwargs):  # type: ignore[no-untyped-def]
            clock.sleep(0.3)  # hold the row lock while the other request arrives
            return real_check(*args, **kwargs)

        monkeypatch.setattr(service.safety, "check", slow_check)
    else:
        real_cancel = service.cancel_unsent

        def slow_cancel(*args, **kwargs):  # type: ignore[no-untyped-def]
            clock.sleep(0.3)
            return real_cancel(*args, **kwargs)

        monkeypatch.setattr(service, "cancel_unsent", slow_cancel)
    keys = [api_keys.create(org, name, "operate", user=make_member(org, name, "operator"))[1]
            for name in ("bea", "cy")]
    answers = _race(keys, f"/commands/{command.code}/{decision}")
    assert sorted(getattr(a, "status_code", None) for a in answers) == [200, 409], answers
    command.refresh_from_db()
    assert AuditEntry.objects.filter(action=f"command.{decision}").count() == 1
    if decision == "approve":
        assert command.state == CommandState.QUEUED and ApiCall.objects.count() == 1
    else:
        assert command.state == CommandState.CANCELLED
        assert ApiCall.objects.get().state == CallState.CANCELLED


# End to end against the simulator ------------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_a_key_resumes_a_rollout_the_simulator_halted_and_the_rest_is_sent(mirrored_fleet, fast_commands,
                                                                          simulator, org, operator):
    """Over real HTTP: the canary fails at the simulator, the rollout halts, a key resumes it and the
    simulator receives the held batches and answers them."""
    mirrored_fleet.max_sns_per_call = 2
    mirrored_fleet.save()
    simulator.sim.configure(device_failure_rate=1.0)
    command = service.create_command(mirrored_fleet, Target("selection", sns=_online(simulator, mirrored_fleet, 6)),
                                     ON, user=operator, staged=RolloutSpec(2, "devices", 10))
    command = until(command, _stage(RolloutStage.HALTED))
    assert command.rollout_stage == RolloutStage.HALTED and _batch_controls(simulator) == 1
    simulator.sim.configure(device_failure_rate=0.0)
    api = Api(api_keys.create(org, "rollout bot", "operate")[1])
    response = api.post(f"/commands/{command.code}/resume")
    assert response.status_code == 200, response.content
    command = until(command, lambda c: c.state in tracking.FINAL_STATES)
    assert command.state == CommandState.PARTIAL and command.devices_succeeded == 4
    assert _batch_controls(simulator) == 3  # the canary's call, then the two held ones
    assert "resumed by API key rollout bot" in command.rollout_note
