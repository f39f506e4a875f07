"""Tolerant parsing: every example answer of the two vendor documents, and every quirk in NOTES.md.

The examples are copied verbatim. The documents mask digits with ``*****``: inside numbers (ids) we
fill the mask with ten digits, which also makes the ids larger than 2**53 so that a float anywhere
would show; masks inside SNs and task ids ("SW*****") are kept as the documents print them.
"""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from solax.errors import ResponseParseError
from solax.models import BindResult, Group, Member, Page, PileInfo
from solax.parsing import (
    MAX_RAW_CHARS,
    load_json,
    parse_bind_result,
    parse_callback,
    parse_cloud_time,
    parse_envelope,
    parse_group_page,
    parse_id,
    parse_member_page,
    parse_pile_info,
    parse_query_result,
    parse_task_id,
    repair_json,
)

# -- VPP control API document, "JSON output" of each section --------------------------------------

SINGLE_CONTROL_1_1 = '{"exception":null,"result":1491590611234567890,"success":true}'
BATCH_CONTROL_1_2 = '{"exception":null,"result":1032530071234567890, "success":true}'
GROUP_CONTROL_1_3 = '{"exception":null,"result":1032530071234567890,"success":true}'
GROUP_ADD_2_1 = '{"exception":null,"result": 1028902641234567890,"success":true}'
NULL_RESULT = '{"exception":null,"result":null,"success":true}'  # 2.2, 2.3, 2.4, 3.2, 3.3
# 2.5 as printed: the top-level "}" is missing, so "success" ends up inside "result".
GROUP_QUERY_2_5 = (
    '{"exception":null,"result":{"num":11,"list":[{"id":1018715761234567890,"name":"126","num":2,'
    '"createTime":"2020-12-07 06:42:51","updateTime":null}, {"id":1018715760987654321,"name":"127","num":3,'
    '"createTime":"2020-12-07 08:02:33","updateTime":null}], "success":true}'
)
GROUP_FUZZY_QUERY_2_6 = """{
  "exception": null,
  "result": {
    "num": 2,
    "list": [
      {
        "id": "1019654141234567890",
        "name": "12",
        "num": 4,
        "createTime": "2020-12-08 08:35:21",
        "updateTime": null
      },
      {
        "id": "1018715761234567890",
        "name": "126",
        "num": 2,
        "createTime": "2020-12-07 06:42:51",
        "updateTime": null
      }
    ]
  },
  "success": true
}"""
INVERTER_ADD_3_1 = """{
  "exception": null,
  "result": "1033636421234567890",
  "success": true
}"""
INVERTER_UPDATE_3_4 = '{"exception":"update succeeded","result":null,"success":true}'
# 3.5 and 3.6 as printed: createTime unquoted, ids as JSON numbers.
INVERTER_QUERY_3_5 = (
    '{"exception":null,"result":{"num":2,"list":[{"id":1033636421234567890,"groupId":1028902641234567890,'
    '"wifiSn":"SW*****","inverterSn":"H475*****","groupStatus":1,"ratePower":7.5,'
    '"createTime":2020-12-10 15:32:17,"updateTime":null},{"id":1033636741234567890,'
    '"groupId":1028902641234567890,"wifiSn":"SW*****","inverterSn":"H475*****","groupStatus":1,'
    '"ratePower":7.5,"createTime":2020-12-10 15:32:17,"updateTime":null}]},"success":true}'
)
INVERTER_FUZZY_QUERY_3_6 = (
    '{"exception":null,"result":{"num":1,"list":[{"id":1033636421234567890,"groupId":1028902641234567890,'
    '"wifiSn":"SW*****","inverterSn":"H475*****","groupStatus":1,"ratePower":7.5,'
    '"createTime":2020-12-10 15:32:17,"updateTime":null}]},"success":true}'
)
QUERY_COMMAND_4_1 = '{"exception":null,"result":{"taskId":"acdba8cb2e7747aa80cf95*****"},"success":true}'
QUERY_RESULT_4_2 = '{"exception":null,"result":{"SW*****":"null","SW*****":"null"},"success":true\n}'
BIND_5 = '{  "exception": null,  "code": 0,  "success": true,  "Non-existent sn": "a,b,c"}'

# -- EV charger API document ------------------------------------------------------------------------

PILE_CMD_3_1_7 = """{
    "success": true,
    "exception": "accept success",
    "result": {
         "taskId": "4746ce28cf09464b85d5425606fc4f9c"
    }
}"""
PILE_INFO_3_2_7 = """{
  "success": true,
  "exception": "query success",
  "result": {
    "chargerStatus": 0,
    "chargingMode": 0,
    "chargeEnergy": 0,
    "chargingPower": 6
  }
}"""
# 3.1.6: the document interleaves explanations with the JSON; here they are removed, nothing else
# (the comma missing after "issue successfully" is the document's).
CALLBACK_SENT = """{
"success": true,
"result": {
"ack": "issue successfully"
 "failureList": [
"XXXXXX"
]
},
"rspType": 1,
"taskId": "c40c3d8d43684a74b275c645b69300c0",
"code": "0"
}"""
CALLBACK_DEVICE = """{
"success": true,
"result": {
"ack": "success",
"sn":  "XXXXXXX"
},
"rspType": 2,
"taskId": "c40c3d8d43684a74b275c645b69300c0",
"code": "0"
}"""
CALLBACK_COMPLETE = """{
"success": true,
"result": {
"ack": "all handled",
"timeoutList": [
"XXXXXX"
]
},
"rspType": 3,
"taskId": "c40c3d8d43684a74b275c645b69300c0",
"code": "0"
}"""
# 3.1.7 with the document's explanations left in: not JSON, and must fail cleanly.
PILE_CMD_3_1_7_ANNOTATED = """{
    "success": true,       cmd receive status true: receive
success
    "exception": "accept success",
    "result": {
         "taskId": "4746ce28cf09464b85d5425606fc4f9c"  current task id
    }
}"""


def test_control_examples_give_exact_command_ids() -> None:
    assert parse_id(parse_envelope(SINGLE_CONTROL_1_1).result) == "1491590611234567890"
    assert parse_id(parse_envelope(BATCH_CONTROL_1_2).result) == "1032530071234567890"
    assert parse_id(parse_envelope(GROUP_CONTROL_1_3).result) == "1032530071234567890"


def test_group_add_example_gives_the_group_id() -> None:
    envelope = parse_envelope(GROUP_ADD_2_1)
    assert (envelope.success, envelope.exception, parse_id(envelope.result)) == (True, None, "1028902641234567890")


def test_null_result_example() -> None:
    envelope = parse_envelope(NULL_RESULT)
    assert envelope.success and envelope.result is None and envelope.exception is None


def test_group_query_example_survives_its_missing_brace() -> None:
    envelope = parse_envelope(GROUP_QUERY_2_5)
    assert envelope.success is True
    assert parse_group_page(envelope.result) == Page(
        total=11,
        items=[
            Group("1018715761234567890", "126", 2, "2020-12-07 06:42:51", None),
            Group("1018715760987654321", "127", 3, "2020-12-07 08:02:33", None),
        ],
    )


def test_group_fuzzy_query_example_with_string_ids() -> None:
    page = parse_group_page(parse_envelope(GROUP_FUZZY_QUERY_2_6).result)
    assert page.total == 2
    assert [(g.id, g.name, g.member_count) for g in page.items] == [
        ("1019654141234567890", "12", 4),
        ("1018715761234567890", "126", 2),
    ]


def test_inverter_add_example() -> None:
    assert parse_id(parse_envelope(INVERTER_ADD_3_1).result) == "1033636421234567890"


def test_inverter_update_example_is_a_success_with_an_exception_text() -> None:
    envelope = parse_envelope(INVERTER_UPDATE_3_4)
    assert envelope.success is True and envelope.exception == "update succeeded"


def test_inverter_query_example_with_unquoted_times() -> None:
    page = parse_member_page(parse_envelope(INVERTER_QUERY_3_5).result)
    assert page.total == 2
    assert page.items[0] == Member(
        id="1033636421234567890",
        group_id="1028902641234567890",
        wifi_sn="SW*****",
        inverter_sn="H475*****",
        in_group=True,
        rated_power=7.5,
        create_time="2020-12-10 15:32:17",
        update_time=None,
    )
    assert page.items[1].id == "1033636741234567890"


def test_inverter_fuzzy_query_example() -> None:
    page = parse_member_page(parse_envelope(INVERTER_FUZZY_QUERY_3_6).result)
    assert (page.total, len(page.items), page.items[0].create_time) == (1, 1, "2020-12-10 15:32:17")


def test_query_command_example() -> None:
    assert parse_task_id(parse_envelope(QUERY_COMMAND_4_1).result) == "acdba8cb2e7747aa80cf95*****"


def test_query_result_example_is_pending() -> None:
    # Both dongles of the example print as "SW*****", so they collapse into one key.
    assert parse_query_result(parse_envelope(QUERY_RESULT_4_2).result) == {"SW*****": None}


def test_bind_example() -> None:
    envelope = parse_envelope(BIND_5)
    assert envelope.code == "0"
    assert parse_bind_result(envelope.data) == BindResult(
        bound=[], failed=[], already_bound=[], unknown=["a", "b", "c"]
    )


def test_pile_cmd_example() -> None:
    envelope = parse_envelope(PILE_CMD_3_1_7)
    assert envelope.exception == "accept success"
    assert parse_task_id(envelope.result) == "4746ce28cf09464b85d5425606fc4f9c"


def test_pile_info_example() -> None:
    info = parse_pile_info(parse_envelope(PILE_INFO_3_2_7).result)
    assert info == PileInfo(status=0, mode=0, power=6.0, energy=0.0)


def test_pile_info_accepts_the_tables_capitalisation() -> None:
    info = parse_pile_info({"chargerStatus": 2, "chargingMode": "1", "ChargingPower": 7.2, "chargeEnergy": 3.5})
    assert info == PileInfo(status=2, mode=1, power=7.2, energy=3.5)
    assert parse_pile_info({"chargerStatus": 0, "chargingMode": 0}).power is None


def test_callback_sent() -> None:
    callback = parse_callback(CALLBACK_SENT.encode())
    assert (callback.rsp_type, callback.task_id, callback.code, callback.ack) == (
        1,
        "c40c3d8d43684a74b275c645b69300c0",
        "0",
        "issue successfully",
    )
    assert callback.failure_list == ["XXXXXX"] and callback.success and not callback.is_final


def test_callback_device() -> None:
    callback = parse_callback(CALLBACK_DEVICE)
    assert (callback.rsp_type, callback.sn, callback.code, callback.ack) == (2, "XXXXXXX", "0", "success")


def test_callback_complete() -> None:
    callback = parse_callback(CALLBACK_COMPLETE)
    assert callback.is_final and callback.timeout_list == ["XXXXXX"] and callback.code == "0"


def test_callback_code_stays_text_and_failures_are_listed() -> None:
    body = {"success": False, "result": {"ack": "x", "failureList": ["A1", "B2"]}, "rspType": "1", "taskId": "t1"}
    callback = parse_callback(json.dumps({**body, "code": "2"}))
    assert (callback.success, callback.code, callback.failure_list) == (False, "2", ["A1", "B2"])
    assert parse_callback(json.dumps({**body, "code": 1})).code == "1"


@pytest.mark.parametrize(
    "body",
    [
        PILE_CMD_3_1_7_ANNOTATED,
        '{"rspType": 4, "taskId": "t"}',
        '{"rspType": 1}',
        '{"rspType": "x", "taskId": "t"}',
        "[]",
        "callback",
        b"\xff\xfe",
    ],
)
def test_bad_callbacks_raise_parse_errors(body: str | bytes) -> None:
    with pytest.raises(ResponseParseError) as info:
        parse_callback(body)
    assert info.value.body is not None


def test_the_annotated_pile_cmd_example_is_a_parse_error_with_the_raw_text() -> None:
    with pytest.raises(ResponseParseError) as info:
        parse_envelope(PILE_CMD_3_1_7_ANNOTATED)
    assert "cmd receive status" in (info.value.body or "")
    assert info.value.may_have_reached_cloud is True


# -- quirks -----------------------------------------------------------------------------------------


def test_big_ids_never_go_through_float() -> None:
    envelope = parse_envelope('{"success":true,"result":{"id":101871576123456789,"groupId":9007199254740993}}')
    assert envelope.result == {"id": "101871576123456789", "groupId": "9007199254740993"}


@given(st.integers(min_value=0, max_value=10**30))
def test_any_integer_id_round_trips_exactly(number: int) -> None:
    body = f'{{"success":true,"result":{number},"list":[{{"id":{number},"num":{number}}}]}}'
    envelope = parse_envelope(body)
    assert envelope.result == str(number)
    assert envelope.data["list"] == [{"id": str(number), "num": number}]


def test_quantities_stay_numbers() -> None:
    result = parse_envelope('{"success":true,"result":{"num":11,"ratePower":7.5,"groupStatus":1}}').result
    assert result == {"num": 11, "ratePower": 7.5, "groupStatus": 1}


@pytest.mark.parametrize(
    ("flag", "expected"),
    [('"success":true', True), ('"isSuccess":false', False), ('"isSuccess":"true"', True), ('"success":0', False)],
)
def test_success_or_is_success(flag: str, expected: bool) -> None:
    assert parse_envelope(f'{{"exception":null,{flag},"result":null}}').success is expected


def test_a_missing_success_flag_is_a_parse_error() -> None:
    with pytest.raises(ResponseParseError, match="success flag"):
        parse_envelope('{"exception":null,"result":1}')
    with pytest.raises(ResponseParseError):
        parse_envelope('{"success":"maybe"}')


def test_result_as_a_plain_string_and_code() -> None:
    envelope = parse_envelope('{"success":false,"exception":null,"result":"token invalid!","code":103}')
    assert (envelope.success, envelope.result, envelope.code) == (False, "token invalid!", "103")


@pytest.mark.parametrize("text", ["null", "", "NULL"])
def test_null_texts_are_none(text: str) -> None:
    envelope = parse_envelope(json.dumps({"success": True, "exception": text, "result": {"SW1": text}}))
    assert envelope.exception is None
    assert parse_query_result(envelope.result) == {"SW1": None}


def test_query_result_answers_and_pending() -> None:
    assert parse_query_result({"SW1": "success", "SW2": None, "SW3": "null", "SW4": 1}) == {
        "SW1": "success",
        "SW2": None,
        "SW3": None,
        "SW4": "1",
    }
    assert parse_query_result(None) == {} and parse_query_result("null") == {}
    with pytest.raises(ResponseParseError):
        parse_query_result(["SW1"])


def test_task_id_is_none_while_pending() -> None:
    for result in (None, "null", {}, {"taskId": None}, {"taskId": "null"}, {"taskId": ""}):
        assert parse_task_id(result) is None
    assert parse_task_id({"taskId": 123}) == "123"


def test_bind_keys_with_spaces_and_variants() -> None:
    body = {
        "success": True,
        "Binding success": "AAA,BBB, CCC",
        "Binding fail": "DDD",
        "Have bound sn": "EEE",
        "Non-existent sn": "",
    }
    assert parse_bind_result(body) == BindResult(["AAA", "BBB", "CCC"], ["DDD"], ["EEE"], [])
    assert parse_bind_result({"bindingSuccess": ["A1"], "non_existent_sn": None}) == BindResult(["A1"], [], [], [])


def test_repair_keeps_strings_untouched() -> None:
    text = '{"exception":"at :2020-12-10 15:32:17, boom","createTime":2020-12-10 15:32:17,"x":[1,2,],}'
    assert json.loads(repair_json(text)) == {
        "exception": "at :2020-12-10 15:32:17, boom",
        "createTime": "2020-12-10 15:32:17",
        "x": [1, 2],
    }


def test_repair_mends_bare_words_and_keys() -> None:
    assert load_json('{success: True, "result": None, "sn": SW12345, "n": 0012}') == {
        "success": True,
        "result": None,
        "sn": "SW12345",
        "n": "0012",
    }


def test_a_truncated_body_is_not_repaired_into_a_wrong_id() -> None:
    with pytest.raises(ResponseParseError):
        parse_envelope('{"success":true,"result":14915')
    with pytest.raises(ResponseParseError):
        parse_envelope('{"success":true,"result":"1491')


@pytest.mark.parametrize(
    "body",
    ["<html><body>Service Unavailable</body></html>", "", "   ", "true", "[1,2]", '"text"', "{{{{", "{]"],
)
def test_non_envelopes_are_parse_errors(body: str) -> None:
    with pytest.raises(ResponseParseError):
        parse_envelope(body)


def test_the_raw_text_on_a_parse_error_is_bounded() -> None:
    with pytest.raises(ResponseParseError) as info:
        parse_envelope("{" + "x" * (MAX_RAW_CHARS * 2))
    assert info.value.body is not None and len(info.value.body) < 5000


def test_deep_nesting_is_a_parse_error_not_a_crash() -> None:
    with pytest.raises(ResponseParseError):
        parse_envelope("[" * 100_000)


def test_envelope_raw_is_bounded_and_bytes_are_accepted() -> None:
    body = json.dumps({"success": True, "result": "x" * (MAX_RAW_CHARS * 2)}).encode()
    envelope = parse_envelope(b"\xef\xbb\xbf" + body, status=200)
    assert envelope.status == 200 and len(envelope.raw) < MAX_RAW_CHARS + 100


@given(st.text(max_size=300))
def test_any_text_is_an_envelope_or_a_parse_error(text: str) -> None:
    with contextlib.suppress(ResponseParseError):
        parse_envelope(text)


@given(st.binary(max_size=300))
def test_any_bytes_are_a_callback_or_a_parse_error(body: bytes) -> None:
    with contextlib.suppress(ResponseParseError):
        parse_callback(body)


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=5),
        lambda c: st.lists(c) | st.dictionaries(st.text(max_size=5), c),
        max_leaves=20,
    )
)
def test_damaged_json_never_escapes_as_another_exception(value: object) -> None:
    text = json.dumps({"success": True, "result": value})
    for damaged in (text[:-1], text.replace('"', "", 1), text.replace(",", "", 1), text + "}"):
        with contextlib.suppress(ResponseParseError):
            parse_envelope(damaged)


def test_page_shape_errors() -> None:
    with pytest.raises(ResponseParseError):
        parse_group_page("oops")
    with pytest.raises(ResponseParseError):
        parse_member_page({"num": 1, "list": [1]})
    with pytest.raises(ResponseParseError):
        parse_group_page({"num": 1, "list": [{"name": "no id"}]})
    assert parse_group_page({"num": 0, "list": None}) == Page(0, [])


def test_parse_id_refuses_nothing() -> None:
    for bad in (None, "", "null", True, 1.5, {}):
        with pytest.raises(ResponseParseError):
            parse_id(bad)


def test_parse_cloud_time() -> None:
    assert parse_cloud_time("2020-12-10 15:32:17") is not None
    assert parse_cloud_time("2020-12-10 15:32:17").hour == 15  # type: ignore[union-attr]
    assert parse_cloud_time("yesterday") is None and parse_cloud_time(None) is None
