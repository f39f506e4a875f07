"""Fault injection: which rule (if any) hits a call, and what the answer becomes.

A rule's probability is rolled with a generator seeded by (seed, token, endpoint, n-th call of that token
to that endpoint, rule index): the same calls in the same order meet the same faults for a seed.
"""

from __future__ import annotations

import random
import threading
from collections import Counter

from .config import FaultRule
from .replies import CODE_TOKEN, HTML_200, HTML_503, MSG_TOKEN, Reply, failure, ok

_GATEWAY_TIMEOUT = "<html><body><h1>504 Gateway Time-out</h1>The server didn't respond in time.</body></html>"


class FaultPlan:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: Counter[tuple[str, str]] = Counter()
        self.fired: Counter[str] = Counter()

    def pick(self, rules: list[FaultRule], token: str, endpoint: str, seed: int) -> FaultRule | None:
        """The first rule that fires for this call; consumes one of its `count`."""
        with self._lock:
            self._calls[(token, endpoint)] += 1
            n = self._calls[(token, endpoint)]
            for index, rule in enumerate(rules):
                if rule.endpoint != "*" and endpoint not in rule.endpoint.split(","):
                    continue
                if rule.token not in (None, token) or (rule.count is not None and rule.count <= 0):
                    continue
                if rule.probability < 1.0:
                    roll = random.Random(f"{seed}|{token}|{endpoint}|{n}|{index}").random()
                    if roll >= rule.probability:
                        continue
                if rule.count is not None:
                    rule.count -= 1
                self.fired[rule.kind] += 1
                return rule
        return None

    def clear(self) -> None:
        with self._lock:
            self._calls.clear()
            self.fired.clear()


def faulty_reply(rule: FaultRule, reply: Reply | None) -> Reply:
    """The answer of a call hit by `rule`; `reply` is the real answer when the effect was applied."""
    kind = rule.kind
    if kind == "timeout":
        late = reply if reply is not None else Reply.html(_GATEWAY_TIMEOUT, 504)
        late.delay = rule.seconds
        return late
    if kind == "timeout_before_apply":
        return Reply(delay=rule.seconds, reset=True)
    if kind == "connection_reset":
        return Reply(reset=True)
    if kind == "http_503":
        return Reply.html(HTML_503, 503)
    if kind == "html_200":
        return Reply.html(HTML_200, 200)
    if kind == "token_invalid":
        return Reply.json(failure(MSG_TOKEN, CODE_TOKEN))
    body = (reply or Reply.json(ok(None))).body
    return Reply(body=body[: max(1, len(body) // 2)])  # malformed_json: the answer cut in the middle
