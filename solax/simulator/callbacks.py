"""EV charger callbacks (EV doc 3.1.6): rspType 1 (command sent), 2 (per device), 3 (task complete),
POSTed as JSON to the task's `callbackUrl` by one background thread, in due order.

Each callback may be dropped, delivered late or delivered twice; the rolls come from a random generator
seeded by (seed, token, task id), so a seed fixes them whatever the thread timing.
"""

from __future__ import annotations

import heapq
import itertools
import json
import random
import threading
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import SimConfig
    from .model import PileTask

_SEQ = itertools.count()


@dataclass(order=True)
class Delivery:
    due: float
    seq: int = field(default_factory=lambda: next(_SEQ))
    body: dict[str, Any] = field(default_factory=dict, compare=False)
    fate: str = field(default="sent", compare=False)  # sent | late | duplicate | dropped
    url: str = field(default="", compare=False)


def _bodies(task: PileTask, sent_at: float, cfg: SimConfig, rng: random.Random) -> list[tuple[float, dict]]:
    out: list[tuple[float, dict[str, Any]]] = []
    code = "0" if not task.unknown else ("1" if task.devices else "2")
    result: dict[str, Any] = {
        "ack": {"0": "issue successfully", "1": "issue partly successfully", "2": "issue failed"}[code]
    }
    if code != "0":
        result["failureList"] = list(task.unknown)
    out.append(
        (sent_at, {"success": code != "2", "result": result, "rspType": 1, "taskId": task.task_id, "code": code})
    )
    if not task.devices:
        return out
    ends = [sent_at]
    for sn, part in task.devices.items():
        if part.at is None:
            continue
        ends.append(part.at)
        code = "0" if part.ok else rng.choice(("1", "2"))
        ack = {"0": part.answer, "1": "device receive task failed", "2": "device task execute failed"}[code]
        out.append(
            (
                part.at,
                {
                    "success": part.ok,
                    "result": {"ack": ack, "sn": sn},
                    "rspType": 2,
                    "taskId": task.task_id,
                    "code": code,
                },
            )
        )
    timeouts = [sn for sn, part in task.devices.items() if part.at is None]
    end = max(ends)
    result = {"ack": "all handled"}
    if timeouts:
        end = max(end, sent_at + cfg.pile_task_timeout)
        result = {"ack": "partial devices time out", "timeoutList": timeouts}
    out.append(
        (
            end + cfg.callback_complete_delay,
            {
                "success": not timeouts,
                "result": result,
                "rspType": 3,
                "taskId": task.task_id,
                "code": "1" if timeouts else "0",
            },
        )
    )
    return out


def plan_pile_callbacks(task: PileTask, sent_at: float, cfg: SimConfig, rng: random.Random) -> list[Delivery]:
    """Every callback of a task with its fate (dropped ones included, for the counters)."""
    plan: list[Delivery] = []
    for due, body in _bodies(task, sent_at, cfg, rng):
        if rng.random() < cfg.callback_drop_rate:
            plan.append(Delivery(due, body=body, fate="dropped"))
            continue
        late = rng.random() < cfg.callback_late_rate
        if late:
            due += cfg.callback_late_delay
        plan.append(Delivery(due, body=body, fate="late" if late else "sent"))
        if rng.random() < cfg.callback_duplicate_rate:
            plan.append(Delivery(due + rng.uniform(0.01, 0.2), body=body, fate="duplicate"))
    return plan


class CallbackDispatcher:
    """One daemon thread POSTing due callbacks; started on the first schedule()."""

    def __init__(self, clock: Callable[[], float], http_timeout: Callable[[], float]) -> None:
        self._clock = clock
        self._http_timeout = http_timeout
        self._heap: list[Delivery] = []
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.stats = dict.fromkeys(("planned", "sent", "late", "duplicate", "dropped", "failed"), 0)
        self.log: list[dict[str, Any]] = []  # the last deliveries, for /_sim/callbacks

    def schedule(self, url: str, plan: list[Delivery]) -> None:
        with self._cond:
            for delivery in plan:
                self.stats["planned"] += 1
                if delivery.fate == "dropped":
                    self.stats["dropped"] += 1
                    continue
                delivery.url = url
                heapq.heappush(self._heap, delivery)
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(target=self._run, name="sim-callbacks", daemon=True)
                self._thread.start()
            self._cond.notify()

    def pending(self) -> int:
        with self._cond:
            return len(self._heap)

    def clear(self) -> None:
        with self._cond:
            self._heap.clear()
            self.log.clear()
            for key in self.stats:
                self.stats[key] = 0

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            with self._cond:
                due: list[Delivery] = []
                while not self._closed:
                    now = self._clock()
                    while self._heap and self._heap[0].due <= now:
                        due.append(heapq.heappop(self._heap))
                    if due:
                        break
                    wait = min(max(self._heap[0].due - now, 0.001), 0.02) if self._heap else 0.5
                    self._cond.wait(wait)
                if self._closed:
                    return
            for delivery in due:
                self._post(delivery)

    def _post(self, delivery: Delivery) -> None:
        data = json.dumps(delivery.body, separators=(",", ":")).encode()
        request = urllib.request.Request(  # noqa: S310 - callbackUrl is checked to be http(s)
            delivery.url, data=data, method="POST", headers={"Content-Type": "application/json"}
        )
        outcome = delivery.fate
        try:
            with urllib.request.urlopen(request, timeout=self._http_timeout()) as answer:  # noqa: S310
                answer.read()
        except (OSError, ValueError):
            outcome = "failed"
        with self._cond:
            self.stats[outcome] += 1
            self.log.append({"url": delivery.url, "fate": outcome, "body": delivery.body})
            del self.log[:-200]
