"""Control-command specs: which parameters each superType/mode takes, their ranges and vendor names.

Source: VPP control API sections 1.1-1.3 and solax-api/NOTES.md. Parameter names are the vendor's,
misspellings included (``proidTime``, ``dischargerEndTime1Hour`` next to ``dischargeEndTime2Hour``).
Decisions where the document contradicts itself: ``systemSwitch`` (the examples' spelling) is sent;
``activePower`` is required for superType 0 mode 1 on single, batch and group control alike;
superType 2 accepts modes 0-3 and 10; ``p2TimeSetEnable`` is part of the mode-10 block and the
period-2 fields are sent only with ``p2TimeSetEnable=1``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum

from solax.errors import ControlValidationError, RequestValidationError

__all__ = [
    "FIELDS",
    "MAX_SNS_PER_CALL",
    "MODES",
    "SUPER_TYPES",
    "ControlValidationError",
    "FieldSpec",
    "PileMode",
    "build_control_params",
    "clean_id",
    "clean_ids",
    "clean_sn",
    "clean_sns",
    "control_params_from_spec",
    "required_fields",
]

#: Most SNs one pileCmd or device-binding call takes (EV doc 3.1.4, VPP doc section 5).
MAX_SNS_PER_CALL = 100

POWER_LIMIT = 65535  # "up to 65535" W / Var; the sign gives the direction (positive charges)
INT32_MAX = 2**31 - 1


class PileMode(IntEnum):
    """EV charger work mode, sent as pileCmd ``cmdValue``."""

    STOP = 0
    FAST = 1
    ECO = 2
    GREEN = 3


@dataclass(frozen=True)
class FieldSpec:
    """One control parameter: vendor ``name``, form ``label``, ``unit`` and inclusive ``min``/``max``."""

    name: str
    label: str
    unit: str
    min: int
    max: int
    choices: Mapping[int, str] = field(default_factory=dict)


SUPER_TYPES: dict[int, str] = {0: "Integrated instruction", 1: "System on/off", 2: "Mode control"}

MODES: dict[int, dict[int, str]] = {
    0: {0: "Forbid", 1: "Power control", 2: "Electric quantity control", 3: "SoC target control"},
    2: {0: "Self use", 1: "Feed-in priority", 2: "Backup", 3: "Manual", 10: "Charge/discharge time setting"},
}


def _time_fields(period: int) -> list[FieldSpec]:
    """Return the eight hour/minute fields of a mode-10 period, with the vendor's exact spellings."""
    discharge_end = "dischargerEndTime1" if period == 1 else "dischargeEndTime2"  # (sic) in period 1
    stems = [
        (f"chargeStartTime{period}", "charge start"),
        (f"chargeEndTime{period}", "charge end"),
        (f"dischargeStartTime{period}", "discharge start"),
        (discharge_end, "discharge end"),
    ]
    specs = []
    for stem, label in stems:
        specs.append(FieldSpec(f"{stem}Hour", f"Period {period} {label} hour", "h", 0, 23))
        specs.append(FieldSpec(f"{stem}Minute", f"Period {period} {label} minute", "min", 0, 59))
    return specs


_ON_OFF = {0: "Disable", 1: "Enable"}
_SPECS = [
    FieldSpec("mode", "Mode", "", 0, 10),
    FieldSpec("systemSwitch", "System switch", "", 0, 1, {0: "Off", 1: "On"}),
    FieldSpec("activePower", "Active power (+ charge, - discharge)", "W", -POWER_LIMIT, POWER_LIMIT),
    FieldSpec("reactivePower", "Reactive power (+ charge, - discharge)", "Var", -POWER_LIMIT, POWER_LIMIT),
    FieldSpec("setType", "Set type", "", 1, 2, {1: "Target setting", 2: "Target update"}),
    FieldSpec("targetEnergy", "Energy target", "Wh", 1, INT32_MAX),
    FieldSpec("targetSoc", "SoC target", "%", 0, 100),
    FieldSpec("chargerPower", "Charge/discharge power (+/-)", "W", -POWER_LIMIT, POWER_LIMIT),
    # Durations must be positive; the document gives no maximum, we assume the 16-bit limit of the powers.
    FieldSpec("proidTime", "Power control duration", "s", 1, 65535),
    FieldSpec("timeout", "Remote-control timeout", "s", 1, 65535),
    FieldSpec("chargeFromGridEN", "Charge from grid", "", 0, 1, _ON_OFF),
    FieldSpec("minSoc", "Minimum SoC", "%", 0, 100),
    FieldSpec("chargeFromGridUpperSoC", "Grid-charge SoC cap", "%", 0, 100),
    FieldSpec("manualMode", "Manual mode", "", 0, 2, {0: "Stop", 1: "Forced charge", 2: "Forced discharge"}),
    *_time_fields(1),
    FieldSpec("p2TimeSetEnable", "Period 2", "", 0, 1, _ON_OFF),
    *_time_fields(2),
]

#: Every control parameter by vendor name (``superType`` excepted), in the order they are sent.
FIELDS: dict[str, FieldSpec] = {spec.name: spec for spec in _SPECS}

PERIOD_1 = tuple(spec.name for spec in _time_fields(1))
PERIOD_2 = tuple(spec.name for spec in _time_fields(2))
_SOC_LIMITS = ("minSoc", "chargeFromGridUpperSoC")

# Parameters each (superType, mode) takes besides superType and mode; all of them are required.
_RULES: dict[tuple[int, int | None], tuple[str, ...]] = {
    (0, 0): ("timeout",),
    (0, 1): ("activePower", "reactivePower", "setType", "proidTime", "timeout"),
    (0, 2): ("setType", "targetEnergy", "chargerPower", "timeout"),
    (0, 3): ("setType", "targetSoc", "chargerPower", "timeout"),
    (1, None): ("systemSwitch",),
    (2, 0): ("chargeFromGridEN", *_SOC_LIMITS),
    (2, 1): _SOC_LIMITS,
    (2, 2): _SOC_LIMITS,
    (2, 3): ("manualMode",),
    (2, 10): (*PERIOD_1, "p2TimeSetEnable"),
}
_UPDATE_MODES = (2, 3)  # setType 2 ("target update") exists only for these superType 0 modes
_ALIASES = {"systemSwich": "systemSwitch"}  # the table's spelling; we send the examples' one


def required_fields(super_type: int, mode: int | None = None, p2: bool = False) -> list[str]:
    """Return the vendor names a (superType, mode) needs besides superType and mode, in send order.

    ``p2`` adds the period-2 fields of superType 2 mode 10. Raises ControlValidationError for an
    unknown combination.
    """
    key = (super_type, None if super_type == 1 else mode)
    if key not in _RULES:
        field_name = "superType" if super_type not in SUPER_TYPES else "mode"
        raise ControlValidationError({field_name: f"no such superType/mode: {super_type}/{mode}"})
    names = list(_RULES[key])
    if key == (2, 10) and p2:
        names.extend(PERIOD_2)
    return names


def _as_int(value: object) -> int | None:
    """Return ``value`` as an int when it is one (or its decimal text), else None; booleans are refused."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d{1,12}\s*", value):
        return int(value)
    return None


def _check_ranges(values: Mapping[str, object], errors: dict[str, str]) -> dict[str, int]:
    """Return the known fields as ints, recording unknown names and bad or out-of-range values."""
    checked: dict[str, int] = {}
    for name, raw in values.items():
        spec = FIELDS.get(name)
        if spec is None:
            hint = f"; did you mean {_ALIASES[name]}?" if name in _ALIASES else ""
            errors[name] = f"unknown parameter{hint}"
            continue
        number = _as_int(raw)
        if number is None:
            errors[name] = f"must be an integer, got {raw!r}"
        elif not spec.min <= number <= spec.max:
            errors[name] = f"must be between {spec.min} and {spec.max}{' ' + spec.unit if spec.unit else ''}"
        else:
            checked[name] = number
    return checked


def _check_combination(
    super_type: int, values: Mapping[str, object], checked: dict[str, int], errors: dict[str, str]
) -> None:
    """Record missing, superfluous and contradictory parameters for the chosen superType and mode."""
    mode = checked.get("mode")
    if super_type == 1:
        if "mode" in values:
            errors["mode"] = "not used by superType 1 (system on/off)"
        allowed = set(_RULES[(1, None)])
    elif "mode" not in values:
        errors["mode"] = "required"
        return
    elif mode is None:
        return  # already reported as malformed
    elif mode not in MODES[super_type]:
        errors["mode"] = f"must be one of {sorted(MODES[super_type])} for superType {super_type}"
        return
    else:
        allowed = set(required_fields(super_type, mode, p2=checked.get("p2TimeSetEnable") == 1))
    for name in FIELDS:
        if name in allowed and name not in values:
            errors.setdefault(name, "required")
    where = f"superType {super_type}" + ("" if super_type == 1 else f" mode {mode}")
    for name in values:
        if name in FIELDS and name != "mode" and name not in allowed:
            reason = "only with p2TimeSetEnable=1" if name in PERIOD_2 and mode == 10 else "not used"
            errors.setdefault(name, f"{reason} for {where}")
    if super_type == 0 and checked.get("setType") == 2 and mode not in _UPDATE_MODES:
        errors.setdefault("setType", "2 (target update) is only allowed for modes 2 and 3")


def build_control_params(super_type: object, **fields: object) -> dict[str, str]:
    """Return the validated vendor parameters (``superType``, ``mode``, ... as strings) of one command.

    Accepts ints or their decimal text. Raises ControlValidationError listing every bad field at once:
    unknown names, malformed or out-of-range values, missing and superfluous parameters.
    """
    errors: dict[str, str] = {}
    fields = dict(fields)
    if "superType" in fields:
        errors["superType"] = "pass it as super_type"
        fields.pop("superType")
    st = _as_int(super_type)
    if st not in SUPER_TYPES:
        errors["superType"] = f"must be one of {sorted(SUPER_TYPES)}, got {super_type!r}"
    checked = _check_ranges(fields, errors)
    if st is not None and st in SUPER_TYPES:
        _check_combination(st, fields, checked, errors)
    if errors:
        raise ControlValidationError(errors)
    params = {"superType": str(st)}
    params.update((name, str(checked[name])) for name in FIELDS if name in checked)
    return params


def control_params_from_spec(spec: Mapping[str, object]) -> dict[str, str]:
    """Return validated parameters from a mapping that carries ``superType`` with the other fields.

    Lets the typed client methods take the output of :func:`build_control_params` (or a stored copy).
    """
    fields = dict(spec)
    if "superType" not in fields:
        raise ControlValidationError({"superType": "required"})
    super_type = fields.pop("superType")
    return build_control_params(super_type, **{str(key): value for key, value in fields.items()})


_SN = re.compile(r"[A-Za-z0-9]{1,40}")
_ID = re.compile(r"[A-Za-z0-9]{1,40}")


def clean_sn(value: object, field_name: str = "sn") -> str:
    """Return a serial / registration number stripped of spaces; raise RequestValidationError if malformed."""
    text = value.strip() if isinstance(value, str) else ""
    if not _SN.fullmatch(text):
        raise RequestValidationError({field_name: f"must be 1-40 letters or digits, got {value!r}"})
    return text


def clean_id(value: object, field_name: str = "id") -> str:
    """Return a cloud id (group, membership, command, task) as text; ints are accepted, floats are not."""
    text = str(value).strip() if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
    if not _ID.fullmatch(text):
        raise RequestValidationError({field_name: f"must be 1-40 letters or digits, got {value!r}"})
    return text


def clean_sns(
    sns: Iterable[object] | str,
    field_name: str = "sns",
    limit: int | None = None,
    error: type[RequestValidationError] = RequestValidationError,
) -> list[str]:
    """Return the SNs (a list or comma-separated text) without duplicates, first occurrence first.

    Raises ``error`` naming every malformed SN, an empty list, or more than ``limit`` distinct SNs.
    """
    return _clean_list(sns, field_name, limit, error, clean_sn)


def clean_ids(ids: Iterable[object] | str, field_name: str = "ids") -> list[str]:
    """Return cloud ids (a list or comma-separated text) without duplicates, first occurrence first."""
    return _clean_list(ids, field_name, None, RequestValidationError, clean_id)


def _clean_list(
    values: Iterable[object] | str,
    field_name: str,
    limit: int | None,
    error: type[RequestValidationError],
    clean_one: Callable[[object, str], str],
) -> list[str]:
    """Return the cleaned, de-duplicated values; raise ``error`` listing every problem with them."""
    items: list[object] = list(values.split(",")) if isinstance(values, str) else list(values)
    cleaned: dict[str, None] = {}  # a dict keeps first-seen order
    bad: list[str] = []
    for item in items:
        try:
            cleaned.setdefault(clean_one(item, field_name), None)
        except RequestValidationError:
            bad.append(repr(item))
    problems = []
    if bad:
        more = f" and {len(bad) - 20} more" if len(bad) > 20 else ""
        problems.append("malformed: " + ", ".join(bad[:20]) + more)
    elif not cleaned:
        problems.append("at least one is required")
    if limit is not None and len(cleaned) > limit:
        problems.append(f"at most {limit} per call, got {len(cleaned)}")
    if problems:
        raise error({field_name: "; ".join(problems)})
    return list(cleaned)
