"""Control specs: every superType/mode, vendor names, ranges, and SN/id list rules."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from solax.control import (
    FIELDS,
    MAX_SNS_PER_CALL,
    MODES,
    PERIOD_1,
    PERIOD_2,
    ControlValidationError,
    PileMode,
    build_control_params,
    clean_id,
    clean_ids,
    clean_sn,
    clean_sns,
    control_params_from_spec,
    required_fields,
)
from solax.errors import RequestValidationError

PERIOD_1_VALUES = dict(zip(PERIOD_1, [1, 0, 5, 30, 17, 0, 21, 59], strict=True))
PERIOD_2_VALUES = dict(zip(PERIOD_2, [12, 0, 13, 0, 18, 0, 19, 30], strict=True))

# (superType, fields) -> the exact parameters expected on the wire, vendor spellings and order.
MINIMAL: dict[tuple[int, int | None, bool], tuple[dict[str, object], dict[str, str]]] = {
    (0, 0, False): ({"mode": 0, "timeout": 10}, {"superType": "0", "mode": "0", "timeout": "10"}),
    (0, 1, False): (
        {"mode": 1, "activePower": 1000, "reactivePower": 0, "setType": 1, "proidTime": 600, "timeout": 10},
        {
            "superType": "0",
            "mode": "1",
            "activePower": "1000",
            "reactivePower": "0",
            "setType": "1",
            "proidTime": "600",
            "timeout": "10",
        },
    ),
    (0, 2, False): (
        {"mode": 2, "setType": 2, "targetEnergy": 5000, "chargerPower": -3000, "timeout": 60},
        {
            "superType": "0",
            "mode": "2",
            "setType": "2",
            "targetEnergy": "5000",
            "chargerPower": "-3000",
            "timeout": "60",
        },
    ),
    (0, 3, False): (
        {"mode": 3, "setType": 1, "targetSoc": 80, "chargerPower": 2500, "timeout": 60},
        {"superType": "0", "mode": "3", "setType": "1", "targetSoc": "80", "chargerPower": "2500", "timeout": "60"},
    ),
    (1, None, False): ({"systemSwitch": 1}, {"superType": "1", "systemSwitch": "1"}),
    (2, 0, False): (
        {"mode": 0, "chargeFromGridEN": 1, "minSoc": 10, "chargeFromGridUpperSoC": 90},
        {"superType": "2", "mode": "0", "chargeFromGridEN": "1", "minSoc": "10", "chargeFromGridUpperSoC": "90"},
    ),
    (2, 1, False): (
        {"mode": 1, "minSoc": 10, "chargeFromGridUpperSoC": 90},
        {"superType": "2", "mode": "1", "minSoc": "10", "chargeFromGridUpperSoC": "90"},
    ),
    (2, 2, False): (
        {"mode": 2, "minSoc": 20, "chargeFromGridUpperSoC": 100},
        {"superType": "2", "mode": "2", "minSoc": "20", "chargeFromGridUpperSoC": "100"},
    ),
    (2, 3, False): ({"mode": 3, "manualMode": 2}, {"superType": "2", "mode": "3", "manualMode": "2"}),
    (2, 10, False): (
        {"mode": 10, **PERIOD_1_VALUES, "p2TimeSetEnable": 0},
        {
            "superType": "2",
            "mode": "10",
            "chargeStartTime1Hour": "1",
            "chargeStartTime1Minute": "0",
            "chargeEndTime1Hour": "5",
            "chargeEndTime1Minute": "30",
            "dischargeStartTime1Hour": "17",
            "dischargeStartTime1Minute": "0",
            "dischargerEndTime1Hour": "21",
            "dischargerEndTime1Minute": "59",
            "p2TimeSetEnable": "0",
        },
    ),
    (2, 10, True): (
        {"mode": 10, **PERIOD_1_VALUES, "p2TimeSetEnable": 1, **PERIOD_2_VALUES},
        {
            "superType": "2",
            "mode": "10",
            **{name: str(value) for name, value in PERIOD_1_VALUES.items()},
            "p2TimeSetEnable": "1",
            "chargeStartTime2Hour": "12",
            "chargeStartTime2Minute": "0",
            "chargeEndTime2Hour": "13",
            "chargeEndTime2Minute": "0",
            "dischargeStartTime2Hour": "18",
            "dischargeStartTime2Minute": "0",
            "dischargeEndTime2Hour": "19",
            "dischargeEndTime2Minute": "30",
        },
    ),
}
COMBOS = list(MINIMAL)


def _fields(combo: tuple[int, int | None, bool]) -> dict[str, object]:
    return dict(MINIMAL[combo][0])


def _errors(super_type: object, **fields: object) -> dict[str, str]:
    with pytest.raises(ControlValidationError) as info:
        build_control_params(super_type, **fields)
    assert info.value.may_have_reached_cloud is False
    return info.value.errors


@pytest.mark.parametrize("combo", COMBOS)
def test_it_accepts_the_minimal_spec_with_exact_vendor_names(combo: tuple[int, int | None, bool]) -> None:
    fields, expected = MINIMAL[combo]
    params = build_control_params(combo[0], **fields)
    assert params == expected
    assert list(params) == list(expected)  # the order of the vendor's table


@pytest.mark.parametrize("combo", COMBOS)
def test_it_accepts_decimal_text_as_well_as_ints(combo: tuple[int, int | None, bool]) -> None:
    fields, expected = MINIMAL[combo]
    assert build_control_params(str(combo[0]), **{k: str(v) for k, v in fields.items()}) == expected


@pytest.mark.parametrize("combo", COMBOS)
def test_required_fields_lists_what_the_minimal_spec_has(combo: tuple[int, int | None, bool]) -> None:
    super_type, mode, p2 = combo
    expected = [name for name in MINIMAL[combo][1] if name not in ("superType", "mode")]
    assert required_fields(super_type, mode, p2=p2) == expected


@pytest.mark.parametrize(
    ("combo", "missing"),
    [(combo, name) for combo in COMBOS for name in MINIMAL[combo][0]],
)
def test_it_names_each_missing_required_field(combo: tuple[int, int | None, bool], missing: str) -> None:
    fields = _fields(combo)
    del fields[missing]
    errors = _errors(combo[0], **fields)
    assert missing in errors
    if missing != "p2TimeSetEnable":  # without the switch the period-2 fields are also out of place
        assert list(errors) == [missing]
    assert errors[missing] == "required"


@pytest.mark.parametrize(
    ("combo", "name", "bad"),
    [
        (combo, name, bad)
        for combo in COMBOS
        for name in MINIMAL[combo][0]
        if name != "mode"
        for bad in (FIELDS[name].min - 1, FIELDS[name].max + 1)
    ],
)
def test_it_names_each_out_of_range_field(combo: tuple[int, int | None, bool], name: str, bad: int) -> None:
    fields = {**_fields(combo), name: bad}
    errors = _errors(combo[0], **fields)
    assert name in errors
    assert "between" in errors[name]


def test_it_lists_every_bad_field_at_once() -> None:
    errors = _errors(
        0,
        mode=1,
        activePower=70000,  # out of range
        reactivePower="lots",  # not a number
        setType=2,  # update is only for modes 2/3
        timeout=0,  # durations are positive
        targetSoc=50,  # not used by mode 1
        systemSwich=1,  # the table's misspelling: unknown, with a hint
        colour="red",  # unknown
    )
    assert set(errors) == {
        "activePower",
        "reactivePower",
        "setType",
        "timeout",
        "proidTime",
        "targetSoc",
        "systemSwich",
        "colour",
    }
    assert errors["proidTime"] == "required"
    assert "systemSwitch" in errors["systemSwich"]
    assert errors["colour"] == "unknown parameter"


def test_the_message_lists_every_field() -> None:
    with pytest.raises(ControlValidationError) as info:
        build_control_params(2, mode=0, minSoc=101)
    message = str(info.value)
    for name in ("minSoc", "chargeFromGridEN", "chargeFromGridUpperSoC"):
        assert name in message


@pytest.mark.parametrize("mode", [1, 2, 3])
def test_set_type_2_is_only_for_modes_2_and_3(mode: int) -> None:
    combo = (0, mode, False)
    fields = {**_fields(combo), "setType": 2}
    if mode == 1:
        assert "setType" in _errors(0, **fields)
    else:
        assert build_control_params(0, **fields)["setType"] == "2"


def test_period_2_fields_need_p2_enabled() -> None:
    fields = {**_fields((2, 10, False)), **PERIOD_2_VALUES}
    errors = _errors(2, **fields)
    assert set(errors) == set(PERIOD_2)
    assert all("p2TimeSetEnable=1" in message for message in errors.values())


def test_p2_enabled_requires_every_period_2_field() -> None:
    fields = {**_fields((2, 10, False)), "p2TimeSetEnable": 1}
    errors = _errors(2, **fields)
    assert errors == dict.fromkeys(PERIOD_2, "required")


def test_the_vendor_misspellings_are_kept() -> None:
    assert {"proidTime", "dischargerEndTime1Hour", "dischargerEndTime1Minute"} <= set(FIELDS)
    assert {"dischargeEndTime2Hour", "dischargeEndTime2Minute", "chargeFromGridUpperSoC"} <= set(FIELDS)
    assert "dischargeEndTime1Hour" not in FIELDS
    assert "dischargerEndTime2Hour" not in FIELDS


def test_active_power_is_required_for_mode_1() -> None:
    fields = _fields((0, 1, False))
    del fields["activePower"]
    assert _errors(0, **fields) == {"activePower": "required"}


@pytest.mark.parametrize("mode", [4, 5, 10])
def test_super_type_0_has_modes_0_to_3(mode: int) -> None:
    assert "mode" in _errors(0, mode=mode, timeout=10)


@pytest.mark.parametrize("mode", [4, 9, 11])
def test_super_type_2_has_modes_0_to_3_and_10(mode: int) -> None:
    assert "mode" in _errors(2, mode=mode)


def test_mode_is_required_for_super_types_0_and_2() -> None:
    assert _errors(0, timeout=10) == {"mode": "required"}
    assert _errors(2) == {"mode": "required"}


def test_super_type_1_takes_no_mode() -> None:
    assert set(_errors(1, systemSwitch=1, mode=0)) == {"mode"}


@pytest.mark.parametrize("super_type", [3, -1, "x", None, True])
def test_unknown_super_types_are_refused(super_type: object) -> None:
    assert "superType" in _errors(super_type, mode=0, timeout=10)


def test_super_type_in_fields_is_refused() -> None:
    assert "superType" in _errors(0, superType=0, mode=0, timeout=10)


@pytest.mark.parametrize("value", [True, 1.5, 10.0, None, "1e3", "", [1]])
def test_only_integers_are_accepted(value: object) -> None:
    assert "timeout" in _errors(0, mode=0, timeout=value)


def test_control_params_from_spec_round_trips() -> None:
    params = build_control_params(0, **_fields((0, 1, False)))
    assert control_params_from_spec(params) == params
    with pytest.raises(ControlValidationError) as info:
        control_params_from_spec({"mode": 0, "timeout": 10})
    assert info.value.errors == {"superType": "required"}


def test_required_fields_refuses_unknown_combinations() -> None:
    with pytest.raises(ControlValidationError):
        required_fields(0, 10)
    with pytest.raises(ControlValidationError):
        required_fields(5, 0)
    assert required_fields(1) == ["systemSwitch"]


def test_field_specs_carry_form_metadata() -> None:
    assert (FIELDS["activePower"].min, FIELDS["activePower"].max, FIELDS["activePower"].unit) == (-65535, 65535, "W")
    assert (FIELDS["targetSoc"].min, FIELDS["targetSoc"].max) == (0, 100)
    assert FIELDS["chargeStartTime2Hour"].max == 23 and FIELDS["chargeStartTime2Minute"].max == 59
    assert FIELDS["proidTime"].min == 1 and FIELDS["timeout"].min == 1
    assert FIELDS["manualMode"].choices[1] == "Forced charge"
    assert MODES[2][10] and set(MODES[0]) == {0, 1, 2, 3}


def test_pile_modes() -> None:
    assert [(m.name, m.value) for m in PileMode] == [("STOP", 0), ("FAST", 1), ("ECO", 2), ("GREEN", 3)]


# -- property tests for the ranges -----------------------------------------------------------------

RANGED = [(combo, name) for combo in COMBOS for name in MINIMAL[combo][0] if name != "mode"]


@given(data=st.data())
def test_every_in_range_value_is_accepted(data: st.DataObject) -> None:
    combo, name = data.draw(st.sampled_from(RANGED))
    spec = FIELDS[name]
    value = data.draw(st.integers(spec.min, spec.max))
    if combo[0] == 0 and name == "setType" and combo[1] == 1:
        value = 1  # the one cross-field rule: mode 1 only sets
    if name == "p2TimeSetEnable":
        return  # switching period 2 changes which fields are required: covered above
    params = build_control_params(combo[0], **{**_fields(combo), name: value})
    assert params[name] == str(value)


@given(data=st.data())
def test_every_out_of_range_value_is_named(data: st.DataObject) -> None:
    combo, name = data.draw(st.sampled_from(RANGED))
    spec = FIELDS[name]
    value = data.draw(st.integers(max_value=spec.min - 1) | st.integers(min_value=spec.max + 1))
    value = max(min(value, 10**12 - 1), -(10**12) + 1)
    errors = _errors(combo[0], **{**_fields(combo), name: value})
    assert name in errors


@given(power=st.integers(-65535, 65535), reactive=st.integers(-65535, 65535), seconds=st.integers(1, 65535))
def test_power_control_accepts_the_whole_signed_range(power: int, reactive: int, seconds: int) -> None:
    params = build_control_params(
        0, mode=1, activePower=power, reactivePower=reactive, setType=1, proidTime=seconds, timeout=seconds
    )
    assert (int(params["activePower"]), int(params["reactivePower"])) == (power, reactive)


@given(hour=st.integers(), minute=st.integers())
def test_time_windows_accept_exactly_hours_0_23_and_minutes_0_59(hour: int, minute: int) -> None:
    hour, minute = max(min(hour, 10**11), -(10**11)), max(min(minute, 10**11), -(10**11))
    fields = {**_fields((2, 10, False)), "chargeStartTime1Hour": hour, "dischargerEndTime1Minute": minute}
    expected_bad = {name for name, ok in (("chargeStartTime1Hour", 0 <= hour <= 23),) if not ok}
    expected_bad |= {"dischargerEndTime1Minute"} if not 0 <= minute <= 59 else set()
    if expected_bad:
        assert set(_errors(2, **fields)) == expected_bad
    else:
        build_control_params(2, **fields)


# -- SN and id lists -------------------------------------------------------------------------------


def test_sn_lists_lose_duplicates_but_keep_their_order() -> None:
    assert clean_sns(["B2", "A1", "B2", " C3 ", "A1"]) == ["B2", "A1", "C3"]
    assert clean_sns("B2,A1,B2") == ["B2", "A1"]


def test_sn_lists_are_capped_after_deduplication() -> None:
    sns = [f"SW{i:08d}" for i in range(MAX_SNS_PER_CALL)]
    assert len(clean_sns(sns + sns[:5], limit=MAX_SNS_PER_CALL)) == MAX_SNS_PER_CALL
    with pytest.raises(ControlValidationError) as info:
        clean_sns([*sns, "SW99999999"], limit=MAX_SNS_PER_CALL, error=ControlValidationError)
    assert "at most 100" in info.value.errors["sns"]


@pytest.mark.parametrize("bad", ["", "  ", "SW 1", "SW-1", "H475*****", "A" * 41, None, 12345])
def test_malformed_sns_are_refused(bad: object) -> None:
    with pytest.raises(RequestValidationError) as info:
        clean_sn(bad)
    assert "sn" in info.value.errors


def test_an_sn_list_names_every_malformed_sn() -> None:
    with pytest.raises(RequestValidationError) as info:
        clean_sns(["SW1", "bad sn", "H475*****"], "snList")
    assert "'bad sn'" in info.value.errors["snList"] and "'H475*****'" in info.value.errors["snList"]


def test_empty_lists_are_refused() -> None:
    with pytest.raises(RequestValidationError):
        clean_sns([])
    with pytest.raises(RequestValidationError):
        clean_ids("")


def test_ids_are_text_and_exact() -> None:
    assert clean_id(1018715761234567891) == "1018715761234567891"
    assert clean_ids(["101", 101, "102"]) == ["101", "102"]
    for bad in (1.5, True, "", "1 2", None):
        with pytest.raises(RequestValidationError):
            clean_id(bad)
