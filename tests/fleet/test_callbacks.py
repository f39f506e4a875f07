"""EV callbacks: real ones from the simulator through live_server, and every bad input."""

from __future__ import annotations

import json
import logging
import time

import pytest
from django.test import Client

from fleet.commands import service, tracking
from fleet.commands.targets import Target
from fleet.models import (
    ApiCall,
    CallbackReceipt,
    Charger,
    Command,
    CommandBatch,
    CommandState,
    DeviceResult,
    DeviceState,
)
from fleet.pipeline import dispatch, queue
from tests.conftest import make_member

from .test_command_tracking import drive

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def callbacks_here(live_server, settings):  # type: ignore[no-untyped-def]
    settings.PUBLIC_BASE_URL = live_server.url
    return live_server


def _online_chargers(simulator) -> tuple[str, ...]:  # type: ignore[no-untyped-def]
    return tuple(sorted(sn for sn, c in simulator.sim.tenant().chargers.items() if c.online))


def test_callbacks_settle_each_charger(mirrored_fleet, fast_commands, simulator, callbacks_here):
    simulator.sim.configure(callback_drop_rate=0.0, callback_duplicate_rate=1.0, callback_late_rate=0.0)
    sns = _online_chargers(simulator)
    command = service.create_command(mirrored_fleet, Target("chargers", sns=sns), {"chargerMode": 2})
    command = drive(command)
    assert command.state == CommandState.SUCCEEDED, list(command.results.values("sn", "state", "answer"))
    assert command.devices_succeeded == len(sns)
    for sn in sns:
        assert simulator.sim.device(sn)["mode"] == 2
    # the chargers' own confirmations show the mode at once, without a status read (issue 12)
    for charger in Charger.objects.filter(account=mirrored_fleet, sn__in=sns):
        assert charger.mode == 2 and charger.mode_confirmed_at is not None and charger.read_at is None
    shown = Client()
    shown.force_login(make_member(mirrored_fleet.organization, "vic", "viewer"))
    page = shown.get(f"/chargers/{Charger.objects.get(account=mirrored_fleet, sn=sns[0]).code}/")
    assert b"ECO, confirmed by the charger " in page.content
    # every callback came twice; each (task, kind, SN) is kept once
    receipts = CallbackReceipt.objects.filter(account=mirrored_fleet)
    assert receipts.filter(rsp_type=2).count() == len(sns)
    assert not ApiCall.objects.filter(origin_code=command.code, endpoint="pile_info").exists()
    # the callback address is a secret: the cloud got it, the ledger (readable by viewers) did not
    for call in ApiCall.objects.filter(origin_code=command.code, endpoint="pile_cmd"):
        assert "callbackUrl" not in call.params
        assert mirrored_fleet.get_callback_secret() not in str(call.params) + call.response + call.error


def test_offline_chargers_time_out_and_unknown_ones_fail(mirrored_fleet, fast_commands, simulator, callbacks_here):
    simulator.sim.configure(callback_drop_rate=0.0, callback_duplicate_rate=0.0, callback_late_rate=0.0)
    chargers = simulator.sim.tenant().chargers
    offline = [sn for sn, c in chargers.items() if not c.online]
    assert offline
    command = service.create_command(mirrored_fleet, Target("chargers", sns=tuple(chargers)), {"chargerMode": 1})
    command = drive(command)
    assert command.state == CommandState.PARTIAL
    silent = command.results.filter(sn__in=offline)
    assert {r.state for r in silent} <= {DeviceState.NO_ANSWER, DeviceState.FAILED}
    assert all(r.answer for r in command.results.all())


def test_missing_callbacks_are_checked_with_pile_info(mirrored_fleet, fast_commands, simulator, callbacks_here):
    simulator.sim.configure(callback_drop_rate=1.0)
    sns = _online_chargers(simulator)[:2]
    command = service.create_command(mirrored_fleet, Target("chargers", sns=sns), {"chargerMode": 3})
    command = drive(command)
    assert command.state == CommandState.SUCCEEDED
    checks = ApiCall.objects.filter(origin_code=command.code, endpoint="pile_info")
    assert checks.count() == len(sns)  # one check per charger, not a poll loop
    assert all("getPileInfo reports mode Green" in r.answer for r in command.results.all())


def test_a_late_callback_still_counts_after_expiry(mirrored_fleet, fast_commands, simulator, callbacks_here):
    fast_commands.COMMAND_EXPIRY_SECONDS = 10
    fast_commands.COMMAND_CALLBACK_GRACE_SECONDS = 60  # no getPileInfo: the late callback must do it
    simulator.sim.configure(callback_drop_rate=0.0, callback_late_rate=1.0, callback_late_delay=1.5,
                            callback_duplicate_rate=0.0)
    sn = _online_chargers(simulator)[0]
    command = service.create_command(mirrored_fleet, Target("chargers", sns=(sn,)), {"chargerMode": 1})
    dispatch.pump(mirrored_fleet.pk, wait=False)
    CommandBatch.objects.filter(command=command).update(deadline=command.created)  # the batch's deadline passes
    tracking.tick()
    command.refresh_from_db()
    assert command.state == CommandState.EXPIRED
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline and command.state == CommandState.EXPIRED:
        time.sleep(0.1)
        command.refresh_from_db()
    assert command.state == CommandState.SUCCEEDED


# Bad input: 4xx, nothing changed, a log line without the secret ------------------------------

@pytest.fixture
def pile_task(mirrored_fleet, fast_commands, simulator):  # type: ignore[no-untyped-def]
    from fleet.models import CommandBatch

    sn = _online_chargers(simulator)[0]
    command = service.create_command(mirrored_fleet, Target("chargers", sns=(sn,)), {"chargerMode": 2})
    CommandBatch.objects.filter(command=command).update(task_id="abc123", state=CommandState.RUNNING)
    return command, sn


def _post(client, account, body, secret=None):  # type: ignore[no-untyped-def]
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return client.post(f"/solax/callback/{secret or account.get_callback_secret()}/", data=data,
                       content_type="application/json")


def _unchanged(command: Command) -> None:
    assert not CallbackReceipt.objects.exists()
    assert set(DeviceResult.objects.filter(command=command).values_list("state", flat=True)) == {DeviceState.PENDING}


def test_a_good_callback_is_applied_once(client, pile_task, mirrored_fleet):
    command, sn = pile_task
    body = {"rspType": 2, "taskId": "abc123", "success": True, "code": "0", "result": {"sn": sn, "ack": "ok"}}
    assert _post(client, mirrored_fleet, body).status_code == 200
    again = _post(client, mirrored_fleet, body)
    assert again.status_code == 200 and again.json()["detail"] == "duplicate"
    assert CallbackReceipt.objects.count() == 1
    assert DeviceResult.objects.get(command=command).state == DeviceState.SUCCEEDED


@pytest.mark.parametrize("body,status", [
    (b"{not json", 400),
    ({"rspType": 9, "taskId": "abc123"}, 400),
    ({"rspType": 2, "taskId": "nosuchtask", "code": "0", "result": {"sn": "C1"}}, 404),
])
def test_bad_callbacks_are_refused(client, pile_task, mirrored_fleet, caplog, body, status):
    command, _ = pile_task
    with caplog.at_level(logging.WARNING, logger="fleet.callbacks"):
        response = _post(client, mirrored_fleet, body)
    assert response.status_code == status
    _unchanged(command)
    assert "refused" in caplog.text and mirrored_fleet.get_callback_secret() not in caplog.text


def test_the_wrong_secret_is_refused(client, pile_task, mirrored_fleet, caplog):
    command, sn = pile_task
    body = {"rspType": 2, "taskId": "abc123", "code": "0", "result": {"sn": sn}}
    with caplog.at_level(logging.WARNING, logger="fleet.callbacks"):
        assert _post(client, mirrored_fleet, body, secret="wrong-secret-value").status_code == 404
    _unchanged(command)
    assert "wrong-secret-value" not in caplog.text


def test_an_oversized_body_is_refused(client, pile_task, mirrored_fleet, settings, caplog):
    command, sn = pile_task
    body = json.dumps({"rspType": 2, "taskId": "abc123", "code": "0", "result": {"sn": sn},
                       "pad": "x" * settings.CALLBACK_MAX_BYTES})
    with caplog.at_level(logging.WARNING, logger="fleet.callbacks"):
        assert _post(client, mirrored_fleet, body).status_code == 413
    _unchanged(command)
    assert mirrored_fleet.get_callback_secret() not in caplog.text


def test_the_callback_takes_only_post_and_needs_no_csrf(pile_task, mirrored_fleet):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    assert strict.get(f"/solax/callback/{mirrored_fleet.get_callback_secret()}/").status_code == 405
    body = {"rspType": 1, "taskId": "abc123", "code": "0", "result": {"failureList": []}}
    assert _post(strict, mirrored_fleet, body).status_code == 200


@pytest.mark.parametrize("method", ["get", "head", "put", "patch", "delete", "options"])
def test_no_method_but_post_is_served_and_none_logs_the_secret(client, pile_task, mirrored_fleet, caplog, method):
    caplog.set_level("DEBUG")
    response = getattr(client, method)(f"/solax/callback/{mirrored_fleet.get_callback_secret()}/")
    assert response.status_code == 405
    assert mirrored_fleet.get_callback_secret() not in caplog.text


def test_the_ledger_refuses_to_store_a_callback_url(mirrored_fleet):
    with pytest.raises(ValueError, match="send time"):
        queue.enqueue(mirrored_fleet, "pile_cmd", {"sns": ["X"], "callbackUrl": "https://x/solax/callback/s/"})
