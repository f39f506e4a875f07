"""Alerts raised once per episode and resolved by themselves, driven where possible by the
simulator's faults over real HTTP; deliveries to a real webhook receiver and the locmem mailbox."""

from __future__ import annotations

import json
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from datetime import time as dtime

import pytest
from cryptography.fernet import Fernet
from django.core import mail
from django.db import connection, connections
from django.utils import timezone

from fleet import tasks
from fleet.alerts import channels, service
from fleet.alerts.tasks import deliver_alert
from fleet.commands import service as commands
from fleet.commands import tracking
from fleet.commands.targets import Target
from fleet.mirror import sync
from fleet.models import (
    Alert,
    AlertKind,
    AlertState,
    ApiCall,
    CallState,
    Channel,
    ChannelKind,
    Command,
    CommandState,
    Delivery,
    DeliveryState,
    DeviceResult,
    DeviceState,
    Group,
    Inverter,
    PlanEdge,
    PriceRule,
    PriceZone,
    Resolution,
    Schedule,
    Severity,
    SyncRun,
    TargetKind,
)
from fleet.pipeline import dispatch, queue
from fleet.prices import service as prices
from fleet.schedules import service as schedules
from tests.fleet.test_prices_service import EVENING_BEFORE, _store
from tests.support.webhook_receiver import webhook_receiver

pytestmark = pytest.mark.django_db

SECRET = "whsec_test-secret-for-the-receiver"
FORCED_CHARGE = {"superType": 2, "mode": 3, "manualMode": 1}


@pytest.fixture(autouse=True)
def _mail_and_private_hooks(settings):  # type: ignore[no-untyped-def]
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True  # the receiver listens on 127.0.0.1


@pytest.fixture
def receiver():  # type: ignore[no-untyped-def]
    with webhook_receiver() as rec:
        yield rec


def _webhook(org, url, **fields):  # type: ignore[no-untyped-def]
    channel = Channel(organization=org, kind=ChannelKind.WEBHOOK, name="Ops hook", target=url, **fields)
    channel.set_secret(SECRET)
    channel.save()
    return channel


def _deliver_all() -> list[Delivery]:
    """What the Celery worker does after the commit: run each pending delivery's task body."""
    for delivery in Delivery.objects.filter(state__in=[DeliveryState.PENDING, DeliveryState.RETRYING]):
        deliver_alert.run(delivery.pk)
    return list(Delivery.objects.order_by("pk"))


def _paused_alert(org):  # type: ignore[no-untyped-def]
    return Alert.objects.get(organization=org, kind=AlertKind.ACCOUNT_PAUSED)


# Raising once per episode -----------------------------------------------------------------------

def test_an_episode_is_raised_once_and_a_new_one_after_it_resolved(org, account):
    first = service.raise_alert(org, AlertKind.SYNC, "x", title="Sync failed", severity=Severity.WARNING)
    assert first is not None
    assert service.raise_alert(org, AlertKind.SYNC, "x", title="Sync failed again", severity=Severity.CRITICAL) is None
    alert = Alert.objects.get()
    assert (alert.title, alert.severity) == ("Sync failed again", Severity.CRITICAL)  # text current, severity up
    assert service.raise_alert(org, AlertKind.SYNC, "x", title="milder", severity=Severity.INFO) is None
    assert Alert.objects.get().severity == Severity.CRITICAL  # never lowered within the episode
    assert service.resolve_alerts(org, AlertKind.SYNC, "x", "fixed") == 1
    assert service.resolve_alerts(org, AlertKind.SYNC, "x", "fixed") == 0
    assert service.raise_alert(org, AlertKind.SYNC, "x", title="Sync failed") is not None
    assert list(Alert.objects.order_by("pk").values_list("state", flat=True)) == ["resolved", "open"]


def test_an_acknowledged_alert_is_still_the_episode(org, operator):
    alert = service.raise_alert(org, AlertKind.SYNC, "x", title="t")
    assert service.acknowledge(alert, operator) and not service.acknowledge(alert, operator)
    assert service.raise_alert(org, AlertKind.SYNC, "x", title="t") is None
    assert list(service.open_alerts_for(org)) == [alert]
    assert service.open_count(org.pk) == 0  # the badge counts what nobody acknowledged


# Accounts paused, from the simulator's faults -------------------------------------------------------

def test_an_injected_lockout_raises_an_alert_that_reaches_a_webhook_signed(org, sim_account, simulator, receiver,
                                                                          django_capture_on_commit_callbacks):
    channel = _webhook(org, receiver.url)
    simulator.configure(per_minute=1, lockout_after=1)
    for _ in range(2):
        queue.enqueue(sim_account, "group_query", {"current": 1, "size": 10}, purpose="test")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        dispatch.pump(sim_account.pk, wait=False)
    assert callbacks  # the deliveries start only after the commit
    alert = _paused_alert(org)
    assert alert.severity == Severity.CRITICAL and "locked the account out" in alert.detail
    assert alert.subject == str(sim_account.code) and alert.account == sim_account
    deliveries = _deliver_all()
    assert [(d.channel, d.event, d.state, d.status_code, d.attempts) for d in deliveries] == [
        (channel, "alert.raised", DeliveryState.SENT, 200, 1)]
    [hit] = receiver.received
    assert hit.signature_valid(SECRET)
    assert not hit.signature_valid("another secret")
    assert abs(int(hit.headers["X-Fleet-Timestamp"]) - time.time()) < 60
    body = hit.json()
    assert body["event"] == "alert.raised"
    assert body["alert"]["code"] == str(alert.code) and body["alert"]["kind"] == "account_paused"
    assert body["alert"]["severity"] == "critical" and body["alert"]["account"] == str(sim_account.code)
    assert SECRET not in hit.body.decode() and simulator.token not in hit.body.decode()
    # more violations in the same episode raise nothing more
    dispatch.pump(sim_account.pk, wait=False)
    assert Alert.objects.count() == 1 and Delivery.objects.count() == 1


def test_the_pause_resolves_when_the_account_sends_again(org, sim_account, simulator, receiver):
    _webhook(org, receiver.url)
    simulator.configure(faults=[{"kind": "token_invalid", "count": 1}])
    queue.enqueue(sim_account, "group_query", {"current": 1, "size": 10}, purpose="test")
    dispatch.pump(sim_account.pk, wait=False)
    alert = _paused_alert(org)
    assert "rejected the token" in alert.detail and alert.severity == Severity.CRITICAL
    assert service.evaluate()["resumed"] == 0  # still paused
    sim_account.refresh_from_db()
    sim_account.paused_until = timezone.now() - timedelta(seconds=1)  # the pause ran out
    sim_account.save(update_fields=["paused_until"])
    ApiCall.objects.filter(account=sim_account, state=CallState.QUEUED).update(not_before=timezone.now())
    assert service.evaluate()["resumed"] == 0  # not yet sent again
    dispatch.pump(sim_account.pk, wait=False)
    assert service.evaluate()["resumed"] == 1
    alert.refresh_from_db()
    assert alert.state == AlertState.RESOLVED and alert.resolution == "the account sends again"
    _deliver_all()
    assert [hit.json()["event"] for hit in receiver.received] == ["alert.raised", "alert.resolved"]
    assert receiver.received[1].json()["alert"]["state"] == "resolved"


def test_a_rate_limit_pause_is_a_warning(org, sim_account, simulator):
    simulator.configure(per_minute=1)
    for _ in range(2):
        queue.enqueue(sim_account, "group_query", {"current": 1, "size": 10}, purpose="test")
    dispatch.pump(sim_account.pk, wait=False)
    alert = _paused_alert(org)
    assert alert.severity == Severity.WARNING and "per-minute limit" in alert.detail


def test_a_token_that_cannot_be_decrypted_raises_an_alert(org, account, settings):
    queue.enqueue(account, "group_query", {"current": 1, "size": 10}, purpose="test")
    settings.TOKEN_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    dispatch.pump(account.pk, wait=False)
    alert = _paused_alert(org)
    assert alert.severity == Severity.CRITICAL and "decrypt" in alert.detail


# Commands ---------------------------------------------------------------------------------------------

def drive(command: Command, seconds: float = 15.0) -> Command:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        dispatch.pump(command.account_id, wait=False)
        tracking.tick()
        command.refresh_from_db()
        if command.state in tracking.FINAL_STATES + (CommandState.UNKNOWN,):
            return command
        time.sleep(0.05)
    return command


@pytest.mark.django_db(transaction=True)
def test_an_unknown_command_alerts_until_an_operator_decides(org, mirrored_fleet, fast_commands, simulator, operator):
    simulator.sim.configure(faults=[{"kind": "timeout", "endpoint": "single_control", "seconds": 3}])
    fast_commands.SOLAX_READ_TIMEOUT = 1
    sn = mirrored_fleet.inverters.order_by("inverter_sn").first().inverter_sn
    command = drive(commands.create_command(mirrored_fleet, Target("inverter", sns=(sn,)),
                                            {"superType": 1, "systemSwitch": 1}))
    assert command.state == CommandState.UNKNOWN
    alert = Alert.objects.get(kind=AlertKind.COMMAND)
    assert alert.subject == str(command.code) and alert.severity == Severity.CRITICAL
    assert alert.link == f"/commands/{command.code}/"
    tracking.refresh(command)  # a later recount of the same state raises nothing
    assert Alert.objects.filter(kind=AlertKind.COMMAND).count() == 1
    commands.resolve_unknown(command, Resolution.DELIVERED, user=operator)
    alert.refresh_from_db()
    assert alert.state == AlertState.RESOLVED and "delivered" in alert.resolution
    assert Alert.objects.filter(kind=AlertKind.COMMAND).count() == 1  # the decision raises no new episode


@pytest.mark.django_db(transaction=True)
def test_a_partial_command_alerts_and_a_successful_retry_resolves_it(org, mirrored_fleet, fast_commands, simulator):
    fast_commands.COMMAND_EXPIRY_SECONDS = 3
    tenant = simulator.sim.tenant()
    group = next(g for g in Group.objects.filter(account=mirrored_fleet)
                 if any(not tenant.inverters[m.inverter_sn].online for m in g.members.all()))
    command = drive(commands.create_command(mirrored_fleet, Target("group", group=group), FORCED_CHARGE), 10)
    assert command.state == CommandState.PARTIAL
    alert = Alert.objects.get(kind=AlertKind.COMMAND)
    assert alert.severity == Severity.WARNING and "partial" in alert.title
    for member in group.members.all():
        simulator.sim.set_device(member.inverter_sn, online=True)
    retry = commands.create_command(mirrored_fleet, commands.retry_target(command), FORCED_CHARGE,
                                    source="retry", retry_of=command)
    assert drive(retry, 10).state == CommandState.SUCCEEDED
    alert.refresh_from_db()
    assert alert.state == AlertState.RESOLVED and str(retry.code) in alert.resolution


@pytest.mark.django_db(transaction=True)
def test_devices_offline_in_the_cloud_raise_a_silent_alert_that_reaches_the_webhook_signed(
        org, mirrored_fleet, fast_commands, simulator, receiver):
    """Offline devices of the simulator, three group commands through the real pipeline: their
    devices end "no answer" each time, and the third raises the silent-devices episode, delivered
    signed to a real receiver with those SNs."""
    fast_commands.COMMAND_EXPIRY_SECONDS = 3  # the final look comes within seconds
    _webhook(org, receiver.url, kinds=[AlertKind.DEVICES_SILENT])
    tenant = simulator.sim.tenant()
    group = next(g for g in Group.objects.filter(account=mirrored_fleet)
                 if any(not tenant.inverters[m.inverter_sn].online for m in g.members.all()))
    offline = {m.inverter_sn for m in group.members.all() if not tenant.inverters[m.inverter_sn].online}
    for n in range(3):
        assert not Alert.objects.filter(kind=AlertKind.DEVICES_SILENT).exists(), f"raised after {n} commands"
        command = drive(commands.create_command(mirrored_fleet, Target("group", group=group), FORCED_CHARGE), 10)
        assert set(command.results.filter(state=DeviceState.NO_ANSWER).values_list("sn", flat=True)) == offline
    alert = Alert.objects.get(kind=AlertKind.DEVICES_SILENT)
    assert set(alert.context["sns"]) == offline
    deliveries = _deliver_all()
    assert [(d.event, d.state, d.status_code) for d in deliveries] == [("alert.raised", DeliveryState.SENT, 200)]
    [hit] = receiver.received
    assert hit.signature_valid(SECRET)
    body = hit.json()
    assert body["alert"]["code"] == str(alert.code) and body["alert"]["kind"] == "devices_silent"


def _finished_command(account, sns, states):  # type: ignore[no-untyped-def]
    command = Command.objects.create(account=account, kind="inverter_control", target_kind=TargetKind.SELECTION,
                                     sns=list(sns), action={}, label="test", devices_total=len(sns),
                                     state=CommandState.RUNNING)
    DeviceResult.objects.bulk_create(DeviceResult(command=command, sn=sn, state=state)
                                     for sn, state in zip(sns, states, strict=True))
    return tracking.refresh(command)


def test_a_device_silent_across_three_commands_in_a_row_raises_once_and_resolves(org, account):
    sns = ["H4AA0000000001", "H4AA0000000002"]
    silent, ok = DeviceState.NO_ANSWER, DeviceState.SUCCEEDED
    _finished_command(account, sns, [silent, ok])
    _finished_command(account, sns, [silent, silent])
    assert not Alert.objects.filter(kind=AlertKind.DEVICES_SILENT).exists()  # two in a row only
    _finished_command(account, sns, [silent, silent])
    alert = Alert.objects.get(kind=AlertKind.DEVICES_SILENT)
    assert alert.context["sns"] == ["H4AA0000000001"] and "1 device(s)" in alert.title
    _finished_command(account, sns, [silent, silent])  # the second joins the same episode
    alert.refresh_from_db()
    assert alert.context["sns"] == sns and Alert.objects.filter(kind=AlertKind.DEVICES_SILENT).count() == 1
    _finished_command(account, sns, [ok, silent])
    alert.refresh_from_db()
    assert alert.context["sns"] == ["H4AA0000000002"] and alert.is_active
    _finished_command(account, sns, [ok, ok])
    alert.refresh_from_db()
    assert alert.state == AlertState.RESOLVED


# Syncs ------------------------------------------------------------------------------------------------

def test_a_failed_sync_alerts_and_a_complete_one_resolves(org, account):
    run = SyncRun.objects.create(account=account, error="group page 1: timeout")
    assert sync.finish_if_idle(run)
    alert = Alert.objects.get(kind=AlertKind.SYNC)
    assert alert.severity == Severity.CRITICAL and "failed" in alert.title and "timeout" in alert.detail
    incomplete = SyncRun.objects.create(account=account, incomplete="group list: count moved")
    assert sync.finish_if_idle(incomplete)
    assert Alert.objects.filter(kind=AlertKind.SYNC).count() == 1
    assert sync.finish_if_idle(SyncRun.objects.create(account=account))
    alert.refresh_from_db()
    assert alert.state == AlertState.RESOLVED


# Schedules and the budget --------------------------------------------------------------------------

def _schedule(account, group, *, created):  # type: ignore[no-untyped-def]
    schedule = schedules.prepare(Schedule(
        account=account, name="Night charge", target_kind=TargetKind.GROUP, group=group,
        start_action=FORCED_CHARGE, end_action={"superType": 1, "systemSwitch": 1}, start_time=dtime(2, 0),
        end_time=dtime(5, 0), weekdays=list(range(7)), timezone="Europe/Berlin", created=created), now=created)
    schedule.save()
    return schedule


def test_a_missed_edge_alerts_and_the_next_edge_sent_resolves(org, account, settings, monkeypatch):
    settings.SCHEDULE_GRACE_MINUTES = 10
    sent = []

    def send_edge(occurrence):  # type: ignore[no-untyped-def]
        sent.append(occurrence.edge)  # stands in for the command the edge sends (tested in test_schedules)
        return None

    monkeypatch.setattr(schedules, "send_edge", send_edge)
    group = Group.objects.create(account=account, remote_id="100", name="North")
    schedule = _schedule(account, group, created=datetime(2026, 1, 15, tzinfo=UTC))
    schedules.tick(datetime(2026, 1, 15, 1, 10, 1, tzinfo=UTC))  # the 02:00 CET start, 10 min late
    alert = Alert.objects.get(kind=AlertKind.EDGE_MISSED)
    assert alert.subject == str(schedule.code) and "missed" in alert.title and "CET" in alert.detail
    schedules.tick(datetime(2026, 1, 15, 4, 0, tzinfo=UTC))  # the end goes out on time
    assert sent == ["end"]
    alert.refresh_from_db()
    assert alert.state == AlertState.RESOLVED


def test_the_budget_forecast_alerts_when_the_coming_windows_do_not_fit(org, account):
    group = Group.objects.create(account=account, remote_id="100", name="North")
    now = timezone.now()
    schedule = _schedule(account, group, created=now - timedelta(days=1))
    Schedule.objects.filter(pk=schedule.pk).update(calls_per_edge=6000)  # two edges: 12,000 > the day's 9,900
    assert schedules.forecast_budget_alerts(now) == 1
    alert = Alert.objects.get(kind=AlertKind.BUDGET)
    assert "12000 control calls" in alert.detail and alert.subject == str(account.code)
    assert schedules.forecast_budget_alerts(now) == 1 and Alert.objects.count() == 1
    Schedule.objects.filter(pk=schedule.pk).update(calls_per_edge=1)
    assert schedules.forecast_budget_alerts(now) == 0
    alert.refresh_from_db()
    assert alert.state == AlertState.RESOLVED


# Channels' rules, email, retries ----------------------------------------------------------------------

def test_a_channel_takes_only_the_kinds_and_severities_of_its_rule(org, other_org, receiver):
    picky = _webhook(org, receiver.url, kinds=[AlertKind.SYNC], min_severity=Severity.CRITICAL)
    Channel.objects.create(organization=org, kind=ChannelKind.EMAIL, name="Off", target="off@example.com",
                           enabled=False)
    _webhook(other_org, receiver.url)  # another organization's channel hears nothing of ours
    service.raise_alert(org, AlertKind.SYNC, "a", title="warning only", severity=Severity.WARNING)
    service.raise_alert(org, AlertKind.BUDGET, "b", title="other kind", severity=Severity.CRITICAL)
    service.raise_alert(org, AlertKind.SYNC, "c", title="this one", severity=Severity.CRITICAL)
    assert [(d.channel, d.alert.title) for d in Delivery.objects.all()] == [(picky, "this one")]


def test_email_goes_through_the_django_backend(org):
    Channel.objects.create(organization=org, kind=ChannelKind.EMAIL, name="Ops", target="ops@example.com")
    service.raise_alert(org, AlertKind.SYNC, "a", title="Sync of Main failed", detail="timeout",
                        severity=Severity.CRITICAL)
    [delivery] = _deliver_all()
    assert delivery.state == DeliveryState.SENT
    [message] = mail.outbox
    assert message.to == ["ops@example.com"] and "CRITICAL: Sync of Main failed" in message.subject
    assert "timeout" in message.body


def test_a_failing_webhook_retries_through_celery_and_stops_at_the_cap(org, receiver):
    receiver.statuses = [503]
    _webhook(org, receiver.url)
    service.raise_alert(org, AlertKind.SYNC, "a", title="t")
    delivery = Delivery.objects.get()
    with pytest.raises(channels.TransientDeliveryError):
        channels.deliver(delivery.pk)
    delivery.refresh_from_db()
    assert (delivery.state, delivery.status_code, delivery.attempts) == (DeliveryState.RETRYING, 503, 1)
    assert deliver_alert.max_retries == 5 and channels.backoff(0) == 10 and channels.backoff(10) == 600
    channels.deliver(delivery.pk)  # the receiver answers 200 now
    delivery.refresh_from_db()
    assert (delivery.state, delivery.status_code, delivery.attempts) == (DeliveryState.SENT, 200, 2)
    assert channels.deliver(delivery.pk) is None  # settled: never sent twice


def test_the_last_retry_marks_the_delivery_failed_and_a_4xx_fails_at_once(org, receiver):
    receiver.statuses = [500, 410]
    _webhook(org, receiver.url)
    service.raise_alert(org, AlertKind.SYNC, "a", title="t")
    service.raise_alert(org, AlertKind.SYNC, "b", title="t")
    first, second = Delivery.objects.order_by("pk")
    assert channels.deliver(first.pk, final=True).state == DeliveryState.FAILED
    gone = channels.deliver(second.pk)
    assert (gone.state, gone.status_code, gone.error) == (DeliveryState.FAILED, 410, "the endpoint answered 410")


def test_a_down_webhook_is_logged_without_the_secret(org):
    _webhook(org, "http://127.0.0.1:9/hooks")  # nothing listens on the discard port
    service.raise_alert(org, AlertKind.SYNC, "a", title="t")
    delivery = Delivery.objects.get()
    delivery = channels.deliver(delivery.pk, final=True)
    assert delivery.state == DeliveryState.FAILED and "not delivered" in delivery.error
    assert SECRET not in delivery.error


def test_private_addresses_are_refused_unless_allowed(org, receiver, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    channel = _webhook(org, receiver.url)
    delivery = channels.send_test(channel)
    assert delivery.state == DeliveryState.FAILED and "internal address" in delivery.error
    assert receiver.received == []


@pytest.fixture
def rebinding(monkeypatch):  # type: ignore[no-untyped-def]
    """hooks.test resolves to 127.0.0.1 (taken here for a public address) at the first lookup and to
    127.0.0.2 (internal, where nothing listens) at every later one: a DNS rebinding attack."""
    real, lookups = socket.getaddrinfo, []
    monkeypatch.setattr(channels, "_internal", lambda address: str(address) != "127.0.0.1")

    def getaddrinfo(host, port, *args, **kwargs):  # type: ignore[no-untyped-def]
        if host != "hooks.test":
            return real(host, port, *args, **kwargs)
        lookups.append(host)
        return real("127.0.0.1" if len(lookups) == 1 else "127.0.0.2", port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return lookups


def test_a_webhook_goes_to_the_address_that_was_checked(org, receiver, settings, rebinding):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    channel = _webhook(org, receiver.url.replace("127.0.0.1", "hooks.test"))
    delivery = channels.send_test(channel)
    assert delivery.state == DeliveryState.SENT, delivery.error
    assert rebinding == ["hooks.test"]  # looked up once, for the check; the request went to that address
    assert len(receiver.received) == 1 and receiver.received[0].headers["Host"].startswith("hooks.test:")


def test_an_https_webhook_goes_to_the_checked_address_too(org, receiver, settings, rebinding):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    channel = _webhook(org, receiver.url.replace("http://127.0.0.1", "https://hooks.test"))
    delivery = channels.deliver(channels.Delivery.objects.create(channel=channel, event=channels.TEST).pk, final=True)
    # the TLS handshake reached the checked address (a plain-HTTP receiver there); a second lookup would
    # have been refused at 127.0.0.2 instead
    assert delivery.state == DeliveryState.FAILED and "SSL" in delivery.error, delivery.error
    assert rebinding == ["hooks.test"]


def test_a_slow_webhook_never_delays_the_pipeline(org, sim_account, simulator, receiver):
    """The pipeline only writes the delivery rows; the POST happens in the delivery task."""
    receiver.delay = 3
    _webhook(org, receiver.url)
    simulator.configure(faults=[{"kind": "token_invalid", "count": 1}])
    queue.enqueue(sim_account, "group_query", {"current": 1, "size": 10}, purpose="test")
    started = time.monotonic()
    dispatch.pump(sim_account.pk, wait=False)
    assert time.monotonic() - started < 2
    assert receiver.received == [] and Delivery.objects.get().state == DeliveryState.PENDING


def test_the_webhook_body_is_json_with_the_alerts_fields(org, receiver):
    channel = _webhook(org, receiver.url)
    delivery = channels.send_test(channel)
    assert delivery.state == DeliveryState.SENT and delivery.status_code == 200
    body = json.loads(receiver.received[0].body)
    assert body["event"] == "test" and body["delivery"] == str(delivery.code)
    assert receiver.received[0].signature_valid(SECRET)


# Concurrency: two workers raising the same episode on PostgreSQL -------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_two_workers_raising_the_same_episode_make_one_alert(org):
    if connection.vendor != "postgresql":
        pytest.skip("the race needs PostgreSQL's concurrent transactions")
    barrier = threading.Barrier(2)
    results: list[object] = []

    def worker() -> None:
        try:
            barrier.wait()
            results.append(service.raise_alert(org.pk, AlertKind.SYNC, "same", title="race"))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert Alert.objects.filter(kind=AlertKind.SYNC, subject="same").count() == 1
    assert sum(result is not None for result in results) == 1


def test_a_missed_price_plan_edge_alerts_per_rule_and_a_sent_edge_resolves(org, account, settings):
    zone = PriceZone.objects.create(account=account, name="DE-LU", timezone="Europe/Berlin")
    group = Group.objects.create(account=account, remote_id="100", name="North")
    Inverter.objects.create(account=account, group=group, remote_id="1", inverter_sn="SNA1", dongle_sn="D1")
    rule = PriceRule.objects.create(zone=zone, group=group, charge_hours=3, discharge_hours=2, min_soc=20)
    plan = prices.accept(prices.propose(rule, _store(zone)), now=EVENING_BEFORE)
    windows = PlanEdge.objects.get(plan=plan, fallback=False)
    assert prices.tick(windows.due_at + timedelta(minutes=settings.SCHEDULE_GRACE_MINUTES + 1)).missed == 1
    alert = Alert.objects.get(kind=AlertKind.EDGE_MISSED)
    assert alert.subject == str(rule.code) and "North" in alert.title and "missed" in alert.title
    assert alert.severity == Severity.CRITICAL
    service.edge_sent(account, str(rule.code))
    alert.refresh_from_db()
    assert alert.state == AlertState.RESOLVED


def test_acknowledging_a_commands_alert_resolves_it_and_tells_the_channels(org, operator, receiver):
    _webhook(org, receiver.url)
    command_alert = service.raise_alert(org, AlertKind.COMMAND, "c1", title="Command x ended partial")
    sync_alert = service.raise_alert(org, AlertKind.SYNC, "s1", title="Sync failed")
    assert service.acknowledge(command_alert, operator) and service.acknowledge(sync_alert, operator)
    command_alert.refresh_from_db(), sync_alert.refresh_from_db()
    assert command_alert.state == AlertState.RESOLVED and command_alert.resolution == "acknowledged by otto"
    assert command_alert.acknowledged_by == operator
    assert sync_alert.state == AlertState.ACKNOWLEDGED  # a lasting condition stays until it ends
    _deliver_all()
    assert [hit.json()["event"] for hit in receiver.received] == ["alert.raised", "alert.raised", "alert.resolved"]


def test_the_beat_task_evaluates_budget_and_pauses(org, account):
    group = Group.objects.create(account=account, remote_id="100", name="North")
    schedule = _schedule(account, group, created=timezone.now() - timedelta(days=1))
    Schedule.objects.filter(pk=schedule.pk).update(calls_per_edge=6000)
    assert tasks.evaluate_alerts() == {"resumed": 0, "requeued": 0, "budget_short": 1}
    assert Alert.objects.get().kind == AlertKind.BUDGET


def test_lost_delivery_tasks_are_queued_again(org):
    Channel.objects.create(organization=org, kind=ChannelKind.EMAIL, name="Ops", target="ops@example.com")
    service.raise_alert(org, AlertKind.SYNC, "a", title="t")
    Delivery.objects.update(created=timezone.now() - timedelta(minutes=11))
    assert service.evaluate()["requeued"] == 1
    _deliver_all()
    assert service.evaluate()["requeued"] == 0 and len(mail.outbox) == 1
