"""Run the whole demo in the foreground: simulator, Celery worker with beat, and the web server.

Ctrl-C stops all three. A process that exits by itself is restarted (at most RESTART_LIMIT times in
RESTART_WINDOW seconds, then the demo stops with a message), so one crash does not take the site
down. Used by `make demo`.
"""

from __future__ import annotations

import collections
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from solax.simulator.profiles import PROFILES

RESTART_LIMIT = 5
RESTART_WINDOW = 600.0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


class Child:
    """One supervised process: its command line, the running process and its recent restarts."""

    def __init__(self, name: str, argv: Sequence[str]) -> None:
        self.name = name
        self.argv = list(argv)
        self.proc: subprocess.Popen[bytes] | None = None
        self.restarts: collections.deque[float] = collections.deque()


class Supervisor:
    """Start children, restart one that exits (capped), stop them all.

    `say` receives one line per event (start, exit, restart, giving up)."""

    def __init__(self, children: Sequence[Child], env: Mapping[str, str], say: Callable[[str], None],
                 limit: int = RESTART_LIMIT, window: float = RESTART_WINDOW) -> None:
        self.children = list(children)
        self.env = dict(env)
        self.say = say
        self.limit = limit
        self.window = window

    def start(self) -> None:
        for child in self.children:
            child.proc = self._spawn(child)

    def _spawn(self, child: Child) -> subprocess.Popen[bytes]:
        # A session of its own: Ctrl-C reaches rundemo only, which stops each child once with SIGTERM
        # (twice, a Celery worker's pool children die mid-shutdown and log errors).
        return subprocess.Popen(child.argv, env=self.env, start_new_session=True)

    def check(self) -> bool:
        """Restart children that exited; return False when one exited too often (stop the demo)."""
        now = time.monotonic()
        for child in self.children:
            if child.proc is None or child.proc.poll() is None:
                continue
            code = child.proc.returncode
            # What it left behind goes too: a worker killed hard leaves its beat and pool processes.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.proc.pid, signal.SIGKILL)
            while child.restarts and child.restarts[0] < now - self.window:
                child.restarts.popleft()
            if len(child.restarts) >= self.limit:
                self.say(f"The {child.name} exited (code {code}) {self.limit + 1} times within "
                         f"{self.window:.0f} s; stopping the demo. Its log is above.")
                return False
            child.restarts.append(now)
            self.say(f"The {child.name} exited (code {code}); restarting it "
                     f"({len(child.restarts)} of {self.limit} restarts allowed within {self.window:.0f} s).")
            child.proc = self._spawn(child)
        return True

    def stop(self, grace: float = 10.0) -> None:
        procs = [c.proc for c in self.children if c.proc is not None]
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for p in procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                # the whole session: a Celery worker's pool and beat children must not outlive it
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGKILL)
                p.wait()


class Command(BaseCommand):
    help = "Start the simulator, a Celery worker with beat and the web server; Ctrl-C stops them all."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--sim-port", type=int, default=8765)
        parser.add_argument("--fleet", default="demo", choices=["small", "demo", "large"])
        parser.add_argument("--sim-profile", default="default", choices=list(PROFILES),
                            help="the simulated cloud's profile (solax.simulator.profiles)")
        parser.add_argument("--sim-state", default=str(Path(settings.DATA_DIR) / "simulator.json"),
                            help="where the simulator keeps its cloud between runs ('' for none)")

    def handle(self, *args: Any, **options: Any) -> None:
        py = sys.executable
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        # EV callbacks must reach this web server, on whatever port it runs.
        env.setdefault("PUBLIC_BASE_URL", f"http://127.0.0.1:{options['port']}")
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            # Run as root (a container): the data folder belongs to root, so the worker cannot drop to
            # another user. Celery still refuses pickle as root; it accepts JSON only here.
            env["FLEET_WORKER_AS_ROOT"] = "1"
        # The worker may send the demo token to this simulator (and only to the allowed base URLs).
        sim_url = f"http://127.0.0.1:{options['sim_port']}"
        if sim_url not in settings.SOLAX_ALLOWED_BASE_URLS:
            env["SOLAX_ALLOWED_BASE_URLS"] = ",".join([*settings.SOLAX_ALLOWED_BASE_URLS, sim_url])
        simulator = [py, "-m", "solax.simulator", "--port", str(options["sim_port"]), "--fleet", options["fleet"],
                     "--seed", "1", "--profile", options["sim_profile"]]
        if options["sim_state"]:
            simulator += ["--state", options["sim_state"]]
        children = [
            Child("simulator", simulator),
            Child("worker", [py, "-m", "celery", "-A", "fleet", "worker", "--beat", "--loglevel=WARNING",
                             "--concurrency=2"]),
            Child("web server", [py, "manage.py", "runserver", f"127.0.0.1:{options['port']}", "--noreload"]),
        ]
        supervisor = Supervisor(children, env, say=lambda line: self.stderr.write(line))
        # SIGTERM (a supervisor, `kill`) stops the children too, like Ctrl-C does.
        signal.signal(signal.SIGTERM, _interrupt)
        supervisor.start()
        self.stdout.write(self.style.SUCCESS(
            f"\nsolax-fleet demo: http://127.0.0.1:{options['port']}/  "
            "login operator / solax-demo (also admin, viewer)   Ctrl-C stops everything\n"
        ))
        try:
            while supervisor.check():
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            # make and a terminal may pass on the same signal again: stopping must not be cut short
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            supervisor.stop()
