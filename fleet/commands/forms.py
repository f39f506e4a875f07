"""The new-command form: a target and an action, validated by solax.control and fleet.commands."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from django import forms
from django.utils import timezone

from fleet.commands.actions import CommandError
from fleet.commands.rollout import DEVICES, PERCENT, RolloutSpec
from fleet.commands.service import CostPlan, plan_command, retry_target, stored_action
from fleet.commands.targets import Target
from fleet.models import Command, CommandState, Group, SavedSelection, SolaxAccount, TargetKind
from solax.control import FIELDS, MODES, SUPER_TYPES, PileMode, required_fields
from solax.errors import ControlValidationError

_SPLIT = re.compile(r"[\s,;]+")
SN_KINDS = (TargetKind.INVERTER, TargetKind.SELECTION, TargetKind.CHARGERS)


def _as_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def shown_fields(super_type: int | None, mode: int | None, p2: bool) -> list[str]:
    """Return the vendor names of the fields a superType/mode shows ([] while it is incomplete)."""
    if super_type is None or (super_type != 1 and mode is None):
        return []
    try:
        return required_fields(super_type, mode, p2=p2)
    except ControlValidationError:
        return []


class CommandForm(forms.Form):
    target = forms.ChoiceField(choices=TargetKind.choices, initial=TargetKind.SELECTION)
    sns = forms.CharField(required=False, label="SNs", widget=forms.Textarea(attrs={"rows": 3}),
                          help_text="Inverter or charger SNs, separated by commas, spaces or new lines.")
    group = forms.ModelChoiceField(queryset=Group.objects.none(), required=False, to_field_name="code",
                                   empty_label="choose a group")
    groups = forms.ModelMultipleChoiceField(queryset=Group.objects.none(), required=False, to_field_name="code",
                                            widget=forms.SelectMultiple(attrs={"size": 6}))
    selection = forms.ModelChoiceField(queryset=SavedSelection.objects.none(), required=False,
                                       to_field_name="code", empty_label="choose a saved selection")
    start_within = forms.IntegerField(
        required=False, min_value=1, max_value=24 * 60, label="Must start within (minutes)",
        help_text="Optional. Batches still unsent by then are cancelled, never sent late.")
    superType = forms.TypedChoiceField(choices=[("", "—")] + list(SUPER_TYPES.items()), coerce=int,
                                       required=False, empty_value=None, label="Command type")
    mode = forms.TypedChoiceField(choices=[("", "—")] + sorted({(m, lbl) for ms in MODES.values()
                                                                for m, lbl in ms.items()}),
                                  coerce=int, required=False, empty_value=None)
    chargerMode = forms.TypedChoiceField(choices=[("", "—")] + [(m.value, m.name.title()) for m in PileMode],
                                         coerce=int, required=False, empty_value=None, label="Charger mode")
    retry_of = forms.UUIDField(required=False, widget=forms.HiddenInput)
    rollout = forms.BooleanField(required=False, label="Staged rollout: send to a canary first")
    canary_size = forms.IntegerField(required=False, min_value=1, max_value=1_000_000, label="Canary",
                                     help_text="A share (1 to 99 %) or a number of devices, sent first.")
    canary_unit = forms.ChoiceField(choices=[(PERCENT, "% of the devices"), (DEVICES, "devices")], required=False,
                                    initial=PERCENT, label="Canary unit")
    failure_threshold = forms.IntegerField(required=False, min_value=1, max_value=100, initial=10,
                                           label="Halt at failed canary devices (%)",
                                           help_text="The rest is sent only while fewer fail.")
    rollout_continue = forms.ChoiceField(choices=[("auto", "automatically"), ("click", "on an operator's click")],
                                         required=False, initial="auto", label="Then continue",
                                         widget=forms.RadioSelect)

    def __init__(self, *args: Any, account: SolaxAccount, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.account = account
        groups = Group.objects.filter(account=account, removed=False)
        self.fields["group"].queryset = groups  # type: ignore[attr-defined]
        self.fields["groups"].queryset = groups  # type: ignore[attr-defined]
        self.fields["selection"].queryset = SavedSelection.objects.filter(account=account)  # type: ignore[attr-defined]
        for name, spec in FIELDS.items():
            if name == "mode":
                continue
            label = f"{spec.label}" + (f" ({spec.unit})" if spec.unit else "")
            if spec.choices:
                self.fields[name] = forms.TypedChoiceField(
                    choices=[("", "—")] + list(spec.choices.items()), coerce=int, required=False,
                    empty_value=None, label=label)
            else:
                self.fields[name] = forms.IntegerField(
                    required=False, min_value=spec.min, max_value=spec.max, label=label,
                    help_text=f"{spec.min} to {spec.max}{' ' + spec.unit if spec.unit else ''}")
        self.plan: CostPlan | None = None
        self.command_target: Target | None = None
        self.action: dict[str, Any] = {}
        self.retry_command: Command | None = None
        self.start_by: datetime | None = None
        self.staged: RolloutSpec | None = None

    # which fields apply -------------------------------------------------------------------------
    def _raw(self, name: str) -> Any:
        source = self.data if self.is_bound else self.initial
        return source.get(name)

    @property
    def is_charger(self) -> bool:
        return self._raw("target") == TargetKind.CHARGERS

    def action_field_names(self) -> list[str]:
        if self.is_charger:
            return ["chargerMode"]
        super_type = _as_int(self._raw("superType"))
        names = ["superType"]
        if super_type in MODES:
            names.append("mode")
        p2 = _as_int(self._raw("p2TimeSetEnable")) == 1
        return names + shown_fields(super_type, _as_int(self._raw("mode")), p2)

    def action_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.action_field_names()]

    @property
    def mode_choices_for_current(self) -> list[tuple[Any, str]]:
        """The modes of the chosen superType, for the mode select."""
        super_type = _as_int(self._raw("superType"))
        return [("", "—")] + list(MODES.get(super_type if super_type is not None else -1, {}).items())

    # validation ---------------------------------------------------------------------------------
    def clean_sns(self) -> list[str]:
        text = self.cleaned_data.get("sns") or ""
        return [sn for sn in _SPLIT.split(text) if sn]

    def clean_retry_of(self) -> Command | None:
        code = self.cleaned_data.get("retry_of")
        if not code:
            return None
        command = Command.objects.filter(account=self.account, code=code).first()
        if command is None:
            raise forms.ValidationError("not a command of this account")
        return command

    def clean(self) -> dict[str, Any]:
        """Check the target and the action together, so that every bad field is reported at once."""
        data = super().clean() or {}
        if "target" not in data:
            return data
        kind = data["target"]
        target = Target(kind, group=data.get("group"), sns=tuple(data.get("sns") or ()),
                        groups=tuple(data.get("groups") or ()), selection=data.get("selection"))
        problems: dict[str, str] = {}
        if kind == TargetKind.GROUP and target.group is None:
            problems["group"] = "choose a group"
        elif kind == TargetKind.GROUPS and not target.groups:
            problems["groups"] = "choose one or more groups"
        elif kind == TargetKind.SAVED and target.selection is None:
            problems["selection"] = "choose a saved selection"
        elif kind in SN_KINDS and not target.sns:
            problems["sns"] = "enter at least one SN"
        action = self._action(data, problems)
        staged = self._staged(data, problems)
        minutes = data.get("start_within")
        start_by = timezone.now() + timedelta(minutes=minutes) if minutes else None
        if not problems.keys() & {"group", "groups", "selection", "sns", "superType", "mode", "canary_size",
                                  "failure_threshold"}:
            try:
                self.plan = plan_command(self.account, target, action, staged=staged, start_by=start_by)
            except CommandError as exc:
                problems.update(exc.errors)
        for name, message in problems.items():
            if name in self.errors:
                continue  # already said, e.g. "Ensure this value is less than or equal to 100."
            self.add_error(name if name in self.fields else None,
                           message if name in self.fields else f"{name}: {message}")
        if self.errors:
            self.plan = None
            return data
        self.command_target = target
        self.action = action
        self.retry_command = data.get("retry_of")
        self.start_by = start_by
        self.staged = staged
        return data

    def _staged(self, data: dict[str, Any], problems: dict[str, str]) -> RolloutSpec | None:
        """The staged rollout asked for, or None; a missing size or threshold is a form error."""
        if not data.get("rollout"):
            return None
        size, threshold = data.get("canary_size"), data.get("failure_threshold")
        if size is None and "canary_size" not in self.errors:
            problems["canary_size"] = "how many devices (or what share) go first"
        if threshold is None and "failure_threshold" not in self.errors:
            problems["failure_threshold"] = "at what share of failed canary devices to halt"
        if size is None or threshold is None:
            return None
        return RolloutSpec(size=size, unit=data.get("canary_unit") or PERCENT, threshold=threshold,
                           auto=data.get("rollout_continue") != "click")

    def _action(self, data: dict[str, Any], problems: dict[str, str]) -> dict[str, Any]:
        """Return the action of the chosen kind from the fields that apply to it."""
        if data["target"] == TargetKind.CHARGERS:
            return {"chargerMode": data.get("chargerMode")}
        super_type = data.get("superType")
        if super_type is None:
            problems["superType"] = "choose a command type"
            return {}
        action: dict[str, Any] = {"superType": super_type}
        mode = data.get("mode")
        if super_type != 1:
            if mode is None:
                problems["mode"] = "choose a mode"
                return action
            if mode not in MODES[super_type]:
                problems["mode"] = f"not a mode of {SUPER_TYPES[super_type].lower()}"
                return action
            action["mode"] = mode
        p2 = data.get("p2TimeSetEnable") == 1
        for name in shown_fields(super_type, mode, p2):
            if data.get(name) is not None:
                action[name] = data[name]
            elif name not in self.errors:
                problems[name] = "required"
        return action


def initial_from_query(query: Any, account: SolaxAccount) -> dict[str, Any]:
    """Return the form's initial values from ``?sn=..&sn=..``, ``?group=<code>``, ``?charger=..`` or
    ``?retry_of=<code>`` (the failed devices of that command, with its action)."""
    initial: dict[str, Any] = {key: query.get(key) for key in query if key not in ("sn", "charger")}
    if query.getlist("charger"):
        initial.update(target=TargetKind.CHARGERS, sns="\n".join(query.getlist("charger")))
    elif query.getlist("sn"):
        sns = query.getlist("sn")
        initial.update(target=TargetKind.INVERTER if len(sns) == 1 else TargetKind.SELECTION, sns="\n".join(sns))
    elif query.get("group"):
        initial["target"] = TargetKind.GROUP
    retry = query.get("retry_of")
    if retry and re.fullmatch(r"[0-9a-fA-F-]{32,36}", retry):
        command = Command.objects.filter(account=account, code=retry).first()
        if command is not None and command.state != CommandState.QUEUED:
            try:
                target = retry_target(command)
            except CommandError:
                return initial
            initial.update(target=target.kind, sns="\n".join(target.sns), **stored_action(command))
    return initial
