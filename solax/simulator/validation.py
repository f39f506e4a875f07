"""Parameter checks the way the cloud does them: the first bad parameter gives a `success:false` answer.

Control rules follow VPP doc 1.1-1.3 (superType/mode table) with NOTES.md's decisions: superType 2 mode
accepts 0-3 and 10; `activePower` is required for mode 1 everywhere; `systemSwich` = `systemSwitch`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .replies import ApiFailure, bad_param

U16 = 65535
PERIOD1 = (
    "chargeStartTime1Hour",
    "chargeStartTime1Minute",
    "chargeEndTime1Hour",
    "chargeEndTime1Minute",
    "dischargeStartTime1Hour",
    "dischargeStartTime1Minute",
    "dischargerEndTime1Hour",
    "dischargerEndTime1Minute",
)
PERIOD2 = (
    "chargeStartTime2Hour",
    "chargeStartTime2Minute",
    "chargeEndTime2Hour",
    "chargeEndTime2Minute",
    "dischargeStartTime2Hour",
    "dischargeStartTime2Minute",
    "dischargeEndTime2Hour",
    "dischargeEndTime2Minute",
)
SOC = (0, 100)
SIGNED = (-U16, U16)
UNSIGNED = (0, U16)


def text(params: Mapping[str, Any], name: str, required: bool = True) -> str:
    value = params.get(name)
    if value is None or str(value).strip() == "":
        if required:
            raise bad_param(f"{name} cannot be empty")
        return ""
    return str(value).strip()


def integer(params: Mapping[str, Any], name: str, bounds: tuple[int, int] | None = None) -> int:
    raw = text(params, name)
    try:
        value = int(raw)
    except ValueError:
        raise bad_param(f"{name} must be an integer")
    if bounds is not None and not bounds[0] <= value <= bounds[1]:
        raise bad_param(f"{name} out of range ({bounds[0]}-{bounds[1]})")
    return value


def choice(params: Mapping[str, Any], name: str, allowed: tuple[int, ...]) -> int:
    raw = text(params, name)
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value not in allowed:
        raise bad_param(f"{name} error, allowed values: {'/'.join(str(a) for a in allowed)}")
    return value


def sn_list(raw: Any, name: str, limit: int) -> list[str]:
    """A comma-separated string (spaces tolerated) or a JSON list; at least 1, at most `limit`."""
    if raw is None:
        raise bad_param(f"{name} cannot be empty")
    items = raw if isinstance(raw, list) else str(raw).split(",")
    sns = [str(item).strip() for item in items if str(item).strip()]
    if not sns:
        raise bad_param(f"{name} cannot be empty")
    if len(sns) > limit:
        raise bad_param(f"The number of {name} cannot exceed {limit}")
    return sns


def id_list(params: Mapping[str, Any]) -> list[str]:
    """Batch deletes: `ids` (the example) or `id` (the table), comma-separated."""
    raw = params.get("ids") if params.get("ids") not in (None, "") else params.get("id")
    ids = [item.strip() for item in str(raw or "").split(",") if item.strip()]
    if not ids:
        raise bad_param("ids cannot be empty")
    if not all(item.isdigit() for item in ids):
        raise bad_param("ids must be numeric ids separated by comma")
    return ids


def one_id(params: Mapping[str, Any], name: str) -> str:
    value = text(params, name)
    if not value.isdigit():
        raise bad_param(f"{name} must be a numeric id")
    return value


def page(params: Mapping[str, Any], cap: int) -> tuple[int, int]:
    """(current 1-based, size capped at `cap`)."""
    current = integer(params, "current", (1, 10**9))
    size = integer(params, "size", (1, 10**9))
    return current, min(size, cap)


def control(params: Mapping[str, Any]) -> dict[str, int]:
    """Validated control fields (ints, vendor names; `systemSwitch` spelling)."""
    out: dict[str, int] = {"superType": choice(params, "superType", (0, 1, 2))}
    super_type = out["superType"]

    def take(name: str, bounds: tuple[int, int]) -> None:
        out[name] = integer(params, name, bounds)

    def pick(name: str, allowed: tuple[int, ...]) -> None:
        out[name] = choice(params, name, allowed)

    if super_type == 1:
        pick("systemSwitch", (0, 1))
        return out
    if super_type == 0:
        pick("mode", (0, 1, 2, 3))
        mode = out["mode"]
        if mode == 1:
            take("activePower", SIGNED)
            take("reactivePower", SIGNED)
            pick("setType", (1,))
            take("proidTime", (1, U16))
        elif mode == 2:
            pick("setType", (1, 2))
            take("targetEnergy", (0, 10**7))
            take("chargerPower", SIGNED)
        elif mode == 3:
            pick("setType", (1, 2))
            take("targetSoc", SOC)
            take("chargerPower", SIGNED)
        take("timeout", UNSIGNED)
        return out
    pick("mode", (0, 1, 2, 3, 10))
    mode = out["mode"]
    if mode == 0:
        pick("chargeFromGridEN", (0, 1))
    if mode in (0, 1, 2):
        take("minSoc", SOC)
        take("chargeFromGridUpperSoC", SOC)
        if out["chargeFromGridUpperSoC"] < out["minSoc"]:
            raise bad_param("chargeFromGridUpperSoC must not be lower than minSoc")
    elif mode == 3:
        pick("manualMode", (0, 1, 2))
    elif mode == 10:
        _windows(params, out)
    return out


def _windows(params: Mapping[str, Any], out: dict[str, int]) -> None:
    for name in PERIOD1:
        out[name] = integer(params, name, (0, 23) if name.endswith("Hour") else (0, 59))
    p2 = params.get("p2TimeSetEnable")
    out["p2TimeSetEnable"] = 0 if p2 in (None, "") else choice(params, "p2TimeSetEnable", (0, 1))
    if out["p2TimeSetEnable"]:
        for name in PERIOD2:
            out[name] = integer(params, name, (0, 23) if name.endswith("Hour") else (0, 59))


def pile_mode(params: Mapping[str, Any]) -> int:
    """pileCmd: rwType 2 (write), cmdType 1 (export control), cmdValue 0-3."""
    choice(params, "rwType", (2,))
    choice(params, "cmdType", (1,))
    return choice(params, "cmdValue", (0, 1, 2, 3))


def callback_url(params: Mapping[str, Any]) -> str:
    url = text(params, "callbackUrl")
    if not url.startswith(("http://", "https://")):
        raise ApiFailure("callbackUrl must be an http(s) URL")
    return url
