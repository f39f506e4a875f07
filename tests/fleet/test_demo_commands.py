from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from django.contrib.auth import authenticate
from django.core.management import call_command

from fleet.management.commands.rundemo import Child, Supervisor
from fleet.management.commands.seed_demo import DEMO_PASSWORD, DEMO_TOKEN
from fleet.models import ApiCall, Charger, Membership, Organization, SolaxAccount
from solax.simulator.config import DEFAULT_TOKEN
from solax.simulator.core import Simulator

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.django_db


def test_seed_demo_creates_the_logins_and_an_account_on_the_simulator():
    call_command("seed_demo", simulator="http://127.0.0.1:9999")
    call_command("seed_demo", simulator="http://127.0.0.1:9999")  # twice: nothing doubles
    org = Organization.objects.get(name="Demo Energy")
    roles = dict(Membership.objects.filter(organization=org).values_list("user__username", "role"))
    assert roles == {"operator": "operator", "admin": "admin", "viewer": "viewer"}
    assert authenticate(username="operator", password=DEMO_PASSWORD) is not None
    account = SolaxAccount.objects.get(organization=org)
    assert account.vpp_base_url == "http://127.0.0.1:9999/proxy"
    assert account.ev_base_url == "http://127.0.0.1:9999/proxyApp/proxy/api"
    assert account.get_token() == DEMO_TOKEN


def test_the_demo_token_is_the_one_the_simulator_serves():
    assert DEMO_TOKEN == DEFAULT_TOKEN


def test_seed_demo_adds_chargers_the_simulator_serves():
    call_command("seed_demo", simulator="http://127.0.0.1:9999")
    call_command("seed_demo", simulator="http://127.0.0.1:9999")
    account = SolaxAccount.objects.get(organization__name="Demo Energy")
    sns = list(Charger.objects.filter(account=account).values_list("sn", flat=True))
    assert len(sns) == 12
    served = Simulator(fleet="demo", seed=1).tenant(DEMO_TOKEN).chargers
    assert set(sns) <= set(served)
    reads = ApiCall.objects.filter(account=account, endpoint="pile_info")
    assert reads.count() == 12  # one status read each, not one per seed_demo run
    seeded = set(Charger.objects.filter(account=account).values_list("pk", flat=True))
    assert {c.context["charger"] for c in reads} == seeded


# rundemo's supervisor ------------------------------------------------------------------------------------

def _run_until_stop(supervisor: Supervisor, seconds: float) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if not supervisor.check():
            return False
        time.sleep(0.05)
    return True


def test_the_supervisor_restarts_a_process_that_exits_and_leaves_the_others_running():
    lines: list[str] = []
    crash = Child("worker", [sys.executable, "-c", "import sys; sys.exit(3)"])
    steady = Child("web server", [sys.executable, "-c", "import time; time.sleep(60)"])
    supervisor = Supervisor([crash, steady], os.environ, say=lines.append, limit=3, window=60)
    supervisor.start()
    try:
        assert steady.proc is not None
        first = steady.proc.pid
        assert _run_until_stop(supervisor, 30) is False  # the 4th exit within the window stops the demo
        assert steady.proc.pid == first and steady.proc.poll() is None  # never restarted meanwhile
        assert [line.split(";")[0] for line in lines[:3]] == ["The worker exited (code 3)"] * 3
        assert "stopping the demo" in lines[3]
    finally:
        supervisor.stop()
    assert steady.proc.poll() is not None


def test_the_supervisor_forgets_restarts_older_than_its_window():
    lines: list[str] = []
    crash = Child("worker", [sys.executable, "-c", "import time, sys; time.sleep(0.3); sys.exit(1)"])
    supervisor = Supervisor([crash], os.environ, say=lines.append, limit=1, window=0.2)
    supervisor.start()
    try:
        assert _run_until_stop(supervisor, 2.5) is True
    finally:
        supervisor.stop()
    assert len(lines) >= 3 and all("restarting it" in line for line in lines)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _children(pid: int) -> dict[int, str]:
    """Child pid -> command line (Linux /proc)."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            try:
                out[int(child)] = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except FileNotFoundError:
                continue
    return out


def _wait(predicate, seconds: float):  # type: ignore[no-untyped-def]
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    return predicate()


def _in_group(pgid: int) -> list[int]:
    """Live processes whose process group is `pgid` (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            found.append(int(stat.parent.name))
    return found


def _worker_pid(pid: int) -> int | None:
    return next((child for child, cmd in _children(pid).items() if " celery " in cmd), None)


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads children from /proc (Linux)")
def test_rundemo_survives_a_malformed_broker_message_and_a_killed_worker(tmp_path):
    """The demo's three processes for real: garbage in the broker is dropped by the running worker, a
    worker killed with SIGKILL comes back, and the web server keeps answering throughout."""
    port, sim_port = _free_port(), _free_port()
    env = {**os.environ, "DEBUG": "true", "DATA_DIR": str(tmp_path), "CELERY_BROKER_URL": "filesystem://",
           "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}", "PYTHONUNBUFFERED": "1"}
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    log = tmp_path / "demo.log"
    with log.open("wb") as out:
        demo = subprocess.Popen([*manage, "rundemo", "--port", str(port), "--sim-port", str(sim_port),
                                 "--fleet", "small"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    healthz = f"http://127.0.0.1:{port}/healthz"

    def web_up() -> bool:
        try:
            return requests.get(healthz, timeout=2).status_code == 200
        except requests.ConnectionError:
            return False

    try:
        assert _wait(web_up, 40), log.read_text()
        worker = _wait(lambda: _worker_pid(demo.pid), 10)
        assert worker, _children(demo.pid)
        (tmp_path / "broker" / "queue").mkdir(parents=True, exist_ok=True)
        (tmp_path / "broker" / "queue" / "0_garbage.celery.msg").write_bytes(b"")
        assert _wait(lambda: (tmp_path / "broker" / "rejected" / "0_garbage.celery.msg").exists(), 30), log.read_text()
        assert _worker_pid(demo.pid) == worker and web_up()

        assert len(_in_group(worker)) > 1  # the worker's pool and beat processes
        os.kill(worker, signal.SIGKILL)
        assert _wait(lambda: (_worker_pid(demo.pid) or worker) != worker, 15), log.read_text()
        assert _wait(lambda: not _in_group(worker), 5), _in_group(worker)  # no orphaned beat or pool
        assert web_up() and demo.poll() is None
        text = log.read_text()
        assert "The worker exited (code -9); restarting it" in text
        assert "Unrecoverable error" not in text and "Traceback" not in text
        assert "superuser privileges" not in text  # run as root (a container), see fleet/celery.py
        new_worker = _worker_pid(demo.pid)
    finally:
        os.killpg(demo.pid, signal.SIGTERM)
        demo.wait(timeout=30)
    assert new_worker and not _in_group(new_worker)  # stopping leaves nothing behind
    assert (tmp_path / "simulator.json").exists()  # the simulator saved its cloud on the way out


@pytest.mark.parametrize("as_root,warned", [("1", False), ("", True)])
def test_the_root_warning_is_silenced_only_when_rundemo_asks(as_root, warned):
    code = ("import warnings; import fleet.celery; from celery.exceptions import SecurityWarning; "
            "warnings.warn(SecurityWarning('You are running the worker with superuser privileges'))")
    env = {**os.environ, "DEBUG": "true", "FLEET_WORKER_AS_ROOT": as_root}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert ("superuser privileges" in result.stderr) is warned
