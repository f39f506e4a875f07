"""Times in the person's zone with its abbreviation (item 4), silent devices and the learned poll
estimate (item 5)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from fleet.commands import service
from fleet.commands.targets import Target
from fleet.models import (
    ApiCall,
    Command,
    CommandBatch,
    CommandState,
    DeviceResult,
    DeviceState,
    Group,
    Inverter,
    Membership,
    TargetKind,
)

pytestmark = pytest.mark.django_db

WINTER = datetime(2026, 1, 15, 18, 1, tzinfo=UTC)  # 19:01 in Berlin (CET)


def _command(account, n=3, state=CommandState.SUCCEEDED, created=WINTER, **extra):  # type: ignore[no-untyped-def]
    command = Command.objects.create(account=account, kind="inverter_control", target_kind="selection",
                                     sns=[f"H4AA{i:010d}" for i in range(n)], action={"superType": "1"},
                                     label="System on", state=state, devices_total=n, created=created, **extra)
    DeviceResult.objects.bulk_create(DeviceResult(command=command, sn=f"H4AA{i:010d}") for i in range(n))
    return command


# Item 4: zones ---------------------------------------------------------------------------------

def test_times_default_to_the_accounts_zone_with_its_abbreviation(viewer_client, account):
    command = _command(account)  # the account fixture is in Europe/Berlin
    body = viewer_client.get("/commands/").content.decode()
    assert "Jan 15 19:01:00 CET" in body and '<time datetime="2026-01-15T18:01:00+00:00">' in body
    detail = viewer_client.get(f"/commands/{command.code}/").content.decode()
    assert "2026-01-15 19:01:00 CET" in detail


def test_a_person_chooses_their_zone(viewer_client, viewer, account):
    command = _command(account)
    assert viewer_client.get("/me/zone/").status_code == 200
    bad = viewer_client.post("/me/zone/", {"timezone": "Mars/Olympus"})
    assert bad.status_code == 400 and Membership.objects.get(user=viewer).timezone == ""
    assert viewer_client.post("/me/zone/", {"timezone": "America/New_York"}).status_code == 302
    body = viewer_client.get(f"/commands/{command.code}/").content.decode()
    assert "2026-01-15 13:01:00 EST" in body
    # back to the organization's default
    viewer_client.post("/me/zone/", {"timezone": ""})
    assert "19:01:00 CET" in viewer_client.get(f"/commands/{command.code}/").content.decode()


def test_the_zone_of_one_request_does_not_leak_into_the_next(viewer_client, viewer, account):
    Membership.objects.filter(user=viewer).update(timezone="Asia/Tokyo")
    viewer_client.get("/commands/")
    assert timezone.get_current_timezone_name() == "UTC"  # ResetZone ended it


def test_the_call_log_shows_queued_sent_and_finished(viewer_client, account):
    command = _command(account)
    ApiCall.objects.create(account=account, endpoint="batch_control", priority=0, params={}, origin_code=command.code,
                           state="succeeded", created=WINTER, sent_at=WINTER + timedelta(seconds=5),
                           finished_at=WINTER + timedelta(seconds=7))
    ApiCall.objects.create(account=account, endpoint="query_command", priority=2, params={}, origin_code=command.code,
                           created=WINTER + timedelta(seconds=8))
    for url in (f"/commands/{command.code}/", "/budget/"):
        body = viewer_client.get(url).content.decode()
        assert "<th>Queued</th><th>Sent</th><th>Finished</th>" in body
        assert "19:01:00 CET" in body and "19:01:05 CET" in body and "19:01:07 CET" in body
        assert "not yet" in body  # the second call is still queued


# Item 5: silent devices ------------------------------------------------------------------------

def test_the_progress_counts_silent_devices_and_the_final_look(viewer_client, account, settings):
    settings.COMMAND_EXPIRY_SECONDS = 600  # the final look is 60 s before the deadline
    command = _command(account, n=63, state=CommandState.RUNNING, expires_at=WINTER + timedelta(minutes=1))
    answered = list(DeviceResult.objects.filter(command=command).order_by("sn").values_list("pk", flat=True)[:60])
    DeviceResult.objects.filter(pk__in=answered).update(state=DeviceState.SUCCEEDED, answer="success")
    live = viewer_client.get(f"/commands/{command.code}/", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="command-progress")
    text = live.content.decode()
    assert "60 of 63 devices answered" in text and "3 silent (offline?)" in text
    assert "final look was at <time" in text and "19:01 CET" in text
    page = viewer_client.get(f"/commands/{command.code}/").content.decode()
    # the silent ones first, in their own block above the list
    assert page.index('id="silent-devices"') < page.index("<thead><tr><th>Device</th>")
    assert "H4AA0000000060" in page[page.index('id="silent-devices"'):page.index("<thead><tr><th>Device</th>")]
    only = viewer_client.get(f"/commands/{command.code}/?state=silent")
    assert only.context["results"].paginator.count == 3


def test_devices_of_an_unsent_command_are_waiting_not_silent(viewer_client, account):
    command = _command(account, n=2, state=CommandState.QUEUED)
    text = viewer_client.get(f"/commands/{command.code}/").content.decode()
    assert "0 of 2 devices answered" in text and "2 waiting to be sent" in text
    assert 'class="silent-link"' not in text and 'id="silent-devices"' not in text


def test_no_answer_devices_stay_silent_after_the_end(viewer_client, account):
    command = _command(account, n=2, state=CommandState.PARTIAL, expires_at=WINTER)
    DeviceResult.objects.filter(command=command, sn="H4AA0000000000").update(state=DeviceState.NO_ANSWER)
    DeviceResult.objects.filter(command=command, sn="H4AA0000000001").update(state=DeviceState.SUCCEEDED)
    text = viewer_client.get(f"/commands/{command.code}/").content.decode()
    assert "1 of 2 devices answered" in text and "1 silent (offline?)" in text


# Item 5: the learned poll estimate -------------------------------------------------------------

@pytest.fixture
def group(account):  # type: ignore[no-untyped-def]
    group = Group.objects.create(account=account, remote_id="1001", name="North")
    for i in range(3):
        Inverter.objects.create(account=account, group=group, remote_id=f"50{i}", inverter_sn=f"H4AA{i:010d}")
    return group


def _plan(account):  # type: ignore[no-untyped-def]
    target = Target(TargetKind.SELECTION, sns=("H4AA0000000000", "H4AA0000000001"))
    return service.plan_command(account, target, {"superType": "1", "systemSwitch": "1"})


def test_the_poll_estimate_is_the_constant_until_the_account_has_history(account, group):
    plan = _plan(account)
    assert plan.polls == service.POLLS_PER_BATCH_ESTIMATE * plan.sends and plan.polls_learned_from == 0


def test_the_poll_estimate_learns_from_the_accounts_recent_batches(account, other_account, group):
    for polls in (2, 2, 3):
        command = _command(account, n=1)
        CommandBatch.objects.create(command=command, polls=polls, state=CommandState.SUCCEEDED)
    running = _command(account, n=1, state=CommandState.RUNNING)  # still polling: not counted
    CommandBatch.objects.create(command=running, polls=40, state=CommandState.RUNNING)
    theirs = _command(other_account, n=1)  # another account's: not counted
    CommandBatch.objects.create(command=theirs, polls=90, state=CommandState.SUCCEEDED)
    plan = _plan(account)
    assert plan.polls_learned_from == 3 and plan.polls_per_batch == 2.3 and plan.polls == 3  # ceil(7/3 * 1)


def test_the_plan_page_says_where_the_estimate_comes_from(operator_client, account, group):
    response = operator_client.post("/commands/new/", {"target": "group", "group": group.code, "superType": "1",
                                                       "systemSwitch": "1"})
    assert "the usual figure until this account has sent a few commands" in response.content.decode()
    for _ in range(3):
        CommandBatch.objects.create(command=_command(account, n=1), polls=2, state=CommandState.SUCCEEDED)
    response = operator_client.post("/commands/new/", {"target": "group", "group": group.code, "superType": "1",
                                                       "systemSwitch": "1"})
    assert "2.0 per call, learned from this account's last 3 settled calls" in response.content.decode()


def test_the_hourly_chart_counts_utc_hours_whatever_the_persons_zone(viewer_client, viewer, account):
    from fleet.models import CallAttempt

    Membership.objects.filter(user=viewer).update(timezone="Asia/Kolkata")  # UTC+5:30: its hours are not UTC's
    call = ApiCall.objects.create(account=account, endpoint="batch_control", priority=0, params={})
    CallAttempt.objects.create(account=account, call=call, seq=1, sent_at=timezone.now() - timedelta(minutes=1))
    chart = viewer_client.get("/budget/").context["chart"]
    assert sum(bar.calls for bar in chart.bars) == 1
