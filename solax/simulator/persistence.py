"""Keep the simulated cloud across restarts: a JSON file of every tenant's devices, groups, members,
commands and id sources, written atomically (temp file, fsync, rename) every few seconds and on stop,
and read back on start.

`python -m solax.simulator --state data/simulator.json` uses it (`make demo` does). The simulator's
clock starts again at each run, so every stored time is moved by (now - clock at save): for the cloud
no time passes while it is down, and a command sent before the restart still answers after it.
What is not kept: rate-limit windows and lockouts, counters, faults, and EV callbacks not yet
delivered (the dashboard falls back to a getPileInfo poll for those).
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import json
import logging
import math
import os
import random
import threading
from dataclasses import fields
from pathlib import Path
from typing import Any

from .app import make_app
from .core import Simulator
from .model import Charger, ControlCommand, DeviceTask, Group, Inverter, Member, PileTask
from .profiles import with_profile
from .server import make_server
from .state import Tenant
from .testing import SimulatorHandle

logger = logging.getLogger(__name__)

FORMAT = 1


def _row(obj: Any, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    return {f.name: getattr(obj, f.name) for f in fields(obj) if f.name not in skip}


def _make(cls: Any, row: dict[str, Any], **extra: Any) -> Any:
    """An instance of dataclass `cls` from `row`, ignoring keys it does not know (an older or newer
    file) and leaving its defaults for fields the file lacks."""
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in row.items() if k in names}, **extra)


def _rng_state(rng: random.Random) -> list[Any]:
    version, internal, gauss = rng.getstate()
    return [version, list(internal), gauss]


def _set_rng(rng: random.Random, state: list[Any]) -> None:
    rng.setstate((state[0], tuple(state[1]), state[2]))


def _shift(value: float | None, by: float) -> float | None:
    if value is None or math.isinf(value):
        return value
    return value + by


def dump_tenant(tenant: Tenant) -> dict[str, Any]:
    """A JSON-ready picture of one tenant; call with `tenant.lock` held."""
    book = tenant.commands
    return {
        "token": tenant.token,
        "fleet": tenant.fleet,
        "seed": book.seed,
        "ids": {"next": tenant.new_id._next, "rng": _rng_state(tenant.new_id._rng)},
        "inverters": [_row(inv) for inv in tenant.inverters.values()],
        "dongles": tenant.dongles,
        "foreign": sorted(tenant.foreign),
        "groups": [{**_row(g, skip=("members",)), "members": list(g.members)} for g in tenant.groups.values()],
        "members": [_row(m) for m in tenant.members.values()],
        "chargers": [_row(c) for c in tenant.chargers.values()],
        "commands": {
            "rng": _rng_state(book._rng),
            "control": [
                {**_row(c, skip=("devices",)), "devices": {k: _row(d) for k, d in c.devices.items()}}
                for c in book.by_id.values()
            ],
            "piles": [
                {**_row(p, skip=("devices",)), "devices": {k: _row(d) for k, d in p.devices.items()}}
                for p in book.piles.values()
            ],
            "due": [list(entry) for entry in book._due],
        },
    }


def load_tenant(tenant: Tenant, data: dict[str, Any], shift: float) -> None:
    """Replace `tenant`'s state by `data` (from dump_tenant), moving stored times by `shift` seconds;
    call with `tenant.lock` held."""
    tenant.new_id._next = int(data["ids"]["next"])
    _set_rng(tenant.new_id._rng, data["ids"]["rng"])
    inverters = {}
    for row in data["inverters"]:
        inv = _make(Inverter, row)
        inv.last_t = _shift(inv.last_t, shift) or 0.0
        inv.power_until = _shift(inv.power_until, shift) or 0.0
        inverters[inv.sn] = inv
    members = {row["id"]: _make(Member, row) for row in data["members"]}
    groups = {}
    for row in data["groups"]:
        group = _make(Group, {k: v for k, v in row.items() if k != "members"})
        group.members = {mid: members[mid] for mid in row["members"] if mid in members}
        groups[group.id] = group
    chargers = {}
    for row in data["chargers"]:
        charger = _make(Charger, row)
        charger.last_t = _shift(charger.last_t, shift) or 0.0
        chargers[charger.sn] = charger

    def parts(rows: dict[str, dict[str, Any]]) -> dict[str, DeviceTask]:
        out = {}
        for key, row in rows.items():
            part = _make(DeviceTask, row)
            part.at = _shift(part.at, shift)
            out[key] = part
        return out

    book = tenant.commands
    stored = data["commands"]
    _set_rng(book._rng, stored["rng"])
    book.by_id, book.by_task, book.piles = {}, {}, {}
    for row in stored["control"]:
        command = _make(ControlCommand, {k: v for k, v in row.items() if k != "devices"}, devices=parts(row["devices"]))
        command.task_at = _shift(command.task_at, shift) or 0.0
        book.by_id[command.id] = command
        book.by_task[command.task_id] = command
    for row in stored["piles"]:
        pile = _make(PileTask, {k: v for k, v in row.items() if k != "devices"}, devices=parts(row["devices"]))
        pile.created = _shift(pile.created, shift) or 0.0
        book.piles[pile.task_id] = pile
    due = [(float(at) + shift, int(seq), kind, task_id, key) for at, seq, kind, task_id, key in stored["due"]]
    heapq.heapify(due)
    book._due = due
    book._seq = itertools.count(max((entry[1] for entry in due), default=0) + 1)
    tenant.inverters, tenant.dongles, tenant.foreign = inverters, dict(data["dongles"]), set(data["foreign"])
    tenant.groups, tenant.members, tenant.chargers = groups, members, chargers


class StateFile:
    """Save `sim` to `path` every `every` seconds (when it changed) and on stop; restore on start."""

    def __init__(self, sim: Simulator, path: str | os.PathLike[str], every: float = 10.0) -> None:
        self.sim = sim
        self.path = Path(path)
        self.every = every
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last: dict[str, str] = {}

    def restore(self) -> list[str]:
        """Load the file if there is one; return the tokens restored. A tenant whose fleet or seed
        differs from the file's starts fresh (the file is for another demo)."""
        try:
            stored = json.loads(self.path.read_text())
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            logger.warning("Simulator state %s is unreadable (%s); starting a fresh cloud", self.path, exc)
            return []
        if stored.get("format") != FORMAT:
            logger.warning("Simulator state %s has another format; starting a fresh cloud", self.path)
            return []
        restored = []
        with self.sim._lock:
            shift = self.sim.clock() - float(stored["clock"])
            for data in stored["tenants"]:
                tenant = self.sim.tenants.get(data["token"])
                if tenant is None or tenant.fleet != data["fleet"] or tenant.commands.seed != data["seed"]:
                    continue
                with tenant.lock:
                    load_tenant(tenant, data, shift)
                restored.append(tenant.token)
        return restored

    def save(self) -> bool:
        """Write the file atomically if any tenant changed since the last save; return whether it wrote."""
        texts: dict[str, str] = {}
        with self.sim._lock:
            clock = self.sim.clock()
            for token, tenant in self.sim.tenants.items():
                with tenant.lock:
                    texts[token] = json.dumps(dump_tenant(tenant), separators=(",", ":"))
        if texts == self._last:
            return False
        body = f'{{"format":{FORMAT},"clock":{clock!r},"tenants":[{",".join(texts.values())}]}}'
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            with open(temp, "w") as f:
                f.write(body)
                f.flush()
                os.fsync(f.fileno())
            os.replace(temp, self.path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
        self._last = texts
        return True

    def start(self) -> StateFile:
        self._thread = threading.Thread(target=self._run, name="sim-state", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.save()
            except Exception:  # a full disk must not stop the simulator; the next save tries again
                logger.exception("Could not save the simulator state to %s", self.path)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.save()


def start_persistent_simulator(path: str | os.PathLike[str], every: float = 10.0, *, host: str = "127.0.0.1",
                               port: int = 0, verbose: bool = False, profile: str | None = None, **config: Any,
                               ) -> tuple[SimulatorHandle, StateFile, list[str]]:
    """Start a simulator (of a cloud ``profile``) whose state is restored from and saved to `path`;
    returns the handle, the state file (call .stop() before the handle's) and the tokens restored."""
    sim = Simulator(**with_profile(profile, config))
    state = StateFile(sim, path, every)
    restored = state.restore()  # before the first request is served
    handle = SimulatorHandle(sim, make_server(host, port, make_app(sim), verbose=verbose)).start()
    return handle, state.start(), restored
