"""The fake SolaX Cloud over real HTTP (requests straight at it; the client has its own contract tests)."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from solax.simulator.testing import SimulatorHandle, running_simulator

FAST: dict[str, Any] = {
    "seed": 7,
    "command_delay": 0.05,
    "device_delay": (0.05, 0.1),
    "device_failure_rate": 0.0,
    "callback_delay": (0.02, 0.05),
    "callback_complete_delay": 0.02,
    "pile_task_timeout": 0.3,
    "callback_duplicate_rate": 0.0,
    "callback_drop_rate": 0.0,
    "callback_late_rate": 0.0,
    "is_success_rate": 0.0,
    "per_minute": 100_000,
    "per_day": 1_000_000,
}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(scope="module")
def server() -> Iterator[SimulatorHandle]:
    with running_simulator(**FAST) as handle:
        yield handle


@pytest.fixture
def sim(server: SimulatorHandle) -> SimulatorHandle:
    server.reset()
    return server


def loads(text: str) -> Any:
    """Parse an answer, repairing the documented unquoted createTime."""
    return json.loads(re.sub(r'"createTime":(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)', r'"createTime":"\1"', text))


def vpp(h: SimulatorHandle, path: str, **params: Any) -> Any:
    answer = requests.post(f"{h.vpp_base_url}{path}", params={"tokenId": h.token, **params}, timeout=5)
    assert answer.status_code == 200, answer.text
    return loads(answer.text)


def ev_info(h: SimulatorHandle, sn: str) -> Any:
    return requests.get(f"{h.ev_base_url}/getPileInfo", params={"tokenId": h.token, "pileSn": sn}, timeout=5).json()


def wait_for(predicate: Callable[[], Any], timeout: float = 3.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.01)
    return predicate()


def first_group(h: SimulatorHandle) -> str:
    return str(vpp(h, "/vppgroup/findAll", current=1, size=1)["result"]["list"][0]["id"])


def members(h: SimulatorHandle, group_id: str) -> list[dict[str, Any]]:
    return vpp(h, "/vppinverter/findByGroupId", groupId=group_id, current=1, size=1000)["result"]["list"]


def control(h: SimulatorHandle, path: str, **params: Any) -> str:
    answer = vpp(h, path, **params)
    assert answer["success"] is True, answer
    return str(answer["result"])


def task_of(h: SimulatorHandle, command_id: str) -> str:
    return wait_for(lambda: vpp(h, "/commandapi/queryCommand", commandId=command_id)["result"]["taskId"])


# -- routing ------------------------------------------------------------------------------------------------
ALL_PATHS = [
    "/proxy/commandapi/singleControl",
    "/proxy/commandapi/batchTempControl",
    "/proxy/commandapi/groupControl",
    "/proxy/vppgroup/add",
    "/proxy/vppgroup/updateById",
    "/proxy/vppgroup/deleteById",
    "/proxy/vppgroup/deleteBatch",
    "/proxy/vppgroup/findAll",
    "/proxy/vppgroup/findLikeName",
    "/proxy/vppinverter/add",
    "/proxy/vppinverter/deleteById",
    "/proxy/vppinverter/deleteBatch",
    "/proxy/vppinverter/updateById",
    "/proxy/vppinverter/findByGroupId",
    "/proxy/vppinverter/findByLike",
    "/proxy/commandapi/queryCommand",
    "/proxy/commandapi/getQueryResult",
    "/proxy/api/regsn",
    "/proxyApp/proxy/api/pileCmd",
    "/proxyApp/proxy/api/getPileInfo",
]


def test_it_serves_all_20_endpoints_on_one_host(sim: SimulatorHandle) -> None:
    for path in ALL_PATHS:
        answer = requests.post(sim.url + path, params={"tokenId": sim.token}, timeout=5)
        assert answer.status_code == 200, path
        body = answer.json()
        assert body["success"] is False and body["code"] == 1002 and body["exception"], (path, body)


def test_it_answers_unknown_paths_and_methods_like_spring(sim: SimulatorHandle) -> None:
    missing = requests.get(sim.url + "/proxy/vppgroup/nothing", timeout=5)
    assert missing.status_code == 404 and missing.json()["error"] == "Not Found"
    wrong = requests.put(sim.url + "/proxy/vppgroup/add", timeout=5)
    assert wrong.status_code == 405


def test_it_rejects_an_unknown_token(sim: SimulatorHandle) -> None:
    body = requests.post(
        sim.vpp_base_url + "/vppgroup/findAll", params={"tokenId": "1" * 23, "current": 1, "size": 1}, timeout=5
    ).json()
    assert body == {"success": False, "exception": "token invalid!", "code": 103}
    assert sim.counters()["unknown_token_calls"] == 1


# -- groups ---------------------------------------------------------------------------------------------
def test_it_creates_renames_and_deletes_groups(sim: SimulatorHandle) -> None:
    raw = requests.post(
        sim.vpp_base_url + "/vppgroup/add", params={"tokenId": sim.token, "name": "Pilot"}, timeout=5
    ).text
    assert re.fullmatch(r'\{"exception":null,"result":\d{19},"success":true\}', raw)
    group_id = str(json.loads(raw)["result"])
    assert vpp(sim, "/vppgroup/findAll", current=1, size=10)["result"]["num"] == 4

    assert vpp(sim, "/vppgroup/updateById", id=group_id, name="Pilot 2") == {
        "exception": None,
        "result": None,
        "success": True,
    }
    found = vpp(sim, "/vppgroup/findLikeName", name="pilot")["result"]
    assert found["num"] == 1 and found["list"][0]["id"] == group_id  # a string, as in doc 2.6
    assert found["list"][0]["name"] == "Pilot 2" and found["list"][0]["updateTime"]

    assert vpp(sim, "/vppgroup/deleteById", id=group_id)["success"] is True
    gone = vpp(sim, "/vppgroup/deleteById", id=group_id)
    assert gone["success"] is False and gone["code"] == 2


def test_it_rejects_bad_group_names(sim: SimulatorHandle) -> None:
    assert vpp(sim, "/vppgroup/add", name="  ")["exception"] == "name cannot be empty"
    assert vpp(sim, "/vppgroup/add", name="x" * 51)["success"] is False
    vpp(sim, "/vppgroup/add", name="Twin")
    assert vpp(sim, "/vppgroup/add", name="Twin")["exception"] == "The group name already exists"


def test_it_batch_deletes_groups_with_ids_or_id(sim: SimulatorHandle) -> None:
    a, b, c = (str(vpp(sim, "/vppgroup/add", name=n)["result"]) for n in ("A", "B", "C"))
    assert vpp(sim, "/vppgroup/deleteBatch", ids=f"{a} ,{b}")["success"] is True
    assert vpp(sim, "/vppgroup/deleteBatch", id=c)["success"] is True
    assert vpp(sim, "/vppgroup/findAll", current=1, size=10)["result"]["num"] == 3
    assert vpp(sim, "/vppgroup/deleteBatch", ids="123")["code"] == 2


def test_it_pages_groups(sim: SimulatorHandle) -> None:
    page = vpp(sim, "/vppgroup/findAll", current=2, size=2)["result"]
    assert page["num"] == 3 and len(page["list"]) == 1
    assert isinstance(page["list"][0]["id"], int) and len(str(page["list"][0]["id"])) == 19
    assert vpp(sim, "/vppgroup/findAll", current=9, size=2)["result"]["list"] == []
    assert vpp(sim, "/vppgroup/findAll", current=0, size=2)["success"] is False
    assert vpp(sim, "/vppgroup/findAll", size=2)["exception"] == "current cannot be empty"


# -- memberships ----------------------------------------------------------------------------------------
def test_it_answers_inverter_queries_with_the_unquoted_create_time(sim: SimulatorHandle) -> None:
    group_id = first_group(sim)
    raw = requests.post(
        sim.vpp_base_url + "/vppinverter/findByGroupId",
        params={"tokenId": sim.token, "groupId": group_id, "current": 1, "size": 2},
        timeout=5,
    ).text
    assert re.search(r'"createTime":\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,', raw)
    with pytest.raises(json.JSONDecodeError):
        json.loads(raw)
    row = loads(raw)["result"]["list"][0]
    assert set(row) == {"id", "groupId", "wifiSn", "inverterSn", "groupStatus", "ratePower", "createTime", "updateTime"}
    assert str(row["groupId"]) == group_id and row["groupStatus"] == 1 and row["wifiSn"].startswith("SW")

    sim.configure(unquoted_create_time=False)
    clean = requests.post(
        sim.vpp_base_url + "/vppinverter/findByLike", params={"tokenId": sim.token, "groupId": group_id}, timeout=5
    ).text
    assert json.loads(clean)["result"]["num"] >= 1


def test_it_adds_replaces_and_removes_members(sim: SimulatorHandle) -> None:
    summary = sim.sim.tenant().summary()
    free1, free2, free3 = summary["ungrouped_inverters"][:3]
    group_id = first_group(sim)
    before = len(members(sim, group_id))
    added = vpp(sim, "/vppinverter/add", groupId=group_id, inverterSn=free1)
    assert isinstance(added["result"], str) and len(added["result"]) == 19  # a string, as in doc 3.1
    member_id = added["result"]
    assert vpp(sim, "/vppinverter/add", groupId=group_id, inverterSn=free1)["exception"] == (
        "The inverter already exists in a group"
    )

    updated = vpp(sim, "/vppinverter/updateById", id=member_id, newInverterSn=free2)
    assert updated == {"exception": "update succeeded", "result": None, "success": True}
    like = vpp(sim, "/vppinverter/findByLike", groupId=group_id, inverterSn=free2[-4:])["result"]
    assert like["num"] == 1 and like["list"][0]["inverterSn"] == free2 and like["list"][0]["updateTime"]
    wifi = sim.sim.device(free2)["wifiSn"]
    assert vpp(sim, "/vppinverter/findByLike", groupId=group_id, wifiSn=wifi)["result"]["num"] == 1

    other = vpp(sim, "/vppinverter/add", groupId=group_id, inverterSn=free3)["result"]
    assert len(members(sim, group_id)) == before + 2
    assert vpp(sim, "/vppinverter/deleteById", id=member_id)["success"] is True
    assert vpp(sim, "/vppinverter/deleteBatch", ids=other)["success"] is True
    assert len(members(sim, group_id)) == before
    assert vpp(sim, "/vppinverter/deleteById", id=member_id)["code"] == 2


def test_it_refuses_members_it_cannot_place(sim: SimulatorHandle) -> None:
    group_id = first_group(sim)
    unbound = sim.sim.tenant().dongles[sim.sim.tenant().summary()["unbound_dongles"][0]]
    assert vpp(sim, "/vppinverter/add", groupId=group_id, inverterSn=unbound) == {
        "success": False,
        "exception": "no auth!",
        "code": 1003,
    }
    assert vpp(sim, "/vppinverter/add", groupId="1" * 19, inverterSn="X")["code"] in (2, 1003)
    assert vpp(sim, "/vppinverter/findByGroupId", groupId="1" * 19, current=1, size=5)["code"] == 2


# -- control and its asynchronous results ---------------------------------------------------------------
def test_a_command_progresses_from_pending_to_device_answers(sim: SimulatorHandle) -> None:
    sn = members(sim, first_group(sim))[0]["inverterSn"]
    for inverter in sim.sim.tenant().inverters.values():
        inverter.online = True
    command_id = control(
        sim,
        "/commandapi/singleControl",
        sn=sn,
        superType=0,
        mode=3,
        setType=1,
        targetSoc=100,
        chargerPower=5000,
        timeout=600,
    )
    assert len(command_id) == 19
    assert vpp(sim, "/commandapi/queryCommand", commandId=command_id) == {
        "exception": None,
        "result": {"taskId": None},
        "success": True,
    }
    task_id = task_of(sim, command_id)
    assert re.fullmatch(r"[0-9a-f]{32}", task_id)
    wifi = sim.sim.device(sn)["wifiSn"]
    assert vpp(sim, "/commandapi/getQueryResult", taskId=task_id)["result"] == {wifi: "null"}
    answer = wait_for(lambda: vpp(sim, "/commandapi/getQueryResult", taskId=task_id)["result"][wifi] != "null")
    assert answer
    assert vpp(sim, "/commandapi/getQueryResult", taskId=task_id)["result"] == {wifi: "success"}
    state = sim.sim.device(sn)
    assert state["remoteMode"] == 3 and state["targetSoc"] == 100.0 and state["powerW"] == 5000.0


def test_offline_devices_never_answer(sim: SimulatorHandle) -> None:
    group_id = first_group(sim)
    rows = members(sim, group_id)
    sim.sim.set_device(rows[0]["inverterSn"], online=False)
    command_id = control(sim, "/commandapi/groupControl", groupId=group_id, superType=1, systemSwitch=0)
    task_id = task_of(sim, command_id)
    time.sleep(0.3)
    result = vpp(sim, "/commandapi/getQueryResult", taskId=task_id)["result"]
    assert set(result) == {row["wifiSn"] for row in rows}
    assert result[rows[0]["wifiSn"]] == "null"
    assert all(result[row["wifiSn"]] == "success" for row in rows[1:] if sim.sim.device(row["inverterSn"])["online"])
    assert sim.sim.device(rows[0]["inverterSn"])["systemOn"] is True


def test_devices_can_answer_with_failures(sim: SimulatorHandle) -> None:
    sim.configure(device_failure_rate=1.0)
    rows = [r for r in members(sim, first_group(sim)) if sim.sim.device(r["inverterSn"])["online"]][:2]
    sns = ",".join(row["inverterSn"] for row in rows)
    command_id = control(
        sim, "/commandapi/batchTempControl", snList=sns, superType=2, mode=1, minSoc=10, chargeFromGridUpperSoC=90
    )
    task_id = task_of(sim, command_id)
    result = wait_for(
        lambda: (r := vpp(sim, "/commandapi/getQueryResult", taskId=task_id)["result"])
        and "null" not in r.values()
        and r
    )
    assert set(result.values()) <= {"fail", "execute failed", "device busy"}
    assert sim.sim.device(rows[0]["inverterSn"])["workMode"] == 0  # failures change nothing


def test_work_mode_and_windows_apply_on_success(sim: SimulatorHandle) -> None:
    sn = members(sim, first_group(sim))[0]["inverterSn"]
    sim.sim.set_device(sn, online=True)
    windows = {
        "chargeStartTime1Hour": 1,
        "chargeStartTime1Minute": 0,
        "chargeEndTime1Hour": 5,
        "chargeEndTime1Minute": 30,
        "dischargeStartTime1Hour": 17,
        "dischargeStartTime1Minute": 0,
        "dischargerEndTime1Hour": 21,
        "dischargerEndTime1Minute": 0,
        "p2TimeSetEnable": 0,
    }
    task_id = task_of(sim, control(sim, "/commandapi/singleControl", sn=sn, superType=2, mode=10, **windows))
    wait_for(lambda: "null" not in vpp(sim, "/commandapi/getQueryResult", taskId=task_id)["result"].values())
    state = sim.sim.device(sn)
    assert state["workMode"] == 10 and state["settings"]["dischargerEndTime1Hour"] == 21


@pytest.mark.parametrize(
    ("params", "text"),
    [
        ({"superType": 1, "systemSwitch": 1}, "sn cannot be empty"),
        ({"sn": "S", "superType": 5}, "superType error"),
        ({"sn": "S", "superType": 0, "mode": 4, "timeout": 1}, "mode error"),
        ({"sn": "S", "superType": 2, "mode": 4}, "mode error"),
        (
            {"sn": "S", "superType": 0, "mode": 3, "setType": 1, "targetSoc": 101, "chargerPower": 1, "timeout": 1},
            "targetSoc out of range",
        ),
        (
            {"sn": "S", "superType": 0, "mode": 1, "reactivePower": 0, "setType": 1, "proidTime": 60, "timeout": 1},
            "activePower cannot be empty",
        ),
        (
            {
                "sn": "S",
                "superType": 0,
                "mode": 1,
                "activePower": 70000,
                "reactivePower": 0,
                "setType": 1,
                "proidTime": 60,
                "timeout": 1,
            },
            "activePower out of range",
        ),
        ({"sn": "S", "superType": 2, "mode": 10, "chargeStartTime1Hour": 24}, "chargeStartTime1Hour out of range"),
        ({"sn": "S", "superType": 1, "systemSwitch": "x"}, "systemSwitch error"),
    ],
)
def test_it_rejects_invalid_control_parameters(sim: SimulatorHandle, params: dict[str, Any], text: str) -> None:
    answer = vpp(sim, "/commandapi/singleControl", **params)
    assert answer["success"] is False and answer["code"] == 1002
    assert answer["exception"].startswith(text)


def test_it_rejects_unknown_devices_groups_and_large_lists(sim: SimulatorHandle) -> None:
    assert vpp(sim, "/commandapi/singleControl", sn="H4NOPE", superType=1, systemSwitch=1)["code"] == 1003
    too_many = ",".join(f"H4X{i:011d}" for i in range(101))
    answer = vpp(sim, "/commandapi/batchTempControl", snList=too_many, superType=1, systemSwitch=1)
    assert answer["exception"] == "The number of snList cannot exceed 100"
    assert vpp(sim, "/commandapi/groupControl", groupId="9" * 19, superType=1, systemSwitch=1)["code"] == 2
    empty = vpp(sim, "/vppgroup/add", name="Empty")["result"]
    assert vpp(sim, "/commandapi/groupControl", groupId=empty, superType=1, systemSwitch=1)["exception"] == (
        "There is no inverter in the group"
    )
    assert vpp(sim, "/commandapi/queryCommand", commandId="1" * 19)["code"] == 2
    assert vpp(sim, "/commandapi/getQueryResult", taskId="f" * 32)["code"] == 2


def test_query_answers_use_is_success_now_and_then(sim: SimulatorHandle) -> None:
    sim.configure(is_success_rate=1.0)
    sn = members(sim, first_group(sim))[0]["inverterSn"]
    command_id = control(sim, "/commandapi/singleControl", sn=sn, superType=1, systemSwitch=1)
    answer = vpp(sim, "/commandapi/queryCommand", commandId=command_id)
    assert answer["isSuccess"] is True and "success" not in answer


def test_find_all_can_answer_like_the_broken_doc_example(sim: SimulatorHandle) -> None:
    sim.configure(findall_doc_shape_rate=1.0)
    raw = requests.post(
        sim.vpp_base_url + "/vppgroup/findAll", params={"tokenId": sim.token, "current": 1, "size": 1}, timeout=5
    ).text
    assert raw.startswith('{"exception":null,"result":{"num":3,"list":[') and raw.endswith(',"success":true}')
    with pytest.raises(json.JSONDecodeError):
        json.loads(raw)


# -- request variants -----------------------------------------------------------------------------------
def test_it_accepts_every_transport_and_spelling(sim: SimulatorHandle) -> None:
    url = sim.vpp_base_url + "/vppgroup/add"
    assert requests.get(url, params={"tokenId": sim.token, "name": "Get"}, timeout=5).json()["success"]
    assert requests.post(url, data={"tokenId": sim.token, "name": "Form"}, timeout=5).json()["success"]
    assert requests.post(url, json={"tokenId": sim.token, "name": "Json"}, timeout=5).json()["success"]
    assert requests.post(url, params={"token": sim.token, "name": "Tok"}, timeout=5).json()["success"]
    double = sim.url + "/proxy//vppgroup/findLikeName"
    assert requests.post(double, params={"tokenId": sim.token, "name": "Json"}, timeout=5).json()["result"]["num"] == 1
    mangled = requests.post(f"{sim.vpp_base_url}/vppgroup/findAll?tokenId={sim.token}&\u00a4t=1&size=1", timeout=5)
    assert mangled.json()["result"]["num"] == 7
    sn = members(sim, first_group(sim))[0]["inverterSn"]
    for spelling in ("systemSwich", "systemSwitch"):
        assert vpp(sim, "/commandapi/singleControl", sn=sn, superType=1, **{spelling: 1})["success"] is True
    bad_json = requests.post(url, data=b"{not json", headers={"Content-Type": "application/json"}, timeout=5)
    assert bad_json.status_code == 400


# -- binding --------------------------------------------------------------------------------------------
def test_it_binds_registration_numbers(sim: SimulatorHandle) -> None:
    summary = sim.sim.tenant().summary()
    free = summary["unbound_dongles"][0]
    bound = sim.sim.device(summary["ungrouped_inverters"][0])["wifiSn"]
    fails = summary["bind_fail_dongles"][0]
    foreign = summary["foreign_dongles"][0]
    body = {"token": sim.token, "sns": f"{free}, {bound},{fails} ,NOPE123456,{foreign}"}
    answer = requests.post(sim.vpp_base_url + "/api/regsn", json=body, timeout=5).json()
    assert answer == {
        "exception": None,
        "code": 0,
        "success": True,
        "Binding success": free,
        "Binding fail": fails,
        "Have bound sn": f"{bound},{foreign}",
        "Non-existent sn": "NOPE123456",
    }
    again = requests.post(sim.vpp_base_url + "/api/regsn", json={"tokenId": sim.token, "sns": free}, timeout=5)
    assert again.json() == {"exception": None, "code": 0, "success": True, "Have bound sn": free}
    inverter_sn = sim.sim.device(free)["inverterSn"]
    assert vpp(sim, "/vppinverter/add", groupId=first_group(sim), inverterSn=inverter_sn)["success"] is True
    many = ",".join(f"SW{i:08d}" for i in range(101))
    assert (
        requests.post(sim.vpp_base_url + "/api/regsn", json={"tokenId": sim.token, "sns": many}, timeout=5).json()[
            "success"
        ]
        is False
    )


# -- EV chargers and callbacks --------------------------------------------------------------------------
class Receiver:
    """A tiny HTTP server collecting the callbacks."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        received = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - stdlib name
                length = int(self.headers.get("Content-Length", 0))
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/callback/ackprint/info"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def of_type(self, rsp_type: int) -> list[dict[str, Any]]:
        return [body for body in self.bodies if body["rspType"] == rsp_type]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()
    yield rec
    rec.server.shutdown()
    rec.server.server_close()


def pile_cmd(h: SimulatorHandle, sns: list[str], value: str, url: str, **extra: Any) -> Any:
    body = {
        "tokenId": h.token,
        "rwType": "2",
        "cmdType": "1",
        "cmdValue": value,
        "sns": sns,
        "callbackUrl": url,
        **extra,
    }
    return requests.post(h.ev_base_url + "/pileCmd", json=body, timeout=5).json()


def online_plugged_chargers(h: SimulatorHandle) -> list[str]:
    chargers = h.sim.tenant().chargers.values()
    return [c.sn for c in chargers if c.online and c.plugged]


def test_pile_cmd_changes_chargers_and_posts_three_kinds_of_callbacks(sim: SimulatorHandle, receiver: Receiver) -> None:
    tenant = sim.sim.tenant()
    sns = list(tenant.chargers)
    for sn in sns:
        sim.sim.set_device(sn, online=True, plugged=True)
    sim.sim.set_device(sns[1], online=False)
    answer = pile_cmd(sim, [sns[0], sns[1], "NOTMINE"], "1", receiver.url)
    assert answer["success"] is True and answer["exception"] == "accept success"
    task_id = answer["result"]["taskId"]
    assert wait_for(lambda: receiver.of_type(3))
    (sent,) = receiver.of_type(1)
    assert sent == {
        "success": True,
        "result": {"ack": "issue partly successfully", "failureList": ["NOTMINE"]},
        "rspType": 1,
        "taskId": task_id,
        "code": "1",
    }
    (device,) = receiver.of_type(2)
    assert device == {
        "success": True,
        "result": {"ack": "success", "sn": sns[0]},
        "rspType": 2,
        "taskId": task_id,
        "code": "0",
    }
    (done,) = receiver.of_type(3)
    assert done["code"] == "1" and done["success"] is False and done["result"]["timeoutList"] == [sns[1]]
    info = ev_info(sim, sns[0])
    assert info["success"] is True and info["exception"] == "query success"
    power_key = "chargingPower" if "chargingPower" in info["result"] else "ChargingPower"
    assert info["result"]["chargerStatus"] == 2 and info["result"]["chargingMode"] == 1
    assert info["result"][power_key] > 0
    assert ev_info(sim, sns[1])["result"]["chargerStatus"] == 5


def test_all_chargers_answering_complete_the_task(sim: SimulatorHandle, receiver: Receiver) -> None:
    sns = online_plugged_chargers(sim)[:2]
    pile_cmd(sim, sns, "0", receiver.url)
    done = wait_for(lambda: receiver.of_type(3))
    assert done[0] == {
        "success": True,
        "result": {"ack": "all handled"},
        "rspType": 3,
        "taskId": done[0]["taskId"],
        "code": "0",
    }
    assert receiver.of_type(1)[0]["code"] == "0" and "failureList" not in receiver.of_type(1)[0]["result"]
    assert len(receiver.of_type(2)) == 2


def test_the_power_key_follows_both_spellings(sim: SimulatorHandle) -> None:
    keys = {
        next(k for k in ev_info(sim, sn)["result"] if k.lower() == "chargingpower")
        for sn in list(sim.sim.tenant().chargers)
    }
    assert keys == {"chargingPower", "ChargingPower"}


def test_callbacks_can_come_twice(sim: SimulatorHandle, receiver: Receiver) -> None:
    sim.configure(callback_duplicate_rate=1.0)
    pile_cmd(sim, online_plugged_chargers(sim)[:1], "2", receiver.url)
    assert wait_for(lambda: len(receiver.bodies) == 6)
    assert sorted(b["rspType"] for b in receiver.bodies) == [1, 1, 2, 2, 3, 3]  # a copy may come after 3
    # the dispatcher counts a delivery once its POST is answered, a moment after the receiver has it
    assert wait_for(lambda: sim.sim.counters()["callbacks"]["duplicate"] == 3)


def test_callbacks_can_go_missing_or_come_late(sim: SimulatorHandle, receiver: Receiver) -> None:
    sim.configure(callback_drop_rate=1.0)
    sn = online_plugged_chargers(sim)[0]
    pile_cmd(sim, [sn], "3", receiver.url)
    time.sleep(0.4)
    assert receiver.bodies == [] and sim.sim.counters()["callbacks"]["dropped"] == 3
    assert wait_for(lambda: ev_info(sim, sn)["result"]["chargingMode"] == 3)  # the charger changed anyway

    sim.configure(callback_drop_rate=0.0, callback_late_rate=1.0, callback_late_delay=0.5)
    started = time.monotonic()
    pile_cmd(sim, [sn], "0", receiver.url)
    assert wait_for(lambda: len(receiver.bodies) == 3)
    assert time.monotonic() - started >= 0.5


def test_pile_cmd_rejects_invalid_requests(sim: SimulatorHandle, receiver: Receiver) -> None:
    sn = list(sim.sim.tenant().chargers)[0]
    assert pile_cmd(sim, [sn], "4", receiver.url)["exception"].startswith("cmdValue error")
    assert pile_cmd(sim, [sn], "1", receiver.url, rwType="1")["exception"].startswith("rwType error")
    assert pile_cmd(sim, [], "1", receiver.url)["exception"] == "sns cannot be empty"
    assert pile_cmd(sim, [f"C{i}" for i in range(101)], "1", receiver.url)["success"] is False
    assert pile_cmd(sim, [sn], "1", "")["exception"] == "callbackUrl cannot be empty"
    assert ev_info(sim, "NOPE") == {"success": False, "exception": "no auth!", "code": 1003}


# -- limits ---------------------------------------------------------------------------------------------
@pytest.fixture
def limited() -> Iterator[tuple[SimulatorHandle, FakeClock]]:
    clock = FakeClock()
    with running_simulator(clock=clock, seed=3, lockout_after=3, violation_window=300) as handle:
        yield handle, clock


def find_all(h: SimulatorHandle) -> dict[str, Any]:
    return vpp(h, "/vppgroup/findAll", current=1, size=1)


def test_the_eleventh_call_in_a_minute_is_rejected(limited: tuple[SimulatorHandle, FakeClock]) -> None:
    h, clock = limited
    h.configure(lockout_after=5)
    for _ in range(10):
        assert find_all(h)["success"] is True
        clock.advance(1)
    assert find_all(h) == {
        "success": False,
        "code": 3,
        "exception": "Request calls within the current minute > threshold",
    }
    assert ev_info(h, "X") == {
        "success": False,
        "code": 104,
        "exception": "Request calls within the current minute > threshold",
    }
    clock.advance(50.5)  # 60.5 s after the first call: exactly one slot is free again
    assert find_all(h)["success"] is True
    assert find_all(h)["code"] == 3
    counters = h.counters()["tokens"][h.token]
    assert counters["accepted"] == 11 and counters["violations"] == 3 and counters["lockouts"] == 0


def test_repeated_violations_lock_the_token_out_for_an_hour(limited: tuple[SimulatorHandle, FakeClock]) -> None:
    h, clock = limited
    for _ in range(10):
        find_all(h)
    assert find_all(h)["code"] == 3
    assert find_all(h)["code"] == 3
    lockout = {
        "success": False,
        "code": 1,
        "exception": "There have been several violations in a row, "
        "and the system will prohibit calls within the next hour",
    }
    assert find_all(h) == lockout
    clock.advance(120)
    assert find_all(h) == lockout
    clock.advance(3600)
    assert find_all(h)["success"] is True
    assert h.counters()["tokens"][h.token]["locked_rejections"] == 1


def test_the_day_limit_counts_too(limited: tuple[SimulatorHandle, FakeClock]) -> None:
    h, clock = limited
    h.configure(per_day=12)
    for _ in range(12):
        assert find_all(h)["success"] is True
        clock.advance(7)
    answer = find_all(h)
    assert answer["code"] == 3 and "day" in answer["exception"]
    clock.advance(86_400)
    assert find_all(h)["success"] is True


# -- faults ---------------------------------------------------------------------------------------------
def group_count(h: SimulatorHandle) -> int:
    return find_all(h)["result"]["num"]


def add_group(h: SimulatorHandle, name: str, timeout: float = 5) -> requests.Response:
    return requests.post(h.vpp_base_url + "/vppgroup/add", params={"tokenId": h.token, "name": name}, timeout=timeout)


def test_a_timeout_fault_applies_the_write_and_loses_the_answer(sim: SimulatorHandle) -> None:
    sim.configure(faults=[{"kind": "timeout", "endpoint": "group_add", "count": 1, "seconds": 0.6}])
    with pytest.raises(requests.ReadTimeout):
        add_group(sim, "Lost", timeout=0.2)
    assert group_count(sim) == 4
    assert add_group(sim, "Next").json()["success"] is True  # count consumed
    assert sim.sim.counters()["faults"] == {"timeout": 1}


def test_a_timeout_before_apply_changes_nothing(sim: SimulatorHandle) -> None:
    sim.configure(faults=[{"kind": "timeout_before_apply", "endpoint": "group_add", "count": 1, "seconds": 0.3}])
    with pytest.raises(requests.ConnectionError):
        add_group(sim, "Never", timeout=2)
    assert group_count(sim) == 3


@pytest.mark.parametrize(
    ("kind", "check"),
    [
        ("http_503", lambda r: r.status_code == 503 and "503 Service Temporarily Unavailable" in r.text),
        ("html_200", lambda r: r.status_code == 200 and r.text.startswith("<!DOCTYPE html>")),
        ("token_invalid", lambda r: r.json() == {"success": False, "exception": "token invalid!", "code": 103}),
    ],
)
def test_error_page_faults(sim: SimulatorHandle, kind: str, check: Callable[[requests.Response], bool]) -> None:
    sim.configure(faults=[{"kind": kind, "endpoint": "group_add", "count": 1}])
    assert check(add_group(sim, "F"))
    assert group_count(sim) == 3


def test_a_malformed_json_fault_cuts_the_applied_answer(sim: SimulatorHandle) -> None:
    sim.configure(faults=[{"kind": "malformed_json", "endpoint": "group_add", "count": 1}])
    answer = add_group(sim, "Cut")
    assert answer.status_code == 200 and answer.text.startswith('{"exception"')
    with pytest.raises(ValueError):
        answer.json()
    assert group_count(sim) == 4


def test_a_connection_reset_gives_no_answer(sim: SimulatorHandle) -> None:
    sim.configure(
        faults=[
            {"kind": "connection_reset", "endpoint": "*", "count": 2},
            {"kind": "connection_reset", "endpoint": "group_add", "apply": True},
        ]
    )
    with pytest.raises(requests.ConnectionError):
        find_all(sim)
    with pytest.raises(requests.ConnectionError):
        add_group(sim, "Gone")
    assert group_count(sim) == 3
    with pytest.raises(requests.ConnectionError):
        add_group(sim, "Applied")  # the third rule: applied, then reset
    assert group_count(sim) == 4


def test_fault_probabilities_are_deterministic_for_a_seed(sim: SimulatorHandle) -> None:
    def pattern() -> list[int]:
        sim.reset(faults=[{"kind": "http_503", "endpoint": "group_query", "probability": 0.5}])
        return [
            requests.post(
                sim.vpp_base_url + "/vppgroup/findAll",
                params={"tokenId": sim.token, "current": 1, "size": 1},
                timeout=5,
            ).status_code
            for _ in range(20)
        ]

    first = pattern()
    assert first == pattern() and 200 in first and 503 in first


def test_bad_fault_config_is_refused(sim: SimulatorHandle) -> None:
    answer = requests.post(sim.url + "/_sim/config", json={"faults": [{"kind": "meteor"}]}, timeout=5)
    assert answer.status_code == 400 and "meteor" in answer.json()["error"]
    answer = requests.post(sim.url + "/_sim/config", json={"per_hour": 3}, timeout=5)
    assert answer.status_code == 400 and "per_hour" in answer.json()["error"]


# -- counters, reset, tenants, determinism --------------------------------------------------------------
def test_counters_count_calls_and_duplicate_payloads(sim: SimulatorHandle) -> None:
    sn = members(sim, first_group(sim))[0]["inverterSn"]
    url = sim.vpp_base_url + "/commandapi/singleControl"
    requests.post(url, params={"tokenId": sim.token, "sn": sn, "superType": 1, "systemSwich": 0}, timeout=5)
    requests.post(url, data={"token": sim.token, "sn": sn, "superType": "1", "systemSwitch": "0"}, timeout=5)
    requests.post(url, params={"tokenId": sim.token, "sn": sn, "superType": 1, "systemSwitch": 1}, timeout=5)
    counters = sim.counters()
    assert counters["tokens"][sim.token]["calls"]["single_control"] == 3
    assert counters["duplicates"] == 1
    key = json.dumps(
        {"endpoint": "single_control", "sn": sn, "superType": "1", "systemSwitch": "0"},
        sort_keys=True,
        separators=(",", ":"),
    )
    assert counters["payloads"][key] == 2
    assert sim.token not in json.dumps(counters["payloads"])

    requests.post(sim.url + "/_sim/reset", timeout=5)
    after = sim.counters()
    assert after["tokens"][sim.token]["total"] == 0 and after["payloads"] == {} and after["duplicates"] == 0


def test_rate_limited_control_calls_are_not_payloads(limited: tuple[SimulatorHandle, FakeClock]) -> None:
    h, _ = limited
    for _ in range(10):
        find_all(h)
    sn = h.sim.tenant().summary()["ungrouped_inverters"][0]
    assert vpp(h, "/commandapi/singleControl", sn=sn, superType=1, systemSwitch=1)["code"] == 3
    assert h.counters()["payloads"] == {}


def test_the_sim_api_adds_tenants_and_inspects_devices(sim: SimulatorHandle) -> None:
    token = "202401010000000000000042"
    added = requests.post(
        sim.url + "/_sim/tenants", json={"token": token, "fleet": "small", "seed": 5}, timeout=5
    ).json()
    assert added["groups"] == 3 and added["inverters"] == 30 and added["chargers"] == 5
    page = requests.post(
        sim.vpp_base_url + "/vppgroup/findAll", params={"tokenId": token, "current": 1, "size": 5}, timeout=5
    ).json()
    assert page["result"]["num"] == 3
    tenants = requests.get(sim.url + "/_sim/tenants", timeout=5).json()
    assert set(tenants) == {sim.token, token}
    sn = tenants[token]["chargers_sample"][0]
    device = requests.get(sim.url + "/_sim/device", params={"token": token, "sn": sn}, timeout=5).json()
    assert device["kind"] == "charger" and device["sn"] == sn
    changed = requests.post(sim.url + "/_sim/device", json={"token": token, "sn": sn, "online": False}, timeout=5)
    assert changed.json()["online"] is False
    assert requests.get(sim.url + "/_sim/device", params={"sn": "NOPE"}, timeout=5).status_code == 404
    config = requests.post(sim.url + "/_sim/config", json={"per_minute": 20}, timeout=5).json()
    assert config["per_minute"] == 20 and sim.sim.config.per_minute == 20
    index = requests.get(sim.url + "/_sim/", timeout=5).json()
    assert "counters" in index["get"] and len(index["endpoints"]) == 20


def test_a_seed_fixes_the_fleet_and_the_answers() -> None:
    def run(seed: int) -> tuple[str, dict[str, str]]:
        knobs = {**FAST, "seed": seed, "device_failure_rate": 0.5}
        with running_simulator(**knobs) as h:
            group_id = first_group(h)
            text = requests.post(
                h.vpp_base_url + "/vppinverter/findByGroupId",
                params={"tokenId": h.token, "groupId": group_id, "current": 1, "size": 50},
                timeout=5,
            ).text
            task_id = task_of(h, control(h, "/commandapi/groupControl", groupId=group_id, superType=1, systemSwitch=1))
            time.sleep(0.2)
            return text, vpp(h, "/commandapi/getQueryResult", taskId=task_id)["result"]

    first = run(11)
    assert first == run(11)
    assert first[0] != run(12)[0]
    assert {"success"} < set(first[1].values()) | {"success"}


def test_it_handles_concurrent_callers(sim: SimulatorHandle) -> None:
    results: list[int] = []

    def worker() -> None:
        for _ in range(5):
            results.append(
                requests.post(
                    sim.vpp_base_url + "/vppgroup/findAll",
                    params={"tokenId": sim.token, "current": 1, "size": 3},
                    timeout=10,
                ).status_code
            )

    threads = [threading.Thread(target=worker) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [200] * 100
    assert sim.counters()["tokens"][sim.token]["calls"]["group_query"] == 100


# -- fleets ---------------------------------------------------------------------------------------------
def test_the_large_fleet_is_quick_to_make_and_pages_with_a_cap() -> None:
    started = time.monotonic()
    with running_simulator(fleet="large", seed=1, per_minute=1000) as h:
        assert time.monotonic() - started < 6
        page = vpp(h, "/vppgroup/findAll", current=1, size=5000)["result"]
        assert page["num"] == 500 and len(page["list"]) == 500
        last = vpp(h, "/vppgroup/findAll", current=50, size=10)["result"]["list"]
        assert len(last) == 10
        group_id = str(page["list"][0]["id"])
        count = page["list"][0]["num"]
        rows = vpp(h, "/vppinverter/findByGroupId", groupId=group_id, current=1, size=20)["result"]
        assert rows["num"] == count and len(rows["list"]) == min(20, count)
        summary = h.sim.tenant().summary()
        assert summary["inverters"] == 50_000 and summary["chargers"] == 2000 and summary["groups"] == 500


def test_the_demo_fleet_has_its_size() -> None:
    with running_simulator(fleet="demo") as h:
        summary = h.sim.tenant().summary()
        assert (summary["groups"], summary["inverters"], summary["chargers"]) == (40, 2000, 50)
        assert h.token == "20230413104527266767791"


# -- command line and package rules ---------------------------------------------------------------------
def test_the_command_line_serves_and_prints_url_and_token() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "solax.simulator",
            "--port",
            str(port),
            "--seed",
            "4",
            "--fleet",
            "small",
            "--token",
            "111122223333444455556666",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(6)]
        text = "".join(lines)
        assert f"http://127.0.0.1:{port}" in text and "111122223333444455556666" in text
        answer = requests.post(
            f"http://127.0.0.1:{port}/proxy/vppgroup/findAll",
            params={"tokenId": "111122223333444455556666", "current": 1, "size": 1},
            timeout=5,
        )
        assert answer.json()["result"]["num"] == 3
    finally:
        process.terminate()
        process.wait(timeout=5)
        if process.stdout is not None:
            process.stdout.close()


def test_the_simulator_does_not_import_django() -> None:
    package = Path(__file__).resolve().parents[2] / "solax" / "simulator"
    for path in package.glob("*.py"):
        assert not re.search(r"^\s*(from|import)\s+django", path.read_text(), re.M), path


# -- cloud profiles (issue 12) --------------------------------------------------------------------------
def raw(h: SimulatorHandle, path: str, **params: Any) -> str:
    answer = requests.post(f"{h.vpp_base_url}{path}", params={"tokenId": h.token, **params}, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.text


def free_inverter(h: SimulatorHandle) -> str:
    tenant = h.sim.tenant()
    return next(inv.sn for inv in tenant.inverters.values() if inv.bound and inv.member_id is None)


def test_every_profile_is_a_set_of_valid_knobs_picked_by_name() -> None:
    from solax.simulator.core import Simulator
    from solax.simulator.profiles import PROFILES, profile_knobs, with_profile

    assert {"default", "capped100", "numeric-ids", "string-ids", "strict", "slow-pages"} <= set(PROFILES)
    for name, profile in PROFILES.items():
        sim = Simulator(**with_profile(name, {"fleet": "empty"}))
        for key, value in profile.knobs.items():
            assert getattr(sim.config, key) == value, (name, key)
        sim.close()
    assert with_profile("capped100", {"max_page_size": 7})["max_page_size"] == 7  # knobs beside win
    assert profile_knobs(None) == {}
    with pytest.raises(ValueError, match="unknown simulator profile"):
        profile_knobs("nonsense")
    with running_simulator(profile="capped50", fleet="empty") as handle:
        assert handle.sim.config.max_page_size == 50
        handle.reset()
        assert handle.sim.config.max_page_size == 50  # a reset goes back to the profile


@pytest.mark.parametrize("cap", [1, 3, 7])
def test_a_page_cap_of_any_value_holds_whatever_size_is_asked(sim: SimulatorHandle, cap: int) -> None:
    sim.configure(max_page_size=cap)
    group = first_group(sim)
    total = len(sim.sim.tenant().groups[group].members)
    result = vpp(sim, "/vppinverter/findByGroupId", groupId=group, current=2, size=1000)["result"]
    assert result["num"] == total and len(result["list"]) == min(cap, max(0, total - cap))


def test_ids_come_as_numbers_or_strings(sim: SimulatorHandle) -> None:
    group = first_group(sim)
    sim.configure(id_style="strings")
    assert re.search(r'"id":"\d+"', raw(sim, "/vppgroup/findAll", current=1, size=10))
    assert re.search(r'"groupId":"\d+"', raw(sim, "/vppinverter/findByGroupId", groupId=group, current=1, size=5))
    assert re.search(r'"result":"\d+"', raw(sim, "/vppgroup/add", name="As strings"))
    sim.configure(id_style="numbers")
    assert re.search(r'"id":\d+', raw(sim, "/vppgroup/findLikeName", name="a"))
    assert re.search(r'"result":\d+', raw(sim, "/vppinverter/add", groupId=group, inverterSn=free_inverter(sim)))
    sim.configure(id_style="doc")  # the examples: findAll numbers, findLikeName strings
    assert re.search(r'"id":"\d+"', raw(sim, "/vppgroup/findLikeName", name="a"))
    assert re.search(r'"id":\d+', raw(sim, "/vppgroup/findAll", current=1, size=10))


def test_times_come_quoted_or_not(sim: SimulatorHandle) -> None:
    group = first_group(sim)
    page = {"groupId": group, "current": 1, "size": 5}
    assert '"createTime":2' in raw(sim, "/vppinverter/findByGroupId", **page)  # the doc's quirk
    assert '"createTime":"' in raw(sim, "/vppgroup/findAll", current=1, size=5)
    sim.configure(unquoted_create_time=False)
    assert '"createTime":2' not in raw(sim, "/vppinverter/findByGroupId", **page)
    sim.configure(unquoted_times=True)
    member = members(sim, group)[0]
    control(sim, "/vppinverter/updateById", id=member["id"], newInverterSn=free_inverter(sim))
    control(sim, "/vppgroup/updateById", id=group, name="Renamed")
    assert '"updateTime":2' in raw(sim, "/vppinverter/findByGroupId", **page)
    assert '"createTime":2' in raw(sim, "/vppgroup/findAll", current=1, size=5)
    assert '"updateTime":2' in raw(sim, "/vppgroup/findAll", current=1, size=5)


def test_member_writes_touch_the_group_update_time_only_in_that_profile(sim: SimulatorHandle) -> None:
    group = first_group(sim)

    def update_time() -> Any:
        rows = vpp(sim, "/vppgroup/findAll", current=1, size=100)["result"]["list"]
        return next(row["updateTime"] for row in rows if str(row["id"]) == group)

    control(sim, "/vppinverter/add", groupId=group, inverterSn=free_inverter(sim))
    assert update_time() is None  # the default: the count moves, the update time does not
    sim.configure(member_write_touches_group=True)
    control(sim, "/vppinverter/add", groupId=group, inverterSn=free_inverter(sim))
    assert update_time() is not None


def test_slow_pages_answer_late_with_the_state_they_read(sim: SimulatorHandle) -> None:
    group = first_group(sim)
    before = len(sim.sim.tenant().groups[group].members)
    sim.configure(page_delay=0.6)
    answers: list[Any] = []
    started = time.monotonic()
    reader = threading.Thread(target=lambda: answers.append(
        vpp(sim, "/vppinverter/findByGroupId", groupId=group, current=1, size=1000)))
    reader.start()
    time.sleep(0.15)
    control(sim, "/vppinverter/add", groupId=group, inverterSn=free_inverter(sim))  # writes are not slowed
    assert time.monotonic() - started < 0.6
    reader.join(5)
    assert time.monotonic() - started >= 0.6
    assert answers[0]["result"]["num"] == len(answers[0]["result"]["list"]) == before


def test_a_count_can_change_in_the_middle_of_a_read(sim: SimulatorHandle) -> None:
    sim.configure(count_change_every=2)
    first = vpp(sim, "/vppgroup/findAll", current=1, size=2)["result"]["num"]
    second = vpp(sim, "/vppgroup/findAll", current=2, size=2)["result"]["num"]
    assert second == first + 1
    group = first_group(sim)  # the third findAll: no change
    counts = [vpp(sim, "/vppinverter/findByGroupId", groupId=group, current=1, size=1)["result"]["num"]
              for _ in range(2)]
    assert counts[1] == counts[0] + 1


def test_bad_profile_knobs_are_refused(sim: SimulatorHandle) -> None:
    for bad in ({"id_style": "floats"}, {"page_delay": -1}, {"max_page_size": 0}, {"count_change_every": -2}):
        with pytest.raises(ValueError):
            sim.configure(**bad)


def test_the_command_line_picks_a_profile() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "solax.simulator", "--port", str(port), "--fleet", "small", "--profile", "strict",
         "--page-cap", "2"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        text = "".join(process.stdout.readline() for _ in range(2))
        assert "profile strict" in text
        answer = requests.post(
            f"http://127.0.0.1:{port}/proxy/vppgroup/findAll",
            params={"tokenId": "20230413104527266767791", "current": 1, "size": 100},
            timeout=5,
        )
        result = answer.json()["result"]
        assert result["num"] == 3 and len(result["list"]) == 2 and isinstance(result["list"][0]["id"], str)
    finally:
        process.terminate()
        process.wait(timeout=5)
        if process.stdout is not None:
            process.stdout.close()
