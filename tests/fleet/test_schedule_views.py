"""The schedules pages: list, timeline, warnings, create/edit/pause/delete, occurrences, device windows."""

from __future__ import annotations

from datetime import date, time, timedelta

import pytest
from django.utils import timezone

from fleet.models import Command, DeviceResult, Group, Inverter, Occurrence, Schedule
from fleet.schedules import service
from tests.support.once import key_from

pytestmark = pytest.mark.django_db

CHARGE = {"superType": 2, "mode": 3, "manualMode": 1}
DISCHARGE = {"superType": 2, "mode": 3, "manualMode": 2}
SELF_USE = {"superType": 2, "mode": 0, "chargeFromGridEN": 0, "minSoc": 10, "chargeFromGridUpperSoC": 100}


@pytest.fixture
def north(account):  # type: ignore[no-untyped-def]
    group = Group.objects.create(account=account, remote_id="100", name="North")
    Inverter.objects.create(account=account, group=group, remote_id="1", inverter_sn="SNA1")
    Inverter.objects.create(account=account, group=group, remote_id="2", inverter_sn="SNB2")
    return group


def make(account, group, name="Night charge", **fields):  # type: ignore[no-untyped-def]
    values = {"account": account, "name": name, "target_kind": "group", "group": group, "start_action": CHARGE,
              "end_action": SELF_USE, "start_time": time(2, 0), "end_time": time(5, 0),
              "weekdays": list(range(7)), "timezone": "Europe/Berlin", **fields}
    schedule = service.prepare(Schedule(**values))
    schedule.save()
    return schedule


def post_data(account, group, **changes):  # type: ignore[no-untyped-def]
    values = {"name": "Night charge", "account": str(account.code), "target_kind": "group",
              "group": str(group.code), "sns": "", "start_action": '{"superType": 2, "mode": 3, "manualMode": 1}',
              "end_action": '{"superType": 2, "mode": 3, "manualMode": 0}', "start_time": "02:00",
              "end_time": "05:00", "weekdays": ["0", "1", "2", "3", "4", "5", "6"], "timezone": "", "enabled": "on"}
    values.update(changes)
    return values


# The list ------------------------------------------------------------------------------------

def test_the_empty_list_invites_the_first_schedule(operator_client, account):
    body = operator_client.get("/schedules/").content.decode()
    assert "No schedules yet" in body and "/schedules/new/" in body


def test_viewers_read_but_are_not_offered_writes(viewer_client, account, north):
    make(account, north)
    body = viewer_client.get("/schedules/").content.decode()
    assert "Night charge" in body and "/schedules/new/" not in body and "Edit</a>" not in body


def test_it_lists_next_fire_times_in_local_time(operator_client, account, north):
    make(account, north)
    body = operator_client.get("/schedules/").content.decode()
    upcoming = service.next_edge(Schedule.objects.get(), timezone.now())
    assert upcoming is not None
    local = upcoming.due_at.astimezone(account.tzinfo)
    assert f"{upcoming.edge} {local:%a %d %b %H:%M} {local.tzname()}" in body
    assert "Forced charge" in body  # named as the command form names it


def test_the_timeline_draws_a_window_across_midnight_on_both_days(operator_client, account, north):
    make(account, north, name="Overnight", start_time=time(22, 0), end_time=time(6, 0))
    body = operator_client.get("/schedules/").content.decode()
    assert body.count("tl-seg") >= 7 * 2  # every day: the evening part and the morning part
    assert "(continues after midnight)" in body and "(from the day before)" in body
    assert "Group North" in body


def test_it_warns_of_overlaps_through_group_membership(operator_client, account, north):
    make(account, north, name="Charge")
    make(account, None, name="Discharge", target_kind="selection", sns=["SNB2"], start_action=DISCHARGE,
         start_time=time(4, 0), end_time=time(6, 0))
    body = operator_client.get("/schedules/").content.decode()
    assert "Overlapping windows" in body
    assert "send different actions to\n      1 device (SNB2" in body
    assert "tl-seg conflict" in body


def test_it_warns_when_the_budget_cannot_deliver_on_time(operator_client, account, north):
    for i in range(10):
        make(account, north, name=f"S{i}", start_action={"superType": 2, "mode": 3, "manualMode": i % 3})
    body = operator_client.get("/schedules/").content.decode()
    assert "10 control calls are due but only 9 can go out a minute" in body


def test_search_is_a_partial_for_htmx(operator_client, account, north):
    make(account, north, name="Night charge")
    make(account, north, name="Evening peak", start_time=time(18, 0), end_time=time(21, 0))
    response = operator_client.get(f"/schedules/?account={account.code}&q=peak", HTTP_HX_REQUEST="true",
                                   HTTP_HX_TARGET="schedule-list")
    body = response.content.decode()
    assert "Evening peak" in body and "Night charge" not in body and "<html" not in body


def test_the_list_queries_do_not_grow_with_schedules(operator_client, account, north, django_assert_num_queries):
    make(account, north)
    # one more than before: the several-groups relation is prefetched in one query
    with django_assert_num_queries(8) as first:
        operator_client.get("/schedules/")
    for i in range(5):
        make(account, north, name=f"More {i}")
    with django_assert_num_queries(len(first.captured_queries)):
        operator_client.get("/schedules/")


def test_another_organizations_account_is_404(operator_client, account, other_account):
    assert operator_client.get(f"/schedules/?account={other_account.code}").status_code == 404
    assert operator_client.get("/schedules/?account=nope").status_code == 404


# Create and edit ------------------------------------------------------------------------------

def test_an_operator_creates_a_schedule(operator_client, account, north, operator):
    response = operator_client.post("/schedules/new/", {**post_data(account, north),
                                                        "once": key_from(operator_client, "/schedules/new/")})
    schedule = Schedule.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/schedules/{schedule.code}/"
    assert schedule.group == north and schedule.timezone == "Europe/Berlin" and schedule.created_by == operator
    assert schedule.start_action == CHARGE and schedule.next_edge_at is not None and schedule.calls_per_edge == 1


def test_creating_a_window_inside_another_of_the_same_action_warns_and_names_it(operator_client, account, north):
    make(account, north, name="Night charge", end_action={"superType": 2, "mode": 3, "manualMode": 0})
    data = post_data(account, north, name="Short charge", start_time="03:00", end_time="04:00")
    response = operator_client.post("/schedules/new/", {**data, "once": key_from(operator_client, "/schedules/new/")},
                                    follow=True)
    body = response.content.decode()
    assert Schedule.objects.filter(name="Short charge").exists()  # saved: a warning, not a refusal
    assert "msg-warning" in body and "“Short charge” overlaps “Night charge”" in body
    assert "Short charge ends (Manual stop) while Night charge still wants Forced charge" in body
    assert "2 devices (SNA1, SNB2)" in body
    listing = operator_client.get("/schedules/").content.decode()
    assert "Overlapping windows" in listing and "Short charge ends (Manual stop)" in listing


def test_editing_into_the_same_window_warns_and_a_separate_window_does_not(operator_client, account, north):
    make(account, north, name="Night charge", end_action={"superType": 2, "mode": 3, "manualMode": 0})
    other = make(account, north, name="Morning charge", start_time=time(6, 0), end_time=time(7, 0),
                 end_action={"superType": 2, "mode": 3, "manualMode": 0})
    quiet = operator_client.post(f"/schedules/{other.code}/edit/",
                                 post_data(account, north, name="Morning charge", start_time="06:00",
                                           end_time="08:00"), follow=True).content.decode()
    assert "Schedule “Morning charge” saved." in quiet and "msg-warning" not in quiet
    body = operator_client.post(f"/schedules/{other.code}/edit/",
                                post_data(account, north, name="Morning charge"), follow=True).content.decode()
    assert "“Morning charge” overlaps “Night charge”" in body
    assert "are the same window twice (every action would be sent twice)" in body


def test_bad_input_is_shown_and_nothing_is_saved(operator_client, account, north):
    response = operator_client.post("/schedules/new/", post_data(account, north, end_time="02:00", weekdays=[]))
    body = response.content.decode()
    assert response.status_code == 200
    assert "The end equals the start" in body and "Choose at least one weekday" in body
    assert Schedule.objects.count() == 0


def test_viewers_cannot_create(viewer_client, account, north):
    assert viewer_client.get("/schedules/new/").status_code == 403
    assert viewer_client.post("/schedules/new/", post_data(account, north)).status_code == 403
    assert Schedule.objects.count() == 0


def test_an_operator_edits_a_schedule(operator_client, account, north):
    schedule = make(account, north)
    form = operator_client.get(f"/schedules/{schedule.code}/edit/").content.decode()
    assert 'value="Night charge"' in form and "manualMode" in form
    response = operator_client.post(f"/schedules/{schedule.code}/edit/",
                                    post_data(account, north, name="Early charge", start_time="01:00"))
    assert response.status_code == 302
    schedule.refresh_from_db()
    assert schedule.name == "Early charge" and schedule.start_time == time(1, 0)


def test_editing_another_organizations_schedule_is_404(operator_client, other_account):
    theirs = make(other_account, Group.objects.create(account=other_account, remote_id="9", name="Theirs"))
    assert operator_client.get(f"/schedules/{theirs.code}/").status_code == 404
    assert operator_client.get(f"/schedules/{theirs.code}/edit/").status_code == 404
    assert operator_client.post(f"/schedules/{theirs.code}/pause/").status_code == 404
    assert operator_client.post(f"/schedules/{theirs.code}/delete/").status_code == 404
    assert Schedule.objects.filter(pk=theirs.pk, enabled=True).exists()


# Detail, pause, delete -------------------------------------------------------------------------

def test_the_detail_links_each_occurrence_to_its_command_and_results(viewer_client, account, north):
    schedule = make(account, north)
    command = Command.objects.create(account=account, kind="inverter_control", target_kind="group", group=north,
                                     action=CHARGE, label="Night charge", source="schedule", state="partial",
                                     devices_total=2, devices_succeeded=1, devices_failed=1)
    DeviceResult.objects.create(command=command, sn="SNA1", state="succeeded", answer="success")
    DeviceResult.objects.create(command=command, sn="SNB2", state="failed", answer="offline")
    now = timezone.now()
    Occurrence.objects.create(schedule=schedule, local_date=date(2026, 1, 15), edge="start", due_at=now,
                              state="fired", command=command)
    Occurrence.objects.create(schedule=schedule, local_date=date(2026, 1, 14), edge="start",
                              due_at=now - timedelta(days=1), state="missed")
    body = viewer_client.get(f"/schedules/{schedule.code}/").content.decode()
    assert f"origin={command.code}" in body and "1/2 succeeded, 1 failed" in body
    assert "SNB2: failed (offline)" in body
    assert "occ-missed" in body


def test_pause_and_resume(operator_client, account, north):
    schedule = make(account, north)
    assert operator_client.get(f"/schedules/{schedule.code}/pause/").status_code == 405
    assert operator_client.post(f"/schedules/{schedule.code}/pause/").status_code == 302
    schedule.refresh_from_db()
    assert not schedule.enabled and schedule.next_edge_at is None
    operator_client.post(f"/schedules/{schedule.code}/pause/")
    schedule.refresh_from_db()
    assert schedule.enabled and schedule.next_edge_at is not None


def test_delete_asks_first(operator_client, account, north):
    schedule = make(account, north)
    body = operator_client.get(f"/schedules/{schedule.code}/delete/").content.decode()
    assert "Delete “Night charge”?" in body and Schedule.objects.exists()
    response = operator_client.post(f"/schedules/{schedule.code}/delete/")
    assert response.status_code == 302 and not Schedule.objects.exists()


def test_viewers_cannot_pause_or_delete(viewer_client, account, north):
    schedule = make(account, north)
    assert viewer_client.post(f"/schedules/{schedule.code}/pause/").status_code == 403
    assert viewer_client.get(f"/schedules/{schedule.code}/delete/").status_code == 403
    assert viewer_client.post(f"/schedules/{schedule.code}/delete/").status_code == 403
    assert Schedule.objects.filter(enabled=True).count() == 1


# Device-side windows --------------------------------------------------------------------------

def windows(account, group, **changes):  # type: ignore[no-untyped-def]
    return {"account": str(account.code), "target_kind": "group", "group": str(group.code), "sns": "",
            "charge_start_1": "01:30", "charge_end_1": "05:00", "discharge_start_1": "17:00",
            "discharge_end_1": "21:00", "confirm": "yes", **changes}


def test_device_windows_are_sent_as_one_command(operator_client, account, north, monkeypatch):
    sent = []

    def record(account, target_kind, group, sns, action, **kwargs):  # type: ignore[no-untyped-def]
        sent.append((target_kind, group, action["mode"], kwargs["source"]))
        return Command.objects.create(account=account, kind="inverter_control", target_kind=target_kind,
                                      group=group, action=action, label="windows")

    monkeypatch.setattr(service, "send_action", record)
    key = key_from(operator_client, "/schedules/device-windows/")
    response = operator_client.post("/schedules/device-windows/", {**windows(account, north), "once": key})
    assert response.status_code == 302
    assert sent == [("group", north, 10, "manual")]


def test_a_refused_device_windows_command_is_a_form_error(operator_client, account, north, monkeypatch):
    def refuse(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise service.EdgeRejected("group: not in the cloud any more")

    monkeypatch.setattr(service, "send_action", refuse)
    key = key_from(operator_client, "/schedules/device-windows/")
    body = operator_client.post("/schedules/device-windows/",
                                {**windows(account, north), "once": key}).content.decode()
    assert "The command was not created: group: not in the cloud any more." in body


def test_bad_device_windows_are_errors_and_nothing_is_sent(operator_client, account, north, monkeypatch):
    monkeypatch.setattr(service, "send_action", lambda *a, **k: pytest.fail("nothing may be sent"))
    body = operator_client.post("/schedules/device-windows/",
                                windows(account, north, charge_end_1="", period_2="on")).content.decode()
    assert "This field is required." in body and "Required for the second period." in body


def test_device_windows_show_the_cost_plan_first(operator_client, account, north):
    data = windows(account, north)
    del data["confirm"]
    key = key_from(operator_client, "/schedules/device-windows/")
    response = operator_client.post("/schedules/device-windows/", {**data, "once": key})
    body = response.content.decode()
    assert response.status_code == 200 and 'id="cost-plan"' in body and "group_control" in body
    assert 'name="confirm" value="yes"' in body and 'name="charge_start_1" value="01:30"' in body
    assert not Command.objects.exists()


def test_a_device_window_that_ends_when_it_starts_is_refused(operator_client, account, north):
    body = operator_client.post("/schedules/device-windows/",
                                windows(account, north, discharge_end_1="17:00")).content.decode()
    assert "This window ends when it starts" in body and not Command.objects.exists()


def test_viewers_cannot_send_device_windows(viewer_client, account, north):
    assert viewer_client.get("/schedules/device-windows/").status_code == 403
    assert viewer_client.post("/schedules/device-windows/", windows(account, north)).status_code == 403
