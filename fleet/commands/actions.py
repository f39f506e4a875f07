"""What a command does: one validation of an action for a kind of target, and its label.

Every road that creates a command (the new-command form, a schedule's edge, a retry, the API) builds
its action here, and every page names an action through ``describe_action`` or ``Action.label``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fleet.models import CommandKind, TargetKind
from solax.control import MODES, SUPER_TYPES, PileMode, build_control_params
from solax.errors import ControlValidationError

PILE_MODE_LABELS = {0: "Stop", 1: "Fast", 2: "Eco", 3: "Green"}
_MANUAL_LABELS = {0: "Manual stop", 1: "Forced charge", 2: "Forced discharge"}


class CommandError(Exception):
    """A command that cannot be sent; ``errors`` maps each bad field to its problem."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


@dataclass(frozen=True)
class Action:
    kind: str  # CommandKind
    params: dict[str, Any]  # the vendor's control parameters (as strings), or {"chargerMode": n}
    label: str


def build_action(target_kind: str, action: Mapping[str, Any]) -> Action:
    """Return the validated action for a kind of target; raise CommandError naming every bad field."""
    if target_kind == TargetKind.CHARGERS:
        mode = action.get("chargerMode")
        if isinstance(mode, bool) or not isinstance(mode, int) or mode not in PILE_MODE_LABELS:
            raise CommandError({"chargerMode": "choose Stop, Fast, Eco or Green"})
        extra = sorted(set(action) - {"chargerMode"})
        if extra:
            raise CommandError({"chargerMode": f"EV chargers take only chargerMode, not {', '.join(extra)}"})
        return Action(CommandKind.CHARGER_MODE, {"chargerMode": mode}, f"EV mode {PILE_MODE_LABELS[mode]}")
    if "chargerMode" in action:
        raise CommandError({"chargerMode": "chargerMode is for EV chargers; inverters take superType and mode"})
    spec = dict(action)
    super_type = spec.pop("superType", None)
    try:
        params = build_control_params(super_type, **{str(k): v for k, v in spec.items()})
    except ControlValidationError as exc:
        raise CommandError(exc.errors) from None
    return Action(CommandKind.INVERTER_CONTROL, params, action_label(params))


def action_label(params: Mapping[str, Any]) -> str:
    """Return a short human description of validated control parameters."""
    st = int(params["superType"])
    if st == 1:
        return "System on" if str(params.get("systemSwitch")) == "1" else "System off"
    mode = int(params["mode"])
    name = MODES[st][mode]
    if st == 2 and mode == 3:
        name = _MANUAL_LABELS[int(params["manualMode"])]
    if "activePower" in params:
        name += f" {params['activePower']} W"
    elif "targetSoc" in params:
        name += f" to {params['targetSoc']} %"
    elif "targetEnergy" in params:
        name += f" {params['targetEnergy']} Wh"
    return name if st == 2 else f"{SUPER_TYPES[st]}: {name}"


def describe_action(action: Mapping[str, Any]) -> str:
    """Return the label of a stored action (a schedule's edge, a command), or what is wrong with it."""
    if "chargerMode" in action:
        mode = action["chargerMode"]
        return f"EV chargers: {PILE_MODE_LABELS.get(mode, mode)}" if mode in [m.value for m in PileMode] else "?"
    try:
        return build_action(TargetKind.SELECTION, action).label
    except CommandError as exc:
        return f"invalid action ({exc})"
