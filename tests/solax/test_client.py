"""SolaxClient: the request each endpoint sends, the parsing of each documented answer, the transport
settings and the authentication seam (HTTP mocked with ``responses``; a few real sockets at the end)."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from solax.client import DEFAULT_EV_BASE_URL, DEFAULT_VPP_BASE_URL, SolaxClient, TokenAuth
from solax.control import MAX_SNS_PER_CALL, PileMode, build_control_params
from solax.endpoints import ENDPOINTS, RESULT_PARSERS
from solax.errors import (
    AuthError,
    ControlValidationError,
    InvalidTokenError,
    NotSentError,
    RequestValidationError,
    ResponseParseError,
    SolaxTimeout,
    TransportError,
)
from solax.models import BindResult, Envelope, Group, Member, Page, PileInfo
from tests.solax import test_parsing as doc

TOKEN = "20201109092101234567890"
EV_DOC_TOKEN = "202304131045272667677913"  # the token printed in EV doc 3.1.5
VPP = DEFAULT_VPP_BASE_URL
EV = DEFAULT_EV_BASE_URL


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def client() -> Iterator[SolaxClient]:
    with SolaxClient(TOKEN) as solax:
        yield solax


def sent(mock: responses.RequestsMock, index: int = 0) -> tuple[str, str, dict[str, str], Any]:
    """Return method, path, query (one value per name) and decoded body of a recorded request."""
    request = mock.calls[index].request
    parts = urlsplit(request.url or "")
    query = {key: values[0] for key, values in parse_qs(parts.query, keep_blank_values=True).items()}
    body = request.body
    if isinstance(body, bytes):
        body = body.decode()
    return request.method or "", parts.path, query, json.loads(body) if body else None


@dataclass(frozen=True)
class Case:
    method: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    endpoint: str
    sent: dict[str, Any]  # query (VPP, getPileInfo) or JSON body (regsn, pileCmd), token excepted
    answer: str  # the document's example answer
    expected: Any


CONTROL_1 = build_control_params(0, mode=1, activePower=1000, reactivePower=0, setType=1, proidTime=600, timeout=10)
SWITCH_ON = build_control_params(1, systemSwitch=1)
MEMBER_3_5 = Member(
    "1033636421234567890",
    "1028902641234567890",
    "SW*****",
    "H475*****",
    True,
    7.5,
    "2020-12-10 15:32:17",
    None,
)
PILE_SNS = ["SMARTARMXINPIA", "XM3202HC263025", "XB3233HC225009"]
CALLBACK_URL = "http://solax01:9000/callback/ackprint/info"

CASES = [
    Case(
        "single_control",
        ("H4751234567890", CONTROL_1),
        {},
        "single_control",
        {"sn": "H4751234567890", **CONTROL_1},
        doc.SINGLE_CONTROL_1_1,
        "1491590611234567890",
    ),
    Case(
        "batch_control",
        (["H4751234567890", "H4750987654321", "H4751234567890"], SWITCH_ON),
        {},
        "batch_control",
        {"snList": "H4751234567890,H4750987654321", "superType": "1", "systemSwitch": "1"},
        doc.BATCH_CONTROL_1_2,
        "1032530071234567890",
    ),
    Case(
        "group_control",
        ("1028902641234567890", SWITCH_ON),
        {},
        "group_control",
        {"groupId": "1028902641234567890", "superType": "1", "systemSwitch": "1"},
        doc.GROUP_CONTROL_1_3,
        "1032530071234567890",
    ),
    Case("group_add", ("VPP_lcx01",), {}, "group_add", {"name": "VPP_lcx01"}, doc.GROUP_ADD_2_1, "1028902641234567890"),
    Case(
        "group_update",
        ("1028902641234567890", "VPP_lcx05"),
        {},
        "group_update",
        {"id": "1028902641234567890", "name": "VPP_lcx05"},
        doc.NULL_RESULT,
        None,
    ),
    Case(
        "group_delete",
        ("1018715761234567890",),
        {},
        "group_delete",
        {"id": "1018715761234567890"},
        doc.NULL_RESULT,
        None,
    ),
    Case(
        "group_delete_batch",
        (["1018715671234567890", "1031038521234567890"],),
        {},
        "group_delete_batch",
        {"ids": "1018715671234567890,1031038521234567890"},
        doc.NULL_RESULT,
        None,
    ),
    Case(
        "group_query",
        (1, 2),
        {},
        "group_query",
        {"current": "1", "size": "2"},
        doc.GROUP_QUERY_2_5,
        Page(
            11,
            [
                Group("1018715761234567890", "126", 2, "2020-12-07 06:42:51", None),
                Group("1018715760987654321", "127", 3, "2020-12-07 08:02:33", None),
            ],
        ),
    ),
    Case(
        "group_fuzzy_query",
        ("12",),
        {},
        "group_fuzzy_query",
        {"name": "12"},
        doc.GROUP_FUZZY_QUERY_2_6,
        Page(
            2,
            [
                Group("1019654141234567890", "12", 4, "2020-12-08 08:35:21", None),
                Group("1018715761234567890", "126", 2, "2020-12-07 06:42:51", None),
            ],
        ),
    ),
    Case(
        "inverter_add",
        ("1018715761234567890", "H47512345678902"),
        {},
        "inverter_add",
        {"groupId": "1018715761234567890", "inverterSn": "H47512345678902"},
        doc.INVERTER_ADD_3_1,
        "1033636421234567890",
    ),
    Case(
        "inverter_delete",
        ("1033636741234567890",),
        {},
        "inverter_delete",
        {"id": "1033636741234567890"},
        doc.NULL_RESULT,
        None,
    ),
    Case(
        "inverter_delete_batch",
        (["1033636421234567890", "1033636741234567890"],),
        {},
        "inverter_delete_batch",
        {"ids": "1033636421234567890,1033636741234567890"},
        doc.NULL_RESULT,
        None,
    ),
    Case(
        "inverter_update",
        ("1033636421234567890", "H4751234567890"),
        {},
        "inverter_update",
        {"id": "1033636421234567890", "newInverterSn": "H4751234567890"},
        doc.INVERTER_UPDATE_3_4,
        None,
    ),
    Case(
        "inverter_query",
        ("1028902641234567890", 1, 2),
        {},
        "inverter_query",
        {"groupId": "1028902641234567890", "current": "1", "size": "2"},
        doc.INVERTER_QUERY_3_5,
        Page(2, [MEMBER_3_5, replace(MEMBER_3_5, id="1033636741234567890")]),
    ),
    Case(
        "inverter_fuzzy_query",
        ("1028902641234567890",),
        {"wifi_sn": "SW12345678", "inverter_sn": "H4751234567890"},
        "inverter_fuzzy_query",
        {"groupId": "1028902641234567890", "wifiSn": "SW12345678", "inverterSn": "H4751234567890"},
        doc.INVERTER_FUZZY_QUERY_3_6,
        Page(1, [MEMBER_3_5]),
    ),
    Case(
        "query_command",
        ("1032530071234567890",),
        {},
        "query_command",
        {"commandId": "1032530071234567890"},
        doc.QUERY_COMMAND_4_1,
        "acdba8cb2e7747aa80cf95*****",
    ),
    Case(
        "query_result",
        ("acd8a8cb2e7747aa80cf9512345",),
        {},
        "query_result",
        {"taskId": "acd8a8cb2e7747aa80cf9512345"},
        doc.QUERY_RESULT_4_2,
        {"SW*****": None},
    ),
    Case(
        "bind_devices",
        (["a", "b", "c"],),
        {},
        "bind_devices",
        {"sns": "a,b,c"},
        doc.BIND_5,
        BindResult([], [], [], ["a", "b", "c"]),
    ),
    Case(
        "pile_cmd",
        (PILE_SNS, PileMode.STOP, CALLBACK_URL),
        {},
        "pile_cmd",
        {"rwType": "2", "cmdType": "1", "cmdValue": "0", "sns": PILE_SNS, "callbackUrl": CALLBACK_URL},
        doc.PILE_CMD_3_1_7,
        "4746ce28cf09464b85d5425606fc4f9c",
    ),
    Case(
        "pile_info",
        ("MC206TEST45678",),
        {},
        "pile_info",
        {"pileSn": "MC206TEST45678"},
        doc.PILE_INFO_3_2_7,
        PileInfo(0, 0, 6.0, 0.0),
    ),
]


def test_every_endpoint_has_a_case() -> None:
    assert sorted(case.endpoint for case in CASES) == sorted(ENDPOINTS)


@pytest.mark.parametrize("case", CASES, ids=[case.endpoint for case in CASES])
def test_each_endpoint_sends_the_documented_request_and_parses_the_documented_answer(
    case: Case, client: SolaxClient, rsps: responses.RequestsMock
) -> None:
    endpoint = ENDPOINTS[case.endpoint]
    base = VPP if endpoint.base == "vpp" else EV
    rsps.add(endpoint.method, base + endpoint.path, body=case.answer, content_type="application/json")

    assert getattr(client, case.method)(*case.args, **case.kwargs) == case.expected

    method, path, query, body = sent(rsps)
    assert method == endpoint.method
    assert path == urlsplit(base).path + endpoint.path
    if endpoint.placement == "json":
        assert query == {} and body == {"tokenId": TOKEN, **case.sent}
        assert rsps.calls[0].request.headers["Content-Type"] == "application/json"
    else:
        assert body is None and query == {"tokenId": TOKEN, **case.sent}


def test_pile_cmd_sends_the_documents_example_body(rsps: responses.RequestsMock) -> None:
    rsps.add("POST", EV + "/pileCmd", body=doc.PILE_CMD_3_1_7)
    with SolaxClient(EV_DOC_TOKEN) as client:
        client.pile_cmd(PILE_SNS, PileMode.STOP, CALLBACK_URL)
    documented = """{
        "tokenId": "202304131045272667677913",
        "rwType": "2",
        "cmdType": "1",
        "cmdValue": "0",
        "sns": ["SMARTARMXINPIA", "XM3202HC263025", "XB3233HC225009"],
        "callbackUrl": "http://solax01:9000/callback/ackprint/info"
    }"""
    assert sent(rsps)[3] == json.loads(documented)


def test_the_endpoint_table_is_the_contracts() -> None:
    contract = {
        "single_control": ("vpp", "/commandapi/singleControl", "POST", "query"),
        "batch_control": ("vpp", "/commandapi/batchTempControl", "POST", "query"),
        "group_control": ("vpp", "/commandapi/groupControl", "POST", "query"),
        "group_add": ("vpp", "/vppgroup/add", "POST", "query"),
        "group_update": ("vpp", "/vppgroup/updateById", "POST", "query"),
        "group_delete": ("vpp", "/vppgroup/deleteById", "POST", "query"),
        "group_delete_batch": ("vpp", "/vppgroup/deleteBatch", "POST", "query"),
        "group_query": ("vpp", "/vppgroup/findAll", "POST", "query"),
        "group_fuzzy_query": ("vpp", "/vppgroup/findLikeName", "POST", "query"),
        "inverter_add": ("vpp", "/vppinverter/add", "POST", "query"),
        "inverter_delete": ("vpp", "/vppinverter/deleteById", "POST", "query"),
        "inverter_delete_batch": ("vpp", "/vppinverter/deleteBatch", "POST", "query"),
        "inverter_update": ("vpp", "/vppinverter/updateById", "POST", "query"),
        "inverter_query": ("vpp", "/vppinverter/findByGroupId", "POST", "query"),
        "inverter_fuzzy_query": ("vpp", "/vppinverter/findByLike", "POST", "query"),
        "query_command": ("vpp", "/commandapi/queryCommand", "POST", "query"),
        "query_result": ("vpp", "/commandapi/getQueryResult", "POST", "query"),
        "bind_devices": ("vpp", "/api/regsn", "POST", "json"),
        "pile_cmd": ("ev", "/pileCmd", "POST", "json"),
        "pile_info": ("ev", "/getPileInfo", "GET", "query"),
    }
    assert {name: (e.base, e.path, e.method, e.placement) for name, e in ENDPOINTS.items()} == contract
    assert all(e.name == name and e.doc_section for name, e in ENDPOINTS.items())
    assert set(RESULT_PARSERS) == set(ENDPOINTS)
    writes = {name for name, e in ENDPOINTS.items() if e.write}
    assert writes == set(ENDPOINTS) - {
        "group_query",
        "group_fuzzy_query",
        "inverter_query",
        "inverter_fuzzy_query",
        "query_command",
        "query_result",
        "pile_info",
    }


# -- the generic call --------------------------------------------------------------------------------


def test_call_returns_the_envelope_with_ids_as_text(client: SolaxClient, rsps: responses.RequestsMock) -> None:
    rsps.add("POST", VPP + "/vppgroup/add", body=doc.GROUP_ADD_2_1, status=200)
    envelope = client.call("group_add", {"name": "North"})
    assert isinstance(envelope, Envelope)
    assert (envelope.success, envelope.result, envelope.status) == (True, "1028902641234567890", 200)
    assert envelope.raw == doc.GROUP_ADD_2_1


def test_call_joins_lists_drops_none_and_stringifies(client: SolaxClient, rsps: responses.RequestsMock) -> None:
    rsps.add("POST", VPP + "/vppinverter/findByLike", body=doc.INVERTER_FUZZY_QUERY_3_6)
    rsps.add("POST", EV + "/pileCmd", body=doc.PILE_CMD_3_1_7)
    client.call("inverter_fuzzy_query", {"groupId": 12, "wifiSn": None, "inverterSn": ["A1", "B2"]})
    assert sent(rsps)[2] == {"tokenId": TOKEN, "groupId": "12", "inverterSn": "A1,B2"}
    client.call("pile_cmd", {"sns": ["A1"], "cmdValue": 1})
    assert sent(rsps, 1)[3] == {"tokenId": TOKEN, "sns": ["A1"], "cmdValue": "1"}


@pytest.mark.parametrize(
    ("name", "params", "field"),
    [
        ("no_such_endpoint", {}, "endpoint"),
        ("group_add", {"name": "x", "tokenId": TOKEN}, "tokenId"),
        ("bind_devices", {"sns": "a", "token": TOKEN}, "token"),
        ("group_add", {"name": True}, "name"),
    ],
)
def test_call_refuses_bad_requests_before_any_http(
    client: SolaxClient, rsps: responses.RequestsMock, name: str, params: dict[str, Any], field: str
) -> None:
    with pytest.raises(RequestValidationError) as info:
        client.call(name, params)
    assert field in info.value.errors and not info.value.may_have_reached_cloud
    assert len(rsps.calls) == 0 and TOKEN not in str(info.value)


# -- validation before HTTP ----------------------------------------------------------------------------


def test_a_bad_target_and_a_bad_spec_are_reported_together(client: SolaxClient, rsps: responses.RequestsMock) -> None:
    with pytest.raises(ControlValidationError) as info:
        client.single_control("bad sn!", {"superType": 0, "mode": 3, "targetSoc": 101})
    assert {"sn", "targetSoc", "setType", "chargerPower", "timeout"} <= set(info.value.errors)
    assert len(rsps.calls) == 0


def test_sn_lists_over_100_are_refused(client: SolaxClient, rsps: responses.RequestsMock) -> None:
    sns = [f"SW{i:08d}" for i in range(MAX_SNS_PER_CALL + 1)]
    with pytest.raises(ControlValidationError) as pile:
        client.pile_cmd(sns, PileMode.FAST, CALLBACK_URL)
    assert "at most 100" in pile.value.errors["sns"]
    with pytest.raises(RequestValidationError) as bind:
        client.bind_devices(sns)
    assert "at most 100" in bind.value.errors["sns"]
    assert len(rsps.calls) == 0


def test_duplicates_do_not_count_towards_the_100(client: SolaxClient, rsps: responses.RequestsMock) -> None:
    rsps.add("POST", VPP + "/api/regsn", body=doc.BIND_5)
    sns = [f"SW{i:08d}" for i in range(MAX_SNS_PER_CALL)]
    client.bind_devices(sns + sns)
    assert sent(rsps)[3]["sns"] == ",".join(sns)


@pytest.mark.parametrize(
    ("call", "fields"),
    [
        (lambda c: c.pile_cmd(["A1"], 4, CALLBACK_URL), {"cmdValue"}),
        (lambda c: c.pile_cmd([], True, "ftp://x"), {"sns", "cmdValue", "callbackUrl"}),
        (lambda c: c.group_add("  "), {"name"}),
        (lambda c: c.group_update("", ""), {"id", "name"}),
        (lambda c: c.group_query(0, 0), {"current", "size"}),
        (lambda c: c.inverter_query("1", 1, 10_001), {"size"}),
        (lambda c: c.inverter_add("x y", "H4*"), {"groupId", "inverterSn"}),
        (lambda c: c.inverter_fuzzy_query("1", wifi_sn="", inverter_sn="?"), {"wifiSn", "inverterSn"}),
        (lambda c: c.group_delete_batch([]), {"ids"}),
        (lambda c: c.query_command(""), {"commandId"}),
        (lambda c: c.pile_info("MC 1"), {"pileSn"}),
    ],
)
def test_bad_arguments_name_every_field(
    client: SolaxClient, rsps: responses.RequestsMock, call: Callable[[SolaxClient], Any], fields: set[str]
) -> None:
    with pytest.raises(RequestValidationError) as info:
        call(client)
    assert set(info.value.errors) == fields
    assert len(rsps.calls) == 0


def test_shape_errors_carry_the_body_and_endpoint(client: SolaxClient, rsps: responses.RequestsMock) -> None:
    rsps.add("POST", VPP + "/vppgroup/findAll", body='{"success":true,"result":"oops"}')
    rsps.add("POST", VPP + "/commandapi/singleControl", body=doc.NULL_RESULT)
    with pytest.raises(ResponseParseError) as page:
        client.group_query(1, 10)
    assert page.value.endpoint == "group_query" and page.value.body == '{"success":true,"result":"oops"}'
    assert page.value.may_have_reached_cloud
    with pytest.raises(ResponseParseError, match="command id"):
        client.single_control("H4751234567890", SWITCH_ON)


# -- transport settings ---------------------------------------------------------------------------------


def test_timeouts_are_always_set(rsps: responses.RequestsMock) -> None:
    rsps.add("POST", "http://sim.test:8000/proxy/vppgroup/add", body=doc.GROUP_ADD_2_1)
    client = SolaxClient(TOKEN, vpp_base_url="http://sim.test:8000/proxy/", connect_timeout=3, read_timeout=7)
    client.group_add("x")
    assert rsps.calls[0].request.req_kwargs["timeout"] == (3.0, 7.0)
    assert SolaxClient(TOKEN)._timeout == (5.0, 20.0)


@pytest.mark.parametrize("timeouts", [(0, 1), (1, 0), (-1, 5)])
def test_timeouts_must_be_positive(timeouts: tuple[float, float]) -> None:
    with pytest.raises(ValueError, match="timeouts"):
        SolaxClient(TOKEN, connect_timeout=timeouts[0], read_timeout=timeouts[1])


def test_base_urls_come_from_the_caller(rsps: responses.RequestsMock) -> None:
    rsps.add("GET", "http://127.0.0.1:9/proxyApp/proxy/api/getPileInfo", body=doc.PILE_INFO_3_2_7)
    rsps.add("POST", "http://127.0.0.1:9/proxy/vppgroup/deleteById", body=doc.NULL_RESULT)
    client = SolaxClient(
        TOKEN, vpp_base_url="http://127.0.0.1:9/proxy", ev_base_url="http://127.0.0.1:9/proxyApp/proxy/api/"
    )
    client.pile_info("MC1")
    client.group_delete("1")
    assert [call.request.url.split("?")[0] for call in rsps.calls] == [
        "http://127.0.0.1:9/proxyApp/proxy/api/getPileInfo",
        "http://127.0.0.1:9/proxy/vppgroup/deleteById",
    ]
    with pytest.raises(ValueError, match="vpp_base_url"):
        SolaxClient(TOKEN, vpp_base_url="www.solaxcloud.com/proxy")


def test_the_transport_is_a_per_endpoint_setting(rsps: responses.RequestsMock) -> None:
    rsps.add("POST", VPP + "/vppgroup/add", body=doc.GROUP_ADD_2_1)
    rsps.add("GET", VPP + "/vppgroup/findLikeName", body=doc.GROUP_FUZZY_QUERY_2_6)
    table = {
        **ENDPOINTS,
        "group_add": replace(ENDPOINTS["group_add"], placement="form"),
        "group_fuzzy_query": replace(ENDPOINTS["group_fuzzy_query"], method="GET"),
    }
    client = SolaxClient(TOKEN, endpoints=table)
    client.group_add("North")
    assert parse_qs(rsps.calls[0].request.body) == {"tokenId": [TOKEN], "name": ["North"]}
    assert client.group_fuzzy_query("12").total == 2
    assert rsps.calls[1].request.method == "GET"


def test_redirects_are_not_followed(client: SolaxClient, rsps: responses.RequestsMock) -> None:
    rsps.add("POST", VPP + "/vppgroup/add", status=302, headers={"Location": VPP + "/elsewhere"})
    with pytest.raises(Exception, match="HTTP 302"):
        client.group_add("x")
    assert len(rsps.calls) == 1


def test_a_huge_answer_is_a_parse_error(client: SolaxClient, rsps: responses.RequestsMock) -> None:
    rsps.add("POST", VPP + "/vppgroup/add", body=b"{" + b" " * (3 * 1024 * 1024) + b"}")
    with pytest.raises(ResponseParseError, match="larger than"):
        client.group_add("x")


# -- the token ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "token", ["", "123", "2020110909210123456789012345678", "2020110909210abcdefghij", "20201109 092101234567890"]
)
def test_malformed_tokens_are_refused_without_echoing_them(token: str) -> None:
    with pytest.raises(InvalidTokenError) as info:
        SolaxClient(token)
    assert isinstance(info.value, ValueError) and isinstance(info.value, AuthError)
    assert not info.value.may_have_reached_cloud
    if token:
        assert token not in str(info.value) and token not in repr(info.value)


def test_exactly_one_of_token_and_auth() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        SolaxClient()
    with pytest.raises(ValueError, match="exactly one"):
        SolaxClient(TOKEN, auth=TokenAuth(TOKEN))


def test_reprs_mask_the_token() -> None:
    client = SolaxClient(" " + TOKEN + "\n")  # pasted with whitespace: accepted, stripped
    for text in (repr(client), str(client), repr(TokenAuth(TOKEN)), str(TokenAuth(TOKEN))):
        assert TOKEN not in text and "***" in text


def test_token_auth_redacts() -> None:
    auth = TokenAuth(TOKEN)
    assert auth.redact(f"/x?tokenId={TOKEN}&a=1 and {TOKEN}") == "/x?tokenId=***&a=1 and ***"


class HeaderAuth:
    """What an OAuth scheme would look like behind the seam."""

    def apply(self, params: dict[str, Any], headers: dict[str, str]) -> None:
        headers["Authorization"] = "Bearer sekrit-bearer"

    def redact(self, text: str) -> str:
        return text.replace("sekrit-bearer", "***")


def test_authentication_is_one_seam(rsps: responses.RequestsMock) -> None:
    rsps.add("POST", VPP + "/vppgroup/add", body=doc.GROUP_ADD_2_1)
    client = SolaxClient(auth=HeaderAuth())
    client.group_add("North")
    assert sent(rsps)[2] == {"name": "North"}
    assert rsps.calls[0].request.headers["Authorization"] == "Bearer sekrit-bearer"


def test_log_lines_never_carry_the_token(
    client: SolaxClient, rsps: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    rsps.add("POST", VPP + "/vppgroup/add", body=doc.GROUP_ADD_2_1)
    rsps.add("POST", VPP + "/vppgroup/deleteById", body='{"success":false,"exception":"token invalid!","code":103}')
    with caplog.at_level(logging.DEBUG):
        client.group_add("North")
        with pytest.raises(AuthError):
            client.group_delete("1")
    assert caplog.records and all(TOKEN not in record.getMessage() for record in caplog.records)


def test_a_malformed_urllib3_log_record_is_still_redacted(caplog: pytest.LogCaptureFixture) -> None:
    SolaxClient(TOKEN)  # installs the filter
    with caplog.at_level(logging.DEBUG, logger="urllib3.connectionpool"):
        logging.getLogger("urllib3.connectionpool").debug("POST /x?tokenId=%s %s", TOKEN)  # one arg short
    assert [record.getMessage() for record in caplog.records] == ["POST /x?tokenId=*** %s"]


# -- real sockets ---------------------------------------------------------------------------------------


def _read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


@contextmanager
def raw_server(handle: Callable[[socket.socket], None]) -> Iterator[SolaxClient]:
    """Yield a client whose VPP base points at a one-connection server running ``handle``."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]

    def serve() -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            handle(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    client = SolaxClient(TOKEN, vpp_base_url=f"http://127.0.0.1:{port}/proxy", connect_timeout=1, read_timeout=0.3)
    try:
        yield client
    finally:
        client.close()
        listener.close()
        thread.join(3)


def _silent(conn: socket.socket) -> None:
    _read_request(conn)
    time.sleep(0.8)


def _reset(conn: socket.socket) -> None:
    _read_request(conn)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")


def _hang_up(conn: socket.socket) -> None:
    _read_request(conn)


def _stall_body(conn: socket.socket) -> None:
    _read_request(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
    time.sleep(0.8)


def _answer(conn: socket.socket) -> None:
    _read_request(conn)
    body = doc.GROUP_ADD_2_1.encode()
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))


@pytest.mark.parametrize(
    ("handle", "error"),
    [(_silent, SolaxTimeout), (_stall_body, SolaxTimeout), (_reset, TransportError), (_hang_up, TransportError)],
)
def test_real_failures_after_sending(handle: Callable[[socket.socket], None], error: type[Exception]) -> None:
    with raw_server(handle) as client, pytest.raises(error) as info:
        client.group_add("x")
    assert info.value.may_have_reached_cloud is True  # type: ignore[attr-defined]
    assert TOKEN not in str(info.value) and TOKEN not in repr(info.value)


def test_a_refused_connection_was_not_sent() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = SolaxClient(TOKEN, vpp_base_url=f"http://127.0.0.1:{port}/proxy", connect_timeout=1)
    with pytest.raises(NotSentError) as info:
        client.group_add("x")
    assert info.value.may_have_reached_cloud is False and TOKEN not in str(info.value)


def test_urllib3_debug_lines_are_redacted(caplog: pytest.LogCaptureFixture) -> None:
    # the host application may quieten urllib3 (fleet's settings do): ask for its debug lines here
    with caplog.at_level(logging.DEBUG), caplog.at_level(logging.DEBUG, logger="urllib3"), \
            raw_server(_answer) as client:
        assert client.group_add("x") == "1028902641234567890"
    urllib3_lines = [r.getMessage() for r in caplog.records if r.name.startswith("urllib3")]
    assert any("tokenId=***" in line for line in urllib3_lines)
    assert all(TOKEN not in record.getMessage() for record in caplog.records)
