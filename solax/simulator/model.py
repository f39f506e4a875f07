"""The devices and rows of one tenant (token). Slotted dataclasses: the large fleet holds 100,000 of them."""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(slots=True)
class Inverter:
    """A hybrid inverter with its battery, reachable through its dongle (`wifi_sn`, the registration no.)."""

    sn: str
    wifi_sn: str
    rate_power: float  # kW, the doc's `ratePower` (7.5)
    capacity_wh: int
    soc: float
    online: bool = True
    bound: bool = True  # bound to this token's account (regsn)
    bind_fails: bool = False  # regsn answers "Binding fail" for its dongle
    system_on: bool = True
    work_mode: int = 0  # superType 2 mode: 0 self use, 1 feed-in, 2 backup, 3 manual, 10 time windows
    remote_mode: int | None = None  # superType 0 mode while under remote control
    power_w: float = 0.0  # battery power: positive charges, negative discharges
    power_until: float = 0.0
    target_soc: float | None = None
    settings: dict[str, int] | None = None  # last superType 2 parameters (minSoc, windows, ...)
    member_id: str | None = None
    last_t: float = 0.0

    def advance(self, now: float, scale: float) -> None:
        """Integrate the battery up to `now` (simulator clock)."""
        if now <= self.last_t:
            return
        end = min(now, self.power_until)
        if self.power_w and self.system_on and end > self.last_t:
            soc = self.soc + self.power_w * (end - self.last_t) * scale / 36.0 / self.capacity_wh
            target = self.target_soc
            if target is not None and (self.power_w > 0) == (soc >= target):
                soc, self.power_w = target, 0.0
            self.soc = min(100.0, max(0.0, soc))
        if now >= self.power_until:
            self.power_w = 0.0
        self.last_t = now

    def apply(self, params: dict[str, int], now: float, scale: float) -> None:
        """Apply a validated control command (superType/mode rules of VPP doc 1.1)."""
        self.advance(now, scale)
        super_type = params["superType"]
        if super_type == 1:
            self.system_on = params["systemSwitch"] == 1
            if not self.system_on:
                self._run(0.0, now)
            return
        mode = params["mode"]
        self.target_soc = None
        if super_type == 0:
            self.remote_mode = mode
            if mode == 1:
                self._run(params["activePower"], now + params["proidTime"])
            elif mode == 2:
                power = params["chargerPower"]
                hours = params["targetEnergy"] / abs(power) if power else 0.0
                self._run(power, now + hours * 3600 / scale)
            elif mode == 3:
                target = float(params["targetSoc"])
                self.target_soc = target
                self._run(math.copysign(abs(params["chargerPower"]), target - self.soc), math.inf)
            else:
                self._run(0.0, now)
            return
        self.work_mode = mode
        self.remote_mode = None
        self.settings = {k: v for k, v in params.items() if k not in ("superType", "mode")}
        manual = params.get("manualMode", 0) if mode == 3 else 0
        self._run({1: 500.0, 2: -500.0}.get(manual, 0.0) * self.rate_power, math.inf)

    def _run(self, power: float, until: float) -> None:
        self.power_w = float(power)
        self.power_until = until

    def snapshot(self) -> dict[str, object]:
        return {
            "inverterSn": self.sn,
            "wifiSn": self.wifi_sn,
            "online": self.online,
            "bound": self.bound,
            "soc": round(self.soc, 2),
            "systemOn": self.system_on,
            "workMode": self.work_mode,
            "remoteMode": self.remote_mode,
            "powerW": self.power_w,
            "targetSoc": self.target_soc,
            "settings": self.settings,
            "memberId": self.member_id,
            "ratePower": self.rate_power,
        }


@dataclass(slots=True)
class Member:
    """A row of a group (the API's "inverter id")."""

    id: str
    group_id: str
    inverter_sn: str
    create_time: str
    update_time: str | None = None


@dataclass(slots=True)
class Group:
    id: str
    name: str
    create_time: str
    update_time: str | None = None
    members: dict[str, Member] = field(default_factory=dict)  # member id -> row, insertion order


# EV charger status codes (NOTES.md): 0 Available, 2 Charging, 3 Finish, 5 Unavailable
AVAILABLE, CHARGING, FINISH, UNAVAILABLE = 0, 2, 3, 5


@dataclass(slots=True)
class Charger:
    sn: str
    max_power: float  # kW
    online: bool = True
    plugged: bool = True  # a car is connected
    status: int = AVAILABLE
    mode: int = 0  # 0 STOP, 1 FAST, 2 ECO, 3 GREEN
    power: float = 0.0  # kW
    energy: float = 0.0  # kWh of the current session
    power_key: str = "chargingPower"  # the table says ChargingPower, the example chargingPower
    last_t: float = 0.0

    def advance(self, now: float, scale: float) -> None:
        if now > self.last_t:
            self.energy += self.power * (now - self.last_t) * scale / 3600.0
            self.last_t = now

    def apply(self, mode: int, now: float, scale: float) -> None:
        self.advance(now, scale)
        self.mode = mode
        if mode == 0:
            self.status = FINISH if self.status == CHARGING else AVAILABLE
            self.power = 0.0
        elif not self.plugged:
            self.status, self.power = AVAILABLE, 0.0
        else:
            self.status = CHARGING
            eco, green = min(self.max_power, 6.0), round(self.max_power * 0.3, 1)
            self.power = {1: self.max_power, 2: eco, 3: green}[mode]

    def info(self) -> dict[str, object]:
        """The getPileInfo result."""
        if not self.online:
            return {"chargerStatus": UNAVAILABLE, "chargingMode": self.mode, "chargeEnergy": 0, self.power_key: 0}
        return {
            "chargerStatus": self.status,
            "chargingMode": self.mode,
            "chargeEnergy": round(self.energy, 2),
            self.power_key: self.power,
        }

    def snapshot(self) -> dict[str, object]:
        return {
            "sn": self.sn,
            "online": self.online,
            "plugged": self.plugged,
            "status": self.status,
            "mode": self.mode,
            "power": self.power,
            "energy": round(self.energy, 3),
            "maxPower": self.max_power,
        }


@dataclass(slots=True)
class DeviceTask:
    """One device's part of a command: when it answers (None = offline, never) and what."""

    sn: str  # inverter or charger SN
    at: float | None
    answer: str
    ok: bool
    done: bool = False


@dataclass(slots=True)
class ControlCommand:
    id: str
    task_id: str
    task_at: float  # from then on queryCommand reveals task_id
    params: dict[str, int]
    devices: dict[str, DeviceTask]  # dongle SN -> its part


@dataclass(slots=True)
class PileTask:
    task_id: str
    mode: int
    created: float
    devices: dict[str, DeviceTask]  # charger SN -> its part (known chargers only)
    unknown: list[str]  # SNs not in the account: reported in rspType 1 failureList
