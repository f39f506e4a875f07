"""The schedule and device-windows forms: every bad input is a clear error on its field."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest

from fleet.models import Charger, Group, Inverter, Organization
from fleet.schedules.forms import DeviceWindowsForm, ScheduleForm

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)  # a Thursday; 13:00 in Berlin


@pytest.fixture
def fleet(account):  # type: ignore[no-untyped-def]
    group = Group.objects.create(account=account, remote_id="100", name="North")
    Inverter.objects.create(account=account, group=group, remote_id="1", inverter_sn="SNA1")
    Charger.objects.create(account=account, sn="EV1")
    return group


def data(account, north, **changes):  # type: ignore[no-untyped-def]
    values = {"name": "Night charge", "account": str(account.code), "target_kind": "group", "group": str(north.code),
              "sns": "", "start_action": '{"superType": 2, "mode": 3, "manualMode": 1}',
              "end_action": '{"superType": 2, "mode": 0, "chargeFromGridEN": 0, "minSoc": 10, '
                            '"chargeFromGridUpperSoC": 100}',
              "start_time": "02:00", "end_time": "05:00", "weekdays": ["0", "1", "2", "3", "4"], "timezone": "",
              "enabled": "on"}
    values.update(changes)
    return values


def form(org: Organization, values):  # type: ignore[no-untyped-def]
    return ScheduleForm(values, organization=org, now=NOW)


def test_it_converts_a_valid_schedule(org, account, fleet):
    f = form(org, data(account, fleet))
    assert f.is_valid(), f.errors
    c = f.cleaned_data
    assert c["group_obj"] == fleet and c["weekdays"] == [0, 1, 2, 3, 4]
    assert c["start_action"] == {"superType": 2, "mode": 3, "manualMode": 1}
    assert c["start_time"] == time(2, 0) and c["timezone"] == "Europe/Berlin"  # the account's by default


def test_a_window_across_midnight_is_allowed(org, account, fleet):
    assert form(org, data(account, fleet, start_time="22:00", end_time="06:00")).is_valid()


@pytest.mark.parametrize("changes,field,message", [
    ({"end_time": "02:00"}, "end_time", "The end equals the start"),
    ({"weekdays": []}, "weekdays", "Choose at least one weekday, or one date."),
    ({"weekdays": [], "date": "2026-01-14"}, "date", "This date is in the past."),
    ({"weekdays": [], "date": "2026-01-15", "start_time": "12:30"}, "date", "already passed today"),
    ({"date": "2026-01-20"}, "weekdays", "either one date or weekdays"),
    ({"timezone": "Mars/Olympus"}, "timezone", "not a known timezone"),
    ({"group": ""}, "group", "Choose a group of this account."),
    ({"start_action": "charge!"}, "start_action", "is not JSON"),
    ({"start_action": '{"superType": 2, "mode": 3}'}, "start_action", "manualMode: required"),
    ({"end_action": '{"chargerMode": 3}'}, "end_action", "chargerMode is for EV chargers"),
    ({"target_kind": "selection", "sns": "SNA1, NOPE9"}, "sns", "Not among the inverters of this account's groups"),
    ({"target_kind": "selection", "sns": "bad sn!"}, "sns", ""),
    ({"target_kind": "chargers", "sns": "EV1", "start_action": '{"chargerMode": 9}',
      "end_action": '{"chargerMode": 2}'}, "start_action", "for chargers is"),
    ({"valid_from": "2026-02-01", "valid_until": "2026-01-20"}, "valid_until", "Ends before it starts."),
])
def test_bad_input_is_a_form_error(org, account, fleet, changes, field, message):
    f = form(org, data(account, fleet, **changes))
    assert not f.is_valid()
    assert field in f.errors, f.errors
    assert message in " ".join(f.errors[field])


def test_a_target_of_another_organization_is_an_error(org, account, fleet, other_account):
    theirs = Group.objects.create(account=other_account, remote_id="900", name="Theirs")
    Inverter.objects.create(account=other_account, group=theirs, remote_id="9", inverter_sn="SNX9")
    f = form(org, data(account, fleet, group=str(theirs.code)))
    assert not f.is_valid() and "group" in f.errors
    f = form(org, data(account, fleet, target_kind="selection", sns="SNX9"))
    assert not f.is_valid() and "SNX9" in f.errors["sns"][0]
    values = data(account, fleet)
    values["account"] = str(other_account.code)
    f = form(org, values)
    assert not f.is_valid() and "account" in f.errors


def test_chargers_take_a_charger_mode(org, account, fleet):
    f = form(org, data(account, fleet, target_kind="chargers", sns="EV1", start_action='{"chargerMode": 3}',
                       end_action='{"chargerMode": 0}'))
    assert f.is_valid(), f.errors
    assert f.cleaned_data["sns_list"] == ["EV1"] and f.cleaned_data["start_action"] == {"chargerMode": 3}


def windows(account, group, **changes):  # type: ignore[no-untyped-def]
    values = {"account": str(account.code), "target_kind": "group", "group": str(group.code), "sns": "",
              "charge_start_1": "01:30", "charge_end_1": "05:00", "discharge_start_1": "17:00",
              "discharge_end_1": "21:15"}
    values.update(changes)
    return values


def test_device_windows_build_the_mode_10_action(org, account, fleet):
    f = DeviceWindowsForm(windows(account, fleet), organization=org)
    assert f.is_valid(), f.errors
    action = f.cleaned_data["action"]
    assert action["superType"] == 2 and action["mode"] == 10 and action["p2TimeSetEnable"] == 0
    assert action["chargeStartTime1Hour"] == 1 and action["chargeStartTime1Minute"] == 30
    assert action["dischargerEndTime1Hour"] == 21 and action["dischargerEndTime1Minute"] == 15  # (sic)
    assert "chargeStartTime2Hour" not in action


def test_device_windows_with_the_second_period(org, account, fleet):
    f = DeviceWindowsForm(windows(account, fleet, period_2="on", charge_start_2="12:00", charge_end_2="14:00",
                                  discharge_start_2="22:00", discharge_end_2="23:00"), organization=org)
    assert f.is_valid(), f.errors
    assert f.cleaned_data["action"]["p2TimeSetEnable"] == 1
    assert f.cleaned_data["action"]["dischargeEndTime2Hour"] == 23


def test_device_windows_need_every_time_of_the_second_period(org, account, fleet):
    f = DeviceWindowsForm(windows(account, fleet, period_2="on", charge_start_2="12:00"), organization=org)
    assert not f.is_valid()
    assert f.errors["charge_end_2"] == ["Required for the second period."]


def test_device_windows_are_for_inverters_only(org, account, fleet):
    f = DeviceWindowsForm(windows(account, fleet, target_kind="chargers", sns="EV1"), organization=org)
    assert not f.is_valid() and "target_kind" in f.errors


def test_a_preset_action_needs_no_parameters_written_by_hand(org, account):  # type: ignore[no-untyped-def]
    from fleet.models import Group
    from fleet.schedules.forms import ACTION_PRESETS, ScheduleForm

    group = Group.objects.create(account=account, remote_id="77", name="North")
    form = ScheduleForm({
        "name": "Night", "account": str(account.code), "target_kind": "group", "group": str(group.code),
        "start_preset": "forced_charge", "end_preset": "self_use", "start_time": "02:00", "end_time": "05:00",
        "weekdays": ["0", "1"], "enabled": "on"}, organization=org)
    assert form.is_valid(), form.errors
    assert form.cleaned_data["start_action"] == ACTION_PRESETS["forced_charge"][1]
    assert form.cleaned_data["end_action"] == ACTION_PRESETS["self_use"][1]


def test_without_preset_or_custom_action_the_form_says_so(org, account):  # type: ignore[no-untyped-def]
    from fleet.models import Group
    from fleet.schedules.forms import ScheduleForm

    group = Group.objects.create(account=account, remote_id="77", name="North")
    form = ScheduleForm({
        "name": "Night", "account": str(account.code), "target_kind": "group", "group": str(group.code),
        "start_time": "02:00", "end_time": "05:00", "weekdays": ["0"]}, organization=org)
    assert not form.is_valid()
    assert "Choose the start action" in str(form.errors["start_preset"])
    assert "Choose the end action" in str(form.errors["end_preset"])


def test_an_ev_preset_on_inverters_is_refused(org, account):  # type: ignore[no-untyped-def]
    from fleet.models import Group
    from fleet.schedules.forms import ScheduleForm

    group = Group.objects.create(account=account, remote_id="77", name="North")
    form = ScheduleForm({
        "name": "Night", "account": str(account.code), "target_kind": "group", "group": str(group.code),
        "start_preset": "ev_green", "end_preset": "self_use", "start_time": "02:00", "end_time": "05:00",
        "weekdays": ["0"]}, organization=org)
    assert not form.is_valid()
    assert "chargerMode is for EV chargers" in str(form.errors["start_preset"])


# Issue 14, item 6: one-off or weekly is a choice; SNs may be separated by spaces ---------------

def test_once_ignores_the_ticked_weekdays(org, account, fleet):
    f = form(org, data(account, fleet, repeat="once", date="2026-01-20", weekdays=[str(d) for d in range(7)]))
    assert f.is_valid(), f.errors
    assert f.cleaned_data["weekdays"] == [] and str(f.cleaned_data["date"]) == "2026-01-20"


def test_once_needs_its_date(org, account, fleet):
    f = form(org, data(account, fleet, repeat="once"))
    assert not f.is_valid() and "Choose the date of this one-off window." in f.errors["date"]


def test_weekly_ignores_a_leftover_date(org, account, fleet):
    f = form(org, data(account, fleet, repeat="weekly", date="2026-01-20"))
    assert f.is_valid(), f.errors
    assert f.cleaned_data["date"] is None and f.cleaned_data["weekdays"] == [0, 1, 2, 3, 4]


def test_space_separated_sns_are_accepted(org, account, fleet):
    Inverter.objects.create(account=account, group=fleet, remote_id="2", inverter_sn="SNA2")
    f = form(org, data(account, fleet, target_kind="selection", group="", sns="SNA1 SNA2"))
    assert f.is_valid(), f.errors
    assert f.cleaned_data["sns_list"] == ["SNA1", "SNA2"]


def test_presets_are_named_in_words(org, account, fleet):
    labels = dict(form(org, data(account, fleet)).fields["start_preset"].choices)
    assert labels["forced_charge"] == "Forced charge" and labels["forced_discharge"] == "Forced discharge"
