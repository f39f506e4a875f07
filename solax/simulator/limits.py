"""Per-token call limits, as the cloud enforces them: strict sliding windows on arrival time.

A call is accepted when fewer than `per_minute` accepted calls arrived in the last 60 s and fewer than
`per_day` in the last 86,400 s. A rejected call consumes no budget but is a violation; the
`lockout_after`-th violation within `violation_window` seconds locks the token out for `lockout_seconds`
(that call already gets the lockout answer). Calls during a lockout are rejected and are not violations.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field

from .config import SimConfig
from .replies import CODE_LOCKOUT, MSG_DAY, MSG_LOCKOUT, MSG_MINUTE

MINUTE = 60.0
DAY = 86_400.0


@dataclass
class Verdict:
    accepted: bool
    code: int = 0
    exception: str = ""
    lockout: bool = False


@dataclass
class _Window:
    minute: deque[float] = field(default_factory=deque)
    day: deque[float] = field(default_factory=deque)
    violations: deque[float] = field(default_factory=deque)
    locked_until: float = float("-inf")
    stats: dict[str, int] = field(
        default_factory=lambda: {
            "accepted": 0,
            "rate_limited": 0,
            "violations": 0,
            "lockouts": 0,
            "locked_rejections": 0,
        }
    )


class RateLimiter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[str, _Window] = {}

    def check(self, token: str, now: float, cfg: SimConfig, rate_code: int) -> Verdict:
        with self._lock:
            w = self._tokens.setdefault(token, _Window())
            _trim(w.minute, now - MINUTE)
            _trim(w.day, now - DAY)
            if now < w.locked_until:
                w.stats["locked_rejections"] += 1
                return Verdict(False, CODE_LOCKOUT, MSG_LOCKOUT, lockout=True)
            if len(w.minute) < cfg.per_minute and len(w.day) < cfg.per_day:
                w.minute.append(now)
                w.day.append(now)
                w.stats["accepted"] += 1
                return Verdict(True)
            w.stats["violations"] += 1
            _trim(w.violations, now - cfg.violation_window)
            w.violations.append(now)
            if len(w.violations) >= cfg.lockout_after:
                w.violations.clear()
                w.locked_until = now + cfg.lockout_seconds
                w.stats["lockouts"] += 1
                return Verdict(False, CODE_LOCKOUT, MSG_LOCKOUT, lockout=True)
            w.stats["rate_limited"] += 1
            return Verdict(False, rate_code, MSG_MINUTE if len(w.minute) >= cfg.per_minute else MSG_DAY)

    def snapshot(self, token: str, now: float) -> dict[str, object]:
        with self._lock:
            w = self._tokens.get(token)
            if w is None:
                return {
                    "accepted": 0,
                    "rate_limited": 0,
                    "violations": 0,
                    "lockouts": 0,
                    "locked_rejections": 0,
                    "last_minute": 0,
                    "last_day": 0,
                    "locked_for": 0.0,
                }
            _trim(w.minute, now - MINUTE)
            _trim(w.day, now - DAY)
            return {
                **w.stats,
                "last_minute": len(w.minute),
                "last_day": len(w.day),
                "locked_for": round(max(0.0, w.locked_until - now), 3),
            }

    def unlock(self, token: str | None = None) -> None:
        """Lift lockouts and forget windows (all tokens when None)."""
        with self._lock:
            if token is None:
                self._tokens.clear()
            else:
                self._tokens.pop(token, None)


def _trim(times: deque[float], horizon: float) -> None:
    while times and times[0] <= horizon:
        times.popleft()
