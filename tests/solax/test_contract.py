"""The client (solax.client.SolaxClient) against the simulator over real HTTP: every endpoint, the rate
limit answers and every fault, mapped to the error classes of docs/solax-contract.md."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from solax.client import SolaxClient
from solax.control import PileMode, build_control_params
from solax.errors import (
    ApiError,
    AuthError,
    ControlValidationError,
    HTTPStatusError,
    NotSentError,
    RateLimitedError,
    ResponseParseError,
    SolaxError,
    SolaxTimeout,
    TransportError,
)
from solax.models import Envelope, Group, Member, Page
from solax.parsing import parse_callback
from solax.simulator.testing import SimulatorHandle, running_simulator

FAST: dict[str, Any] = {
    "seed": 21,
    "command_delay": 0.05,
    "device_delay": (0.05, 0.1),
    "device_failure_rate": 0.0,
    "callback_delay": (0.02, 0.05),
    "callback_complete_delay": 0.02,
    "pile_task_timeout": 0.3,
    "callback_duplicate_rate": 0.0,
    "callback_drop_rate": 0.0,
    "callback_late_rate": 0.0,
    "per_minute": 100_000,
    "per_day": 1_000_000,
}
READ_TIMEOUT = 0.5


@pytest.fixture(scope="module")
def server() -> Iterator[SimulatorHandle]:
    with running_simulator(**FAST) as handle:
        yield handle


@pytest.fixture
def sim(server: SimulatorHandle) -> SimulatorHandle:
    server.reset()
    return server


def make_client(h: SimulatorHandle) -> SolaxClient:
    return SolaxClient(
        token=h.token,
        vpp_base_url=h.vpp_base_url,
        ev_base_url=h.ev_base_url,
        connect_timeout=2,
        read_timeout=READ_TIMEOUT,
    )


@pytest.fixture
def client(sim: SimulatorHandle) -> Iterator[SolaxClient]:
    with make_client(sim) as solax:
        yield solax


def wait_for(predicate: Callable[[], Any], timeout: float = 3.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    return predicate()


def online_member(client: SolaxClient, h: SimulatorHandle) -> tuple[str, Member]:
    group = client.group_query(1, 1).items[0]
    for member in client.inverter_query(group.id, 1, 100).items:
        if h.sim.device(str(member.inverter_sn))["online"]:
            return group.id, member
    raise AssertionError("no online member")


# -- groups ---------------------------------------------------------------------------------------------
def test_group_endpoints(client: SolaxClient) -> None:
    page = client.group_query(1, 2)
    assert isinstance(page, Page) and page.total == 3 and len(page.items) == 2
    assert all(isinstance(g, Group) and g.id.isdigit() and len(g.id) == 19 for g in page.items)

    group_id = client.group_add("Contract")
    assert isinstance(group_id, str) and len(group_id) == 19
    assert client.group_update(group_id, "Contract 2") is None
    found = client.group_fuzzy_query("contract")
    assert found.total == 1 and found.items[0].id == group_id and found.items[0].name == "Contract 2"
    assert client.group_delete(group_id) is None

    ids = [client.group_add(name) for name in ("One", "Two")]
    assert client.group_delete_batch(ids) is None
    assert client.group_query(1, 10).total == 3


def test_the_generic_call_returns_an_envelope(client: SolaxClient) -> None:
    envelope = client.call("group_add", {"name": "Generic"})
    assert isinstance(envelope, Envelope) and envelope.success is True
    assert isinstance(envelope.result, str) and len(envelope.result) == 19  # ids as str


# -- memberships ----------------------------------------------------------------------------------------
def test_member_endpoints_survive_the_unquoted_create_time(client: SolaxClient, sim: SimulatorHandle) -> None:
    group_id = client.group_query(1, 1).items[0].id
    page = client.inverter_query(group_id, 1, 100)
    assert page.total == len(page.items) > 0
    first = page.items[0]
    assert first.group_id == group_id and first.in_group and first.rated_power
    assert first.create_time and len(first.create_time) == 19  # "2023-01-02 16:09:24"

    like = client.inverter_fuzzy_query(group_id, wifi_sn=first.wifi_sn)
    assert [m.id for m in like.items] == [first.id]
    assert client.inverter_fuzzy_query(group_id, inverter_sn=str(first.inverter_sn)).total == 1

    free1, free2, free3 = sim.sim.tenant().summary()["ungrouped_inverters"][:3]
    member_id = client.inverter_add(group_id, free1)
    assert isinstance(member_id, str) and len(member_id) == 19
    assert client.inverter_update(member_id, free2) is None  # "update succeeded" is no error
    assert client.inverter_fuzzy_query(group_id, inverter_sn=free2).items[0].id == member_id
    other = client.inverter_add(group_id, free3)
    assert client.inverter_delete(member_id) is None
    assert client.inverter_delete_batch([other]) is None
    assert client.inverter_query(group_id, 1, 100).total == page.total


# -- control, command and result queries -----------------------------------------------------------------
def test_single_control_progresses_through_query_command_and_query_result(
    client: SolaxClient, sim: SimulatorHandle
) -> None:
    _, member = online_member(client, sim)
    spec = build_control_params(0, mode=3, setType=1, targetSoc=90, chargerPower=3000, timeout=600)
    command_id = client.single_control(str(member.inverter_sn), spec)
    assert isinstance(command_id, str) and len(command_id) == 19
    assert client.query_command(command_id) is None
    task_id = wait_for(lambda: client.query_command(command_id))
    assert isinstance(task_id, str) and len(task_id) == 32
    assert client.query_result(task_id) == {member.wifi_sn: None}
    assert wait_for(lambda: client.query_result(task_id) == {member.wifi_sn: "success"})
    assert sim.sim.device(str(member.inverter_sn))["targetSoc"] == 90.0


def test_batch_and_group_control(client: SolaxClient, sim: SimulatorHandle) -> None:
    group_id, member = online_member(client, sim)
    members = client.inverter_query(group_id, 1, 100).items
    sns = [str(m.inverter_sn) for m in members[:3]]
    batch_id = client.batch_control(sns, build_control_params(1, systemSwitch=1))
    windows = {
        "chargeStartTime1Hour": 1,
        "chargeStartTime1Minute": 0,
        "chargeEndTime1Hour": 5,
        "chargeEndTime1Minute": 0,
        "dischargeStartTime1Hour": 17,
        "dischargeStartTime1Minute": 0,
        "dischargerEndTime1Hour": 20,
        "dischargerEndTime1Minute": 30,
        "p2TimeSetEnable": 1,
        "chargeStartTime2Hour": 12,
        "chargeStartTime2Minute": 0,
        "chargeEndTime2Hour": 14,
        "chargeEndTime2Minute": 0,
        "dischargeStartTime2Hour": 21,
        "dischargeStartTime2Minute": 0,
        "dischargeEndTime2Hour": 23,
        "dischargeEndTime2Minute": 0,
    }
    group_command = client.group_control(group_id, build_control_params(2, mode=10, **windows))
    assert batch_id != group_command
    task_id = wait_for(lambda: client.query_command(group_command))
    answers = wait_for(lambda: (r := client.query_result(task_id))[member.wifi_sn] and r)
    assert set(answers) == {m.wifi_sn for m in members}
    assert sim.sim.device(str(member.inverter_sn))["settings"]["dischargeEndTime2Hour"] == 23


def test_the_client_reads_is_success_answers(client: SolaxClient, sim: SimulatorHandle) -> None:
    sim.configure(is_success_rate=1.0)
    _, member = online_member(client, sim)
    command_id = client.single_control(str(member.inverter_sn), build_control_params(1, systemSwitch=0))
    assert wait_for(lambda: client.query_command(command_id))


def test_the_client_reads_the_broken_find_all_example(client: SolaxClient, sim: SimulatorHandle) -> None:
    sim.configure(findall_doc_shape_rate=1.0)
    page = client.group_query(1, 2)
    assert page.total == 3 and len(page.items) == 2


def test_bad_control_specs_never_reach_the_cloud(client: SolaxClient, sim: SimulatorHandle) -> None:
    with pytest.raises(ControlValidationError) as caught:
        client.single_control("H4AA0000000001", {"superType": 0, "mode": 3, "targetSoc": 101})
    assert caught.value.may_have_reached_cloud is False and "targetSoc" in caught.value.errors
    assert sim.counters()["tokens"][sim.token]["total"] == 0


# -- binding and EV chargers ---------------------------------------------------------------------------
def test_bind_devices(client: SolaxClient, sim: SimulatorHandle) -> None:
    summary = sim.sim.tenant().summary()
    free, fails, foreign = (summary[k][0] for k in ("unbound_dongles", "bind_fail_dongles", "foreign_dongles"))
    result = client.bind_devices([free, fails, foreign, "NOPE123456"])
    assert result.bound == [free] and result.failed == [fails]
    assert result.already_bound == [foreign] and result.unknown == ["NOPE123456"]


class Receiver:
    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        received = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - stdlib name
                received.append(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/solax/callback"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()
    yield rec
    rec.server.shutdown()
    rec.server.server_close()


def test_pile_cmd_callbacks_and_pile_info(client: SolaxClient, sim: SimulatorHandle, receiver: Receiver) -> None:
    chargers = list(sim.sim.tenant().chargers)
    for sn in chargers:
        sim.sim.set_device(sn, online=True, plugged=True)
    task_id = client.pile_cmd(chargers[:2], PileMode.ECO, receiver.url)
    assert isinstance(task_id, str) and len(task_id) == 32
    assert wait_for(lambda: len(receiver.bodies) == 4)
    callbacks = sorted((parse_callback(body) for body in receiver.bodies), key=lambda c: c.rsp_type)
    assert [c.rsp_type for c in callbacks] == [1, 2, 2, 3]
    assert {c.task_id for c in callbacks} == {task_id}
    assert {c.sn for c in callbacks[1:3]} == set(chargers[:2]) and callbacks[3].is_final
    assert all(c.success and c.code == "0" for c in callbacks)
    info = client.pile_info(chargers[0])
    assert (info.status, info.mode) == (2, int(PileMode.ECO)) and info.power and info.power > 0
    powers = {client.pile_info(sn).power for sn in chargers}  # both spellings of chargingPower
    assert None not in powers


# -- rate limits ----------------------------------------------------------------------------------------
class FakeClock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


def test_rate_limit_answers_become_rate_limited_errors() -> None:
    clock = FakeClock()
    with running_simulator(clock=clock, seed=2) as h, make_client(h) as client:
        for _ in range(10):
            client.group_query(1, 1)
        with pytest.raises(RateLimitedError) as minute:
            client.group_query(1, 1)
        assert minute.value.lockout is False and minute.value.retry_after == 60 and minute.value.code == "3"
        assert minute.value.may_have_reached_cloud is False
        with pytest.raises(RateLimitedError) as ev:
            client.pile_info("C1XX0000000001")
        assert ev.value.code == "104" and ev.value.lockout is False
        with pytest.raises(RateLimitedError) as lockout:
            client.group_query(1, 1)
        assert lockout.value.lockout is True and lockout.value.retry_after == 3600
        assert lockout.value.code == "1" and lockout.value.may_have_reached_cloud is False
        assert h.token not in str(lockout.value) and h.token not in repr(lockout.value)
        clock.now += 3600
        assert client.group_query(1, 1).total == 3


# -- vendor refusals ------------------------------------------------------------------------------------
def test_refusals_become_api_and_auth_errors(client: SolaxClient, sim: SimulatorHandle) -> None:
    with pytest.raises(ApiError) as unknown_group:
        client.group_delete("1" * 19)
    assert unknown_group.value.message == "The group does not exist" and unknown_group.value.code == "2"
    assert unknown_group.value.may_have_reached_cloud is False
    with pytest.raises(ApiError):
        client.group_control("1" * 19, build_control_params(1, systemSwitch=1))
    with pytest.raises(AuthError) as no_auth:
        client.pile_info("C1NOTMINE00001")
    assert no_auth.value.code == "1003" and no_auth.value.may_have_reached_cloud is False
    stranger = SolaxClient(token="9" * 23, vpp_base_url=sim.vpp_base_url, ev_base_url=sim.ev_base_url)
    with stranger, pytest.raises(AuthError) as invalid:
        stranger.group_query(1, 1)
    assert invalid.value.code == "103" and "9" * 23 not in str(invalid.value)


# -- faults ---------------------------------------------------------------------------------------------
FAULTS = [
    ("timeout", SolaxTimeout, True, 1),
    ("timeout_before_apply", SolaxTimeout, True, 0),
    ("http_503", HTTPStatusError, True, 0),
    ("html_200", ResponseParseError, True, 0),
    ("malformed_json", ResponseParseError, True, 1),
    ("token_invalid", AuthError, False, 0),
    ("connection_reset", TransportError, True, 0),
]


@pytest.mark.parametrize(("kind", "error", "reached", "applied"), FAULTS)
def test_each_fault_maps_to_its_error(
    client: SolaxClient, sim: SimulatorHandle, kind: str, error: type[SolaxError], reached: bool, applied: int
) -> None:
    sim.configure(faults=[{"kind": kind, "endpoint": "group_add", "count": 1, "seconds": READ_TIMEOUT * 3}])
    with pytest.raises(error) as caught:
        client.group_add("Faulty")
    assert caught.value.may_have_reached_cloud is reached
    assert sim.token not in str(caught.value) and sim.token not in repr(caught.value)
    assert sim.token not in (caught.value.body or "")
    assert client.group_fuzzy_query("Faulty").total == applied  # was the write applied?


def test_a_reset_after_applying_is_a_transport_error(client: SolaxClient, sim: SimulatorHandle) -> None:
    sim.configure(faults=[{"kind": "connection_reset", "endpoint": "group_add", "count": 1, "apply": True}])
    with pytest.raises(TransportError):
        client.group_add("Applied")
    assert client.group_fuzzy_query("Applied").total == 1


def test_a_closed_port_is_not_sent() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    client = SolaxClient(
        token="20230413104527266767791",
        vpp_base_url=f"{base}/proxy",
        ev_base_url=f"{base}/proxyApp/proxy/api",
        connect_timeout=1,
        read_timeout=1,
    )
    with client, pytest.raises(NotSentError) as caught:
        client.group_add("Nowhere")
    assert caught.value.may_have_reached_cloud is False


def test_control_payloads_are_counted_once_per_send(client: SolaxClient, sim: SimulatorHandle) -> None:
    _, member = online_member(client, sim)
    spec = build_control_params(1, systemSwitch=1)
    client.single_control(str(member.inverter_sn), spec)
    counters = sim.counters()
    assert counters["duplicates"] == 0 and len(counters["payloads"]) == 1
    key = json.loads(next(iter(counters["payloads"])))
    assert key == {"endpoint": "single_control", "sn": member.inverter_sn, "superType": "1", "systemSwitch": "1"}
    client.single_control(str(member.inverter_sn), spec)
    assert sim.counters()["duplicates"] == 1
