"""Webhook events (issue 16): a channel subscribes to events; a command that ends sends command.finished
once per channel, with the command exactly as GET /api/v1/commands/{code} answers it; an alert's webhook
carries the API's alert. Commands driven through the simulator, webhooks to a real local HTTP server."""

from __future__ import annotations

import json
import re
import threading
import time

import pytest
from django.core import mail
from django.db import connection, connections, transaction
from django.db.migrations.executor import MigrationExecutor
from django.test import Client

from fleet import events
from fleet.accounts import api_keys
from fleet.alerts import channels, service
from fleet.commands import service as commands
from fleet.commands import tracking
from fleet.commands.targets import Target
from fleet.models import (
    AlertKind,
    AuditEntry,
    Channel,
    ChannelEvent,
    ChannelKind,
    Command,
    CommandState,
    Delivery,
    DeliveryState,
    DeviceResult,
    DeviceState,
    Group,
    Inverter,
    Resolution,
    SafetyEnvelope,
    Severity,
    TargetKind,
)
from tests.conftest import make_member
from tests.fleet.test_alerts import SECRET, _deliver_all, _webhook, drive
from tests.support.once import key_from
from tests.support.webhook_receiver import webhook_receiver

pytestmark = pytest.mark.django_db

SYSTEM_ON = {"superType": 1, "systemSwitch": 1}
FINISHED = ChannelEvent.COMMAND_FINISHED.value


@pytest.fixture(autouse=True)
def _mail_and_private_hooks(settings):  # type: ignore[no-untyped-def]
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True  # the receiver listens on 127.0.0.1


@pytest.fixture
def receiver():  # type: ignore[no-untyped-def]
    with webhook_receiver() as rec:
        yield rec


@pytest.fixture
def read_api(org, admin_user):  # type: ignore[no-untyped-def]
    """GET /api/v1<path> with a read key of the organization; returns the parsed body."""
    _key, plaintext = api_keys.create(org, "webhook check", "read", user=admin_user)
    client = Client()

    def get(path: str) -> object:
        response = client.get("/api/v1" + path, headers={"Authorization": f"Bearer {plaintext}"})
        assert response.status_code == 200, response.content
        return response.json()

    return get


def _command_with_results(account, states, state=CommandState.RUNNING):  # type: ignore[no-untyped-def]
    sns = [f"H4AA{n:010d}" for n in range(len(states))]
    command = Command.objects.create(account=account, kind="inverter_control", target_kind=TargetKind.SELECTION,
                                     sns=sns, action={}, label="System on (2 devices)", devices_total=len(sns),
                                     state=state)
    DeviceResult.objects.bulk_create(DeviceResult(command=command, sn=sn, state=s)
                                     for sn, s in zip(sns, states, strict=True))
    return command


# command.finished through the simulator ---------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_a_finished_command_sends_one_webhook_with_the_apis_command(org, mirrored_fleet, fast_commands, simulator,
                                                                   receiver, read_api):
    subscribed = _webhook(org, receiver.url + "/commands", events=[FINISHED])
    alerts_only = _webhook(org, receiver.url + "/alerts")  # the default events: alert.raised, alert.resolved
    _webhook(org, receiver.url + "/off", events=[FINISHED], enabled=False)
    sn = mirrored_fleet.inverters.order_by("inverter_sn").first().inverter_sn
    command = drive(commands.create_command(mirrored_fleet, Target("inverter", sns=(sn,)), SYSTEM_ON))
    assert command.state == CommandState.SUCCEEDED

    [delivery] = Delivery.objects.all()
    assert (delivery.channel, delivery.command, delivery.event) == (subscribed, command, FINISHED)
    assert [d.state for d in _deliver_all()] == [DeliveryState.SENT]
    [hook] = receiver.received
    assert hook.path.endswith("/commands") and hook.signature_valid(SECRET)
    body = hook.json()
    assert body["event"] == "command.finished" and body["delivery"] == str(delivery.code)
    assert body["command"] == read_api(f"/commands/{command.code}")  # the API's GET body, field for field
    assert body["command"]["state"] == "succeeded" and body["command"]["devices"]["succeeded"] == 1
    assert not Delivery.objects.filter(channel=alerts_only).exists()

    # A later move to another final state (a late answer recounted) sends nothing more.
    DeviceResult.objects.filter(command=command).update(state=DeviceState.FAILED)
    command = tracking.refresh(command)
    assert command.state == CommandState.FAILED
    assert Delivery.objects.filter(command=command).count() == 1
    _deliver_all()
    assert len(receiver.received) == 1


@pytest.mark.django_db(transaction=True)
def test_an_unknown_command_finishes_when_an_operator_decides(org, mirrored_fleet, fast_commands, simulator,
                                                              receiver, operator):
    _webhook(org, receiver.url, events=[FINISHED])
    simulator.sim.configure(faults=[{"kind": "timeout", "endpoint": "single_control", "seconds": 3}])
    fast_commands.SOLAX_READ_TIMEOUT = 1
    sn = mirrored_fleet.inverters.order_by("inverter_sn").first().inverter_sn
    command = drive(commands.create_command(mirrored_fleet, Target("inverter", sns=(sn,)), SYSTEM_ON))
    assert command.state == CommandState.UNKNOWN
    assert not Delivery.objects.exists()  # unknown is not final: an operator decides first
    commands.resolve_unknown(command, Resolution.DELIVERED, user=operator)
    [delivery] = _deliver_all()
    assert delivery.event == FINISHED and delivery.state == DeliveryState.SENT
    assert receiver.received[0].json()["command"]["resolution"] == "delivered"


def test_a_command_that_is_not_final_yet_sends_nothing(org, account, receiver):
    _webhook(org, receiver.url, events=[FINISHED])
    command = _command_with_results(account, [DeviceState.SUCCEEDED, DeviceState.PENDING])
    assert tracking.refresh(command).state not in tracking.FINAL_STATES
    assert not Delivery.objects.exists()
    DeviceResult.objects.filter(command=command).update(state=DeviceState.SUCCEEDED)
    assert tracking.refresh(command).state == CommandState.SUCCEEDED
    assert Delivery.objects.filter(command=command, event=FINISHED).count() == 1


def test_a_rejected_command_finishes_cancelled(org, account, operator, receiver, read_api):
    _webhook(org, receiver.url, events=[FINISHED])
    SafetyEnvelope.objects.create(organization=org, approval_above_devices=1)
    group = Group.objects.create(account=account, remote_id="1", name="North", device_count=2)
    for i in range(2):
        Inverter.objects.create(account=account, group=group, remote_id=str(i), inverter_sn=f"SN{i}", rated_power=5)
    command = commands.create_command(account, Target("group", group=group), SYSTEM_ON, user=operator)
    assert command.state == CommandState.APPROVAL and not Delivery.objects.exists()
    commands.reject_command(command, user=make_member(org, "petra", "operator"))
    [delivery] = _deliver_all()
    assert delivery.command == command and delivery.state == DeliveryState.SENT
    body = receiver.received[0].json()["command"]
    assert body["state"] == "cancelled" and body == read_api(f"/commands/{command.code}")


def test_command_finished_email_has_a_short_subject_and_the_counts(org, account):
    Channel.objects.create(organization=org, kind=ChannelKind.EMAIL, name="Ops", target="ops@example.com",
                           events=[FINISHED])
    command = tracking.refresh(_command_with_results(account, [DeviceState.SUCCEEDED, DeviceState.FAILED]))
    assert command.state == CommandState.PARTIAL
    [delivery] = _deliver_all()
    assert delivery.state == DeliveryState.SENT
    [message] = mail.outbox
    assert message.subject == "[solax-fleet] command System on (2 devices): partial"
    assert "Devices: 2, answered 2, succeeded 1, failed 1." in message.body


# The alert's shape -----------------------------------------------------------------------------------

def test_an_alerts_webhook_carries_the_apis_alert(org, account, receiver, read_api):
    _webhook(org, receiver.url)
    commands_only = _webhook(org, receiver.url + "/commands", events=[FINISHED])
    alert = service.raise_alert(org, AlertKind.SYNC, str(account.code), account=account, title="Sync of Main failed",
                                detail="timeout", severity=Severity.CRITICAL, link="/sync/")
    assert alert is not None
    [delivery] = _deliver_all()
    assert delivery.channel != commands_only and delivery.state == DeliveryState.SENT
    body = receiver.received[0].json()
    assert body["event"] == "alert.raised"
    assert body["alert"] == read_api(f"/alerts/{alert.code}")
    assert body["alert"]["account"] == str(account.code)


def test_a_channel_takes_only_the_alert_events_it_subscribed_to(org, receiver):
    raised_only = _webhook(org, receiver.url, events=[ChannelEvent.ALERT_RAISED])
    service.raise_alert(org, AlertKind.SYNC, "a", title="x", severity=Severity.CRITICAL)
    service.resolve_alerts(org, AlertKind.SYNC, "a", "it ended")
    assert [(d.channel, d.event) for d in Delivery.objects.all()] == [(raised_only, "alert.raised")]


# The form, the list and the audit --------------------------------------------------------------------

def test_the_form_saves_the_events_and_the_change_is_audited(admin_client_, org):
    response = admin_client_.post("/settings/channels/new/", {
        "once": key_from(admin_client_, "/settings/channels/new/"),
        "name": "Bot", "kind": "email", "target": "bot@example.com", "events": ["command.finished"],
        "min_severity": "warning", "enabled": "on"})
    assert response.status_code == 200
    channel = Channel.objects.get()
    assert channel.events == ["command.finished"]
    page = admin_client_.get(f"/settings/channels/{channel.code}/").content.decode()
    ticked = set(re.findall(r'<input type="checkbox" name="events" value="([a-z.]+)"[^>]*\bchecked\b', page))
    assert ticked == {"command.finished"}
    assert admin_client_.post(f"/settings/channels/{channel.code}/", {
        "name": "Bot", "target": "bot@example.com", "events": ["alert.raised", "command.finished"],
        "min_severity": "warning", "enabled": "on"}).status_code == 302
    channel.refresh_from_db()
    assert channel.events == ["alert.raised", "command.finished"]
    listed = admin_client_.get("/settings/channels/").content.decode()
    assert "<code>alert.raised</code>, <code>command.finished</code>" in listed
    created, updated = AuditEntry.objects.filter(organization=org).order_by("pk")
    assert (created.action, updated.action) == ("channel.create", "channel.update")
    assert created.changes["events"] == [None, ["command.finished"]]
    assert updated.changes == {"events": [["command.finished"], ["alert.raised", "command.finished"]]}


@pytest.mark.parametrize(("events", "error"), [
    (["command.started"], "Select a valid choice"),
    (["test"], "Select a valid choice"),
    ([], "Tick at least one event"),
])
def test_the_form_refuses_an_unknown_event_or_none(admin_client_, events, error):
    response = admin_client_.post("/settings/channels/new/", {
        "name": "Bot", "kind": "email", "target": "bot@example.com", "events": events, "min_severity": "warning"})
    assert response.status_code == 400 and error in response.content.decode()
    assert not Channel.objects.exists()


def test_the_delivery_log_names_the_command(admin_client_, org, account):
    channel = Channel.objects.create(organization=org, kind=ChannelKind.EMAIL, name="Ops", target="o@example.com",
                                     events=[FINISHED])
    command = tracking.refresh(_command_with_results(account, [DeviceState.SUCCEEDED, DeviceState.SUCCEEDED]))
    page = admin_client_.get(f"/settings/channels/{channel.code}/").content.decode()
    assert "command.finished" in page and f"/commands/{command.code}/" in page


# Races and the migration -----------------------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_two_workers_finishing_the_same_command_make_one_delivery(org, account):
    if connection.vendor != "postgresql":
        pytest.skip("the race needs PostgreSQL's concurrent transactions")
    channel = _webhook(org, "http://127.0.0.1:9/never", events=[FINISHED])
    command = _command_with_results(account, [DeviceState.SUCCEEDED, DeviceState.SUCCEEDED])
    barrier = threading.Barrier(2)
    signalled: list[str] = []
    errors: list[BaseException] = []

    def heard(sender: object, *, command: Command, previous: str, **_: object) -> None:
        signalled.append(f"{previous}->{command.state}")

    def worker() -> None:
        try:
            row = Command.objects.get(pk=command.pk)  # each worker read it running
            barrier.wait()
            with transaction.atomic():
                tracking.refresh(row)  # running -> succeeded in both: both send the signal
                time.sleep(0.3)  # hold the transaction open: the other worker's write overlaps it
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    events.command_state_changed.connect(heard, weak=False, dispatch_uid="test.heard")
    try:
        threads = [threading.Thread(target=worker) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        events.command_state_changed.disconnect(dispatch_uid="test.heard")
    assert errors == []
    assert signalled == ["running->succeeded", "running->succeeded"]  # both workers finished it
    assert Delivery.objects.filter(channel=channel, command=command, event=FINISHED).count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_inserts_of_the_same_delivery_at_once_make_one(org, account):
    if connection.vendor != "postgresql":
        pytest.skip("the race needs PostgreSQL's concurrent transactions")
    _webhook(org, "http://127.0.0.1:9/never", events=[FINISHED])
    command = _command_with_results(account, [DeviceState.SUCCEEDED], state=CommandState.SUCCEEDED)
    barrier = threading.Barrier(2)
    made: list[int] = []

    def worker() -> None:
        try:
            with transaction.atomic():
                barrier.wait()
                made.append(len(channels.queue_command_finished(org.pk, command)))
                time.sleep(0.3)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(made) == [0, 1] and Delivery.objects.filter(command=command).count() == 1


@pytest.mark.django_db(transaction=True)
def test_existing_channels_keep_the_alert_events():
    executor = MigrationExecutor(connection)
    before, after = [("fleet", "0024_decision_keys")], [("fleet", "0025_webhook_events")]
    try:
        executor.migrate(before)
        old = executor.loader.project_state(before).apps
        org = old.get_model("fleet", "Organization").objects.create(name="Old Org")
        old.get_model("fleet", "Channel").objects.create(organization=org, kind="email", name="Old",
                                                         target="old@example.com")
        executor = MigrationExecutor(connection)
        executor.migrate(after)
        channel = executor.loader.project_state(after).apps.get_model("fleet", "Channel").objects.get(name="Old")
        assert channel.events == ["alert.raised", "alert.resolved"]
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())


def test_the_body_is_compact_signed_json(org, account, receiver):
    _webhook(org, receiver.url, events=[FINISHED])
    tracking.refresh(_command_with_results(account, [DeviceState.SUCCEEDED, DeviceState.SUCCEEDED]))
    _deliver_all()
    [hook] = receiver.received
    assert hook.signature_valid(SECRET) and hook.headers["Content-Type"] == "application/json"
    assert hook.body == json.dumps(hook.json(), separators=(",", ":")).encode()
