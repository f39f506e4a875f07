"""The simulator keeps its cloud across restarts (solax/simulator/persistence.py), over real HTTP."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

from solax.simulator.core import Simulator
from solax.simulator.persistence import StateFile
from tests.solax.test_simulator import FakeClock, loads

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "20230413104527266767791"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SimProcess:
    """`python -m solax.simulator --state FILE` as another process, as `rundemo` starts it."""

    def __init__(self, state: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "solax.simulator", "--port", str(self.port), "--fleet", "small",
             "--per-minute", "100000", "--command-delay", "0.05", "--state", str(state), "--save-every", "0.2"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                requests.get(f"{self.url}/_sim/health", timeout=1)
                return
            except requests.ConnectionError:
                time.sleep(0.1)
        raise RuntimeError("the simulator did not start")

    def vpp(self, path: str, **params: Any) -> Any:
        answer = requests.post(f"{self.url}/proxy{path}", params={"tokenId": TOKEN, **params}, timeout=5)
        return loads(answer.text)  # repairs the documented unquoted createTime

    def summary(self) -> dict[str, Any]:
        return requests.get(f"{self.url}/_sim/tenants", timeout=5).json()[TOKEN]

    def stop(self) -> str:
        self.proc.send_signal(signal.SIGTERM)  # what rundemo sends
        out, _ = self.proc.communicate(timeout=20)
        return out


def test_a_restarted_simulator_serves_the_same_cloud(tmp_path: Path) -> None:
    state = tmp_path / "simulator.json"
    sim = SimProcess(state)
    try:
        group_id = str(sim.vpp("/vppgroup/add", name="Kept")["result"])
        dongle = sim.summary()["unbound_dongles"][0]
        assert sim.vpp("/api/regsn", sns=dongle)["Binding success"] == dongle
        inverter = sim.summary()["ungrouped_inverters"][0]
        assert sim.vpp("/vppinverter/add", groupId=group_id, inverterSn=inverter)["success"] is True
        command_id = str(sim.vpp("/commandapi/singleControl", sn=inverter, superType=1,
                                 systemSwitch=0)["result"])
        time.sleep(0.1)
        task_id = sim.vpp("/commandapi/queryCommand", commandId=command_id)["result"]["taskId"]
        assert task_id
        before = sim.summary()
    finally:
        out = sim.stop()
    assert "a fresh cloud" in out

    again = SimProcess(state)
    try:
        assert again.summary()["groups"] == before["groups"]
        assert again.summary()["members"] == before["members"]
        names = [g["name"] for g in again.vpp("/vppgroup/findLikeName", name="Kept")["result"]["list"]]
        assert names == ["Kept"]
        assert again.vpp("/api/regsn", sns=dongle)["Have bound sn"] == dongle
        rows = again.vpp("/vppinverter/findByGroupId", groupId=group_id, current=1, size=10)["result"]["list"]
        assert [r["inverterSn"] for r in rows] == [inverter]
        assert again.vpp("/commandapi/queryCommand", commandId=command_id)["result"]["taskId"] == task_id
        result = again.vpp("/commandapi/getQueryResult", taskId=task_id)
        assert isinstance(result.get("result"), dict), result  # not "The task does not exist"
        new_id = int(again.vpp("/vppgroup/add", name="After")["result"])
        assert new_id > int(group_id)  # the id source continues, no id is handed out twice
    finally:
        out = again.stop()
    assert "restored" in out
    assert [p.name for p in tmp_path.iterdir()] == ["simulator.json"]  # no temp file left behind


def test_times_resume_where_they_stopped(tmp_path: Path) -> None:
    """A device answer due 5 s after the command is still 5 s away after a restart, whatever the new
    process's clock reads."""
    clock = FakeClock()
    sim = Simulator(clock=clock, seed=3, fleet="small", command_delay=0.0, device_delay=(5.0, 5.0),
                    device_failure_rate=0.0)
    tenant = sim.tenant()
    inverter = next(inv for inv in tenant.inverters.values() if inv.bound and inv.online)
    with tenant.lock:
        command_id = tenant.commands.control([inverter], {"superType": 1, "systemSwitch": 0})
    task_id = tenant.commands.by_id[command_id].task_id
    StateFile(sim, tmp_path / "s.json").save()

    later = FakeClock()
    later.now = 50.0  # a new process: its clock starts elsewhere
    fresh = Simulator(clock=later, seed=3, fleet="small", command_delay=0.0, device_delay=(5.0, 5.0),
                      device_failure_rate=0.0)
    assert StateFile(fresh, tmp_path / "s.json").restore() == [TOKEN]
    assert fresh.tenant().commands.query_result(task_id) == {inverter.wifi_sn: "null"}  # tenant() settles
    later.advance(5.1)
    assert fresh.tenant().commands.query_result(task_id) != {inverter.wifi_sn: "null"}
    assert fresh.device(inverter.sn)["systemOn"] is False


def test_an_unreadable_or_foreign_state_file_starts_a_fresh_cloud(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    sim = Simulator(seed=3, fleet="small")
    path.write_text("{not json")
    assert StateFile(sim, path).restore() == []
    other = Simulator(seed=4, fleet="small")
    with other.tenant().lock:
        other.tenant().group_add("Seed four")
    StateFile(other, path).save()
    assert StateFile(sim, path).restore() == []  # another seed: another demo's cloud
    assert not any(g.name == "Seed four" for g in sim.tenant().groups.values())


def test_it_writes_only_when_something_changed(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    sim = Simulator(seed=3, fleet="small")
    keeper = StateFile(sim, path)
    assert keeper.save() is True
    stamp = os.stat(path).st_mtime_ns
    assert keeper.save() is False
    with sim.tenant().lock:
        sim.tenant().group_add("New")
    assert keeper.save() is True
    assert os.stat(path).st_mtime_ns >= stamp
    assert json.loads(path.read_text())["format"] == 1
