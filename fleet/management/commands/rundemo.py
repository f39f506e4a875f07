"""Run the whole demo in the foreground: simulator, Celery worker with beat, and the web server.

Ctrl-C stops all three. Used by `make demo`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from solax.simulator.profiles import PROFILES


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


class Command(BaseCommand):
    help = "Start the simulator, a Celery worker with beat and the web server; Ctrl-C stops them all."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--sim-port", type=int, default=8765)
        parser.add_argument("--fleet", default="demo", choices=["small", "demo", "large"])
        parser.add_argument("--sim-profile", default="default", choices=list(PROFILES),
                            help="the simulated cloud's profile (solax.simulator.profiles)")

    def handle(self, *args: Any, **options: Any) -> None:
        py = sys.executable
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        # The worker may send the demo token to this simulator (and only to the allowed base URLs).
        simulator = f"http://127.0.0.1:{options['sim_port']}"
        if simulator not in settings.SOLAX_ALLOWED_BASE_URLS:
            env["SOLAX_ALLOWED_BASE_URLS"] = ",".join([*settings.SOLAX_ALLOWED_BASE_URLS, simulator])
        commands = [
            [py, "-m", "solax.simulator", "--port", str(options["sim_port"]), "--fleet", options["fleet"],
             "--seed", "1", "--profile", options["sim_profile"]],
            [py, "-m", "celery", "-A", "fleet", "worker", "--beat", "--loglevel=WARNING", "--concurrency=2"],
            [py, "manage.py", "runserver", f"127.0.0.1:{options['port']}", "--noreload"],
        ]
        # SIGTERM (a supervisor, `kill`) stops the children too, like Ctrl-C does.
        signal.signal(signal.SIGTERM, _interrupt)
        procs = [subprocess.Popen(cmd, env=env) for cmd in commands]
        self.stdout.write(self.style.SUCCESS(
            f"\nsolax-fleet demo: http://127.0.0.1:{options['port']}/  "
            "login operator / solax-demo (also admin, viewer)   Ctrl-C stops everything\n"
        ))
        try:
            while all(p.poll() is None for p in procs):
                time.sleep(0.5)
            self.stderr.write("A demo process exited; stopping the others.")
        except KeyboardInterrupt:
            pass
        finally:
            for p in procs:
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 10
            for p in procs:
                try:
                    p.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    p.kill()
