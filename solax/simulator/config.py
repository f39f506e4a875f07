"""Knobs of the simulator: limits, delays, probabilities, quirks and faults.

Every field can be set from Python (`SimConfig(...)`, `running_simulator(**knobs)`), changed on a running
simulator with `POST /_sim/config` (JSON object, same names) or from the command line for the common ones.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

DEFAULT_TOKEN = "20230413104527266767791"
ID_STYLES = ("doc", "numbers", "strings")

# kind -> whether the call's effect is applied by default before the fault shows
FAULT_KINDS: dict[str, bool] = {
    "timeout": True,  # the request reached the cloud, the answer comes too late (after `seconds`)
    "timeout_before_apply": False,  # sleeps `seconds`, then drops the connection; nothing applied
    "http_503": False,  # 503 with an nginx HTML page
    "html_200": False,  # 200 with an HTML maintenance page
    "malformed_json": True,  # the real answer, truncated
    "token_invalid": False,  # {"success":false,"code":103,"exception":"token invalid!"}
    "connection_reset": False,  # TCP RST without an answer
}


@dataclass
class FaultRule:
    """Inject `kind` into calls of `endpoint` ("*" = every endpoint, or an endpoint name of the contract).

    Fires with `probability` on each matching call; with `count` set, only for the next `count` firings.
    `apply` overrides FAULT_KINDS (e.g. a connection reset after the command was applied).
    """

    kind: str
    endpoint: str = "*"
    probability: float = 1.0
    count: int | None = None
    seconds: float = 2.0
    apply: bool | None = None
    token: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; one of {sorted(FAULT_KINDS)}")
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError("fault probability must be within 0..1")
        if self.count is not None and self.count < 0:
            raise ValueError("fault count must be >= 0")

    @property
    def applies_effect(self) -> bool:
        return FAULT_KINDS[self.kind] if self.apply is None else self.apply


@dataclass
class SimConfig:
    seed: int = 1
    fleet: str = "small"  # fleet of the tokens below: small | demo | large | empty
    tokens: list[str] = field(default_factory=lambda: [DEFAULT_TOKEN])

    # limits, per token, strict sliding windows on arrival time
    per_minute: int = 10
    per_day: int = 10_000
    lockout_after: int = 3  # violations within violation_window -> lockout
    violation_window: float = 300.0
    lockout_seconds: float = 3600.0
    rate_code_vpp: int = 3
    rate_code_ev: int = 104

    # asynchronous progress (seconds of the simulator clock)
    command_delay: float = 1.0  # control call -> queryCommand reveals the task id
    device_delay: tuple[float, float] = (1.0, 5.0)  # task id -> a device answers (uniform)
    device_failure_rate: float = 0.05  # an online device answers with a failure string
    success_answers: tuple[str, ...] = ("success",)
    failure_answers: tuple[str, ...] = ("fail", "execute failed", "device busy")
    offline_rate: float | None = None  # None: the fleet's own share of offline devices

    # EV callbacks (POSTed to callbackUrl by a background thread)
    callback_delay: tuple[float, float] = (0.2, 1.0)  # pileCmd -> rspType 1
    callback_complete_delay: float = 0.5  # last device answer -> rspType 3
    pile_task_timeout: float = 10.0  # offline chargers are reported in rspType 3 after this
    callback_duplicate_rate: float = 0.05
    callback_drop_rate: float = 0.02
    callback_late_rate: float = 0.05
    callback_late_delay: float = 30.0
    callback_http_timeout: float = 2.0

    # request rules
    max_page_size: int = 1000  # larger `size` is capped silently (any value: a cloud may cap at 50 or 100)
    max_sns: int = 100  # regsn, pileCmd and batchTempControl
    # The most SNs one batchTempControl takes (0: max_sns). Beyond it the call is refused before anything
    # executes: {"success": false, "code": 1002, "exception": "The number of snList cannot exceed N"}.
    batch_cap: int = 0
    time_scale: float = 1.0  # speeds up battery SoC and charger energy

    # the documents' quirks, on by default
    unquoted_create_time: bool = True  # inverter query answers: "createTime":2020-12-10 15:32:17
    is_success_rate: float = 0.25  # share of queryCommand/getQueryResult answers keyed `isSuccess`
    findall_doc_shape_rate: float = 0.0  # share of findAll answers shaped like doc 2.5's broken example
    pile_power_key: str = "mixed"  # chargingPower | ChargingPower | mixed (per charger)

    # other clouds within the documents (combined into named profiles by solax.simulator.profiles)
    id_style: str = "doc"  # doc: as the examples print them | numbers: every id a JSON number | strings
    unquoted_times: bool = False  # every createTime/updateTime of group and member answers unquoted
    member_write_touches_group: bool = False  # a member add/replace/remove sets the group's updateTime
    # the member fuzzy query by SN also lists the account's bound inverters in no group (groupStatus 0)
    fuzzy_lists_ungrouped: bool = False
    page_delay: float = 0.0  # seconds before a paged query (findAll, findByGroupId) answers; state is read first
    count_change_every: int = 0  # every n-th paged query of an endpoint first adds a group / a member (0: never)

    faults: list[FaultRule] = field(default_factory=list)

    def updated(self, changes: dict[str, Any]) -> SimConfig:
        """Return a copy with `changes` applied; ValueError names unknown keys or bad values."""
        names = {f.name: f for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - set(names))
        if unknown:
            raise ValueError(f"unknown config keys: {', '.join(unknown)}")
        values: dict[str, Any] = {}
        for key, value in changes.items():
            values[key] = _coerce(key, value, getattr(self, key))
        new = dataclasses.replace(self, **values)
        new.validate()
        return new

    def validate(self) -> None:
        if self.per_minute < 1 or self.per_day < 1 or self.lockout_after < 1:
            raise ValueError("per_minute, per_day and lockout_after must be >= 1")
        for name in ("device_delay", "callback_delay"):
            low, high = getattr(self, name)
            if low < 0 or high < low:
                raise ValueError(f"{name} must be [low, high] with 0 <= low <= high")
        for name in (
            "device_failure_rate",
            "callback_duplicate_rate",
            "callback_drop_rate",
            "callback_late_rate",
            "is_success_rate",
            "findall_doc_shape_rate",
        ):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be within 0..1")
        if self.offline_rate is not None and not 0.0 <= self.offline_rate <= 1.0:
            raise ValueError("offline_rate must be within 0..1")
        if self.pile_power_key not in ("chargingPower", "ChargingPower", "mixed"):
            raise ValueError("pile_power_key must be chargingPower, ChargingPower or mixed")
        if self.id_style not in ID_STYLES:
            raise ValueError(f"id_style must be one of {', '.join(ID_STYLES)}")
        if self.batch_cap < 0 or self.max_sns < 1:
            raise ValueError("batch_cap must be >= 0 (0: max_sns), max_sns >= 1")
        if self.page_delay < 0 or self.count_change_every < 0 or self.max_page_size < 1:
            raise ValueError("page_delay and count_change_every must be >= 0, max_page_size >= 1")
        if not self.tokens:
            raise ValueError("at least one token")

    def public(self) -> dict[str, Any]:
        """JSON-able view (GET /_sim/config)."""
        data = dataclasses.asdict(self)
        data["faults"] = [dataclasses.asdict(rule) for rule in self.faults]
        return data


def _coerce(key: str, value: Any, current: Any) -> Any:
    if key == "faults":
        if not isinstance(value, list):
            raise ValueError("faults must be a list of objects")
        return [rule if isinstance(rule, FaultRule) else FaultRule(**rule) for rule in value]
    if key == "tokens":
        return [str(token) for token in value]
    if isinstance(current, tuple):
        if current and isinstance(current[0], str):
            return tuple(str(item) for item in value)
        low, high = value
        return (float(low), float(high))
    if isinstance(current, bool):
        if not isinstance(value, bool):
            raise ValueError(f"{key} must be true or false")
        return value
    if isinstance(current, int) and not isinstance(current, bool):
        return int(value)
    if isinstance(current, float) or (current is None and key == "offline_rate"):
        return None if value is None else float(value)
    return value
