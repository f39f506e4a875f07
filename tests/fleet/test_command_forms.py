"""The new-command form: one valid case per superType/mode, every field out of range, missing
conditional fields, empty selections and foreign targets. Nothing is queued by a form."""

from __future__ import annotations

import pytest

from fleet.commands.forms import CommandForm, initial_from_query
from fleet.models import ApiCall, Charger, Command, Group, Inverter
from solax.control import FIELDS, required_fields

pytestmark = pytest.mark.django_db

PERIOD = {"chargeStartTime1Hour": 1, "chargeStartTime1Minute": 0, "chargeEndTime1Hour": 5,
          "chargeEndTime1Minute": 30, "dischargeStartTime1Hour": 17, "dischargeStartTime1Minute": 0,
          "dischargerEndTime1Hour": 21, "dischargerEndTime1Minute": 0}
PERIOD_2 = {k.replace("1", "2").replace("discharger", "discharge"): v for k, v in PERIOD.items()}

MODES = {
    "forbid": {"superType": 0, "mode": 0, "timeout": 60},
    "power control": {"superType": 0, "mode": 1, "activePower": 3000, "reactivePower": 0, "setType": 1,
                      "proidTime": 600, "timeout": 60},
    "electric quantity": {"superType": 0, "mode": 2, "setType": 2, "targetEnergy": 5000, "chargerPower": 2500,
                          "timeout": 60},
    "soc target": {"superType": 0, "mode": 3, "setType": 1, "targetSoc": 80, "chargerPower": -2000, "timeout": 60},
    "system off": {"superType": 1, "systemSwitch": 0},
    "self use": {"superType": 2, "mode": 0, "chargeFromGridEN": 1, "minSoc": 10, "chargeFromGridUpperSoC": 90},
    "feed-in priority": {"superType": 2, "mode": 1, "minSoc": 20, "chargeFromGridUpperSoC": 80},
    "backup": {"superType": 2, "mode": 2, "minSoc": 30, "chargeFromGridUpperSoC": 100},
    "manual forced discharge": {"superType": 2, "mode": 3, "manualMode": 2},
    "time windows": {"superType": 2, "mode": 10, **PERIOD, "p2TimeSetEnable": 0},
    "time windows, two periods": {"superType": 2, "mode": 10, **PERIOD, "p2TimeSetEnable": 1, **PERIOD_2},
}


@pytest.fixture
def fleet(account):  # type: ignore[no-untyped-def]
    group = Group.objects.create(account=account, remote_id="1001", name="North")
    for i in range(3):
        Inverter.objects.create(account=account, group=group, remote_id=f"50{i}", inverter_sn=f"H4AA000000000{i}",
                                dongle_sn=f"SWAA00000{i}")
    Charger.objects.create(account=account, sn="C1AA0000000001")
    return group


def _form(account, **data):  # type: ignore[no-untyped-def]
    return CommandForm({key: "" if value is None else str(value) for key, value in data.items()}, account=account)


@pytest.mark.parametrize("name", MODES)
def test_every_mode_validates_to_the_vendors_parameters(account, fleet, name):
    action = MODES[name]
    form = _form(account, target="group", group=fleet.code, **action)
    assert form.is_valid(), form.errors
    assert form.action == action
    assert form.plan is not None and form.plan.endpoint == "group_control" and form.plan.sends == 1
    # the page shows exactly the fields of this mode
    shown = set(form.action_field_names()) - {"superType", "mode"}
    mode = action.get("mode")
    assert shown == set(required_fields(action["superType"], mode, p2=action.get("p2TimeSetEnable") == 1))
    assert not ApiCall.objects.exists() and not Command.objects.exists()


@pytest.mark.parametrize("name", MODES)
def test_each_field_out_of_range_is_an_error_naming_it(account, fleet, name):
    action = MODES[name]
    for field in action:
        if field in ("superType", "mode", "p2TimeSetEnable"):
            continue
        spec = FIELDS[field]
        form = _form(account, target="group", group=fleet.code, **{**action, field: spec.max + 1})
        assert not form.is_valid()
        assert field in form.errors, (field, form.errors)


@pytest.mark.parametrize("name", MODES)
def test_a_missing_conditional_field_is_an_error_naming_it(account, fleet, name):
    action = MODES[name]
    for field in action:
        if field in ("superType", "mode", "p2TimeSetEnable"):
            continue
        form = _form(account, target="group", group=fleet.code, **{k: v for k, v in action.items() if k != field})
        assert not form.is_valid()
        assert form.errors.get(field) == ["required"], (field, form.errors)


def test_target_update_is_only_for_modes_2_and_3(account, fleet):
    form = _form(account, target="group", group=fleet.code, **{**MODES["power control"], "setType": 2})
    assert not form.is_valid() and "setType" in form.errors


def test_a_mode_of_another_super_type_is_refused(account, fleet):
    form = _form(account, target="group", group=fleet.code, superType=0, mode=10)
    assert not form.is_valid() and "mode" in form.errors


def test_an_empty_selection_is_refused(account, fleet):
    form = _form(account, target="selection", sns="  , ", superType=1, systemSwitch=1)
    assert not form.is_valid() and form.errors["sns"] == ["enter at least one SN"]


def test_a_selection_of_known_sns_becomes_one_batch_call(account, fleet):
    form = _form(account, target="selection", sns="H4AA0000000000, H4AA0000000001\nH4AA0000000001",
                 superType=1, systemSwitch=1)
    assert form.is_valid(), form.errors
    assert form.command_target.sns == ("H4AA0000000000", "H4AA0000000001", "H4AA0000000001")
    assert (form.plan.endpoint, form.plan.sends, form.plan.devices) == ("batch_control", 1, 2)


def test_one_inverter_is_a_single_control(account, fleet):
    form = _form(account, target="inverter", sns="H4AA0000000002", superType=1, systemSwitch=1)
    assert form.is_valid(), form.errors
    assert form.plan.endpoint == "single_control"
    two = _form(account, target="inverter", sns="H4AA0000000002 H4AA0000000001", superType=1, systemSwitch=1)
    assert not two.is_valid() and "sns" in two.errors


def test_a_target_of_another_organization_is_refused(account, fleet, other_account):
    theirs = Group.objects.create(account=other_account, remote_id="9", name="Theirs")
    Inverter.objects.create(account=other_account, group=theirs, remote_id="9", inverter_sn="H4BB0000000009")
    Charger.objects.create(account=other_account, sn="C1BB0000000009")
    form = _form(account, target="group", group=theirs.code, superType=1, systemSwitch=1)
    assert not form.is_valid() and "group" in form.errors
    form = _form(account, target="selection", sns="H4BB0000000009", superType=1, systemSwitch=1)
    assert not form.is_valid() and "H4BB0000000009" in form.errors["sns"][0]
    form = _form(account, target="chargers", sns="C1BB0000000009", chargerMode=1)
    assert not form.is_valid() and "sns" in form.errors


def test_malformed_sns_are_refused(account, fleet):
    form = _form(account, target="selection", sns="H4AA-000!", superType=1, systemSwitch=1)
    assert not form.is_valid() and "malformed" in form.errors["sns"][0]


@pytest.mark.parametrize("mode", [0, 1, 2, 3])
def test_ev_modes(account, fleet, mode):
    form = _form(account, target="chargers", sns="C1AA0000000001", chargerMode=mode)
    assert form.is_valid(), form.errors
    assert form.action == {"chargerMode": mode}
    assert (form.plan.endpoint, form.plan.polls) == ("pile_cmd", 0)
    assert form.action_field_names() == ["chargerMode"]


def test_ev_mode_is_required_and_bounded(account, fleet):
    assert "chargerMode" in _form(account, target="chargers", sns="C1AA0000000001").errors
    assert "chargerMode" in _form(account, target="chargers", sns="C1AA0000000001", chargerMode=4).errors


def test_chargers_go_in_calls_of_at_most_100(account, fleet):
    Charger.objects.bulk_create(Charger(account=account, sn=f"C1AB{i:010d}") for i in range(250))
    sns = " ".join(f"C1AB{i:010d}" for i in range(250))
    form = _form(account, target="chargers", sns=sns, chargerMode=2)
    assert form.is_valid(), form.errors
    assert [len(b.sns) for b in form.plan.batches] == [100, 100, 50]


def test_a_group_without_members_is_refused(account, fleet):
    empty = Group.objects.create(account=account, remote_id="1002", name="Empty")
    form = _form(account, target="group", group=empty.code, superType=1, systemSwitch=1)
    assert not form.is_valid() and "no members" in form.errors["group"][0]


def test_the_query_string_prefills_the_target(account, fleet, rf):
    query = rf.get("/", {"sn": ["H4AA0000000000", "H4AA0000000001"]}).GET
    assert initial_from_query(query, account)["target"] == "selection"
    query = rf.get("/", {"group": str(fleet.code)}).GET
    assert initial_from_query(query, account) == {"group": str(fleet.code), "target": "group"}
