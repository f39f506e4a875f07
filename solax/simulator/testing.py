"""Run the simulator inside a test: `with running_simulator(command_delay=0.05) as sim: ...`."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from .app import make_app
from .core import Simulator
from .profiles import with_profile
from .server import SimServer, make_server


class SimulatorHandle:
    """A simulator served on 127.0.0.1 by a background thread."""

    def __init__(self, sim: Simulator, server: SimServer) -> None:
        self.sim = sim
        self._server = server
        host, port = server.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else host
        self.url = f"http://{host}:{port}"
        self.vpp_base_url = f"{self.url}/proxy"
        self.ev_base_url = f"{self.url}/proxyApp/proxy/api"
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="sim-http", daemon=True
        )
        self._stopped = False

    @property
    def token(self) -> str:
        return self.sim.token

    def start(self) -> SimulatorHandle:
        self._thread.start()
        return self

    def counters(self) -> dict[str, Any]:
        """GET /_sim/counters over HTTP (what another process would see)."""
        with urllib.request.urlopen(f"{self.url}/_sim/counters", timeout=5) as answer:  # noqa: S310
            return json.loads(answer.read())

    def configure(self, **knobs: Any) -> None:
        self.sim.configure(**knobs)

    def reset(self, **knobs: Any) -> None:
        self.sim.reset(**knobs)

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        self.sim.close()

    def __repr__(self) -> str:
        return f"<SimulatorHandle {self.url}>"


@contextmanager
def running_simulator(
    *, clock: Callable[[], float] | None = None, verbose: bool = False, profile: str | None = None, **config: Any
) -> Iterator[SimulatorHandle]:
    """Start a simulator on a free port of 127.0.0.1; `config` takes SimConfig knobs (seed, fleet, tokens,
    per_minute, command_delay, device_delay, faults, ...) over those of `profile` (solax.simulator.profiles).
    Stops it on exit."""
    handle = start_simulator(clock=clock, verbose=verbose, profile=profile, **config)
    try:
        yield handle
    finally:
        handle.stop()


def start_simulator(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    clock: Callable[[], float] | None = None,
    verbose: bool = False,
    profile: str | None = None,
    **config: Any,
) -> SimulatorHandle:
    """Like running_simulator, without the context manager (call .stop())."""
    sim = Simulator(clock=clock, **with_profile(profile, config))
    server = make_server(host, port, make_app(sim), verbose=verbose)
    return SimulatorHandle(sim, server).start()
