"""Asynchronous commands of one tenant: VPP control (command id -> task id -> per-dongle answers) and EV
pileCmd (task id -> callbacks). Device answers are drawn when the command arrives, so a seed fixes them."""

from __future__ import annotations

import heapq
import itertools
import random
from typing import TYPE_CHECKING

from .callbacks import Delivery, plan_pile_callbacks
from .model import ControlCommand, DeviceTask, Inverter, PileTask
from .replies import rule_broken

if TYPE_CHECKING:
    from .state import Tenant


class CommandBook:
    def __init__(self, tenant: Tenant, seed: int) -> None:
        self.tenant = tenant
        self.seed = seed
        self._rng = random.Random(f"{seed}|{tenant.token}|commands")
        self.by_id: dict[str, ControlCommand] = {}
        self.by_task: dict[str, ControlCommand] = {}
        self.piles: dict[str, PileTask] = {}
        self._due: list[tuple[float, int, str, str, str]] = []  # (at, seq, "inv"|"pile", task id, key)
        self._seq = itertools.count()

    def _task_id(self) -> str:
        return f"{self._rng.getrandbits(128):032x}"

    def _part(self, sn: str, online: bool, start: float) -> DeviceTask:
        cfg = self.tenant.config
        rng = self._rng
        at = start + rng.uniform(*cfg.device_delay)
        ok = rng.random() >= cfg.device_failure_rate
        answer = rng.choice(cfg.success_answers if ok else cfg.failure_answers)
        return DeviceTask(sn=sn, at=at if online else None, answer=answer, ok=ok)

    # -- VPP control (doc 1, 4) -------------------------------------------------------------------------
    def control(self, targets: list[Inverter], params: dict[str, int]) -> str:
        """Record a command; returns its command id."""
        now = self.tenant.clock()
        task_at = now + self.tenant.config.command_delay
        command = ControlCommand(
            id=self.tenant.new_id(), task_id=self._task_id(), task_at=task_at, params=params, devices={}
        )
        for inverter in targets:
            part = self._part(inverter.sn, inverter.online, task_at)
            command.devices[inverter.wifi_sn] = part
            if part.at is not None:
                entry = (part.at, next(self._seq), "inv", command.task_id, inverter.wifi_sn)
                heapq.heappush(self._due, entry)
        self.by_id[command.id] = command
        self.by_task[command.task_id] = command
        return command.id

    def query_command(self, command_id: str) -> str | None:
        """The task id, or None while the cloud has not dispatched the command yet."""
        command = self.by_id.get(command_id)
        if command is None:
            raise rule_broken("The command does not exist")
        return command.task_id if self.tenant.clock() >= command.task_at else None

    def query_result(self, task_id: str) -> dict[str, str]:
        """Dongle SN -> answer; the string "null" until that device has answered (offline: forever)."""
        command = self.by_task.get(task_id)
        if command is None or self.tenant.clock() < command.task_at:
            raise rule_broken("The task does not exist")
        return {wifi: part.answer if part.done else "null" for wifi, part in command.devices.items()}

    # -- EV pileCmd (EV doc 3.1) ------------------------------------------------------------------------
    def pile_cmd(self, sns: list[str], mode: int) -> tuple[PileTask, list[Delivery]]:
        """Accept a work-mode change; returns the task and the callbacks to POST (already thinned out,
        duplicated and delayed according to the config)."""
        cfg = self.tenant.config
        now = self.tenant.clock()
        task = PileTask(task_id=self._task_id(), mode=mode, created=now, devices={}, unknown=[])
        sent_at = now + self._rng.uniform(*cfg.callback_delay)
        for sn in dict.fromkeys(sns):
            charger = self.tenant.chargers.get(sn)
            if charger is None:
                task.unknown.append(sn)
                continue
            part = self._part(sn, charger.online, sent_at)
            task.devices[sn] = part
            if part.at is not None:
                heapq.heappush(self._due, (part.at, next(self._seq), "pile", task.task_id, sn))
        self.piles[task.task_id] = task
        rng = random.Random(f"{self.seed}|{self.tenant.token}|pile|{task.task_id}")
        return task, plan_pile_callbacks(task, sent_at, cfg, rng)

    # -- time passes ------------------------------------------------------------------------------------
    def settle(self) -> None:
        """Apply every device answer that is due by now (success answers change the device)."""
        now = self.tenant.clock()
        scale = self.tenant.config.time_scale
        while self._due and self._due[0][0] <= now:
            at, _, kind, task_id, key = heapq.heappop(self._due)
            if kind == "inv":
                command = self.by_task[task_id]
                part = command.devices[key]
                part.done = True
                inverter = self.tenant.inverters.get(part.sn)
                if part.ok and inverter is not None:
                    inverter.apply(command.params, at, scale)
            else:
                pile = self.piles[task_id]
                part = pile.devices[key]
                part.done = True
                charger = self.tenant.chargers.get(key)
                if part.ok and charger is not None:
                    charger.apply(pile.mode, at, scale)
