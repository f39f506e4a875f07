"""Forms of the schedules pages: a schedule, and the device-side charge/discharge windows.

They validate and convert: a target of the chosen account (another organization's group or SN is an
error), actions checked with solax.control, times, days and a timezone; the views assign."""

from __future__ import annotations

import json
import re
import uuid
import zoneinfo
from datetime import date, datetime, time
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone

from fleet.commands.actions import CommandError, build_action
from fleet.commands.targets import Target, resolve_target
from fleet.models import Group, Organization, SavedSelection, SolaxAccount, TargetKind

WEEKDAY_CHOICES = [(str(i), name) for i, name in enumerate(
    ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"))]
_SPLIT = re.compile(r"[\s,;]+")  # as the command form: commas, spaces or new lines
REPEAT_WEEKLY, REPEAT_ONCE = "weekly", "once"
TIME_WIDGET = forms.TimeInput(attrs={"type": "time"}, format="%H:%M")
DATE_WIDGET = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


def _errors_text(errors: dict[str, str]) -> str:
    return "; ".join(f"{name}: {problem}" for name, problem in errors.items())


# A schedule reaches a group, a selection of inverters or chargers (one inverter is a selection of one).
SCHEDULE_TARGETS = (TargetKind.GROUP, TargetKind.GROUPS, TargetKind.FLEET, TargetKind.SAVED, TargetKind.SELECTION,
                    TargetKind.CHARGERS)


class TargetForm(forms.Form):
    """The account and the devices: a group, a selection of inverter SNs, or EV charger SNs."""

    target_kinds: list[tuple[str, str]] = [(k.value, k.label) for k in SCHEDULE_TARGETS]

    account = forms.ModelChoiceField(queryset=SolaxAccount.objects.none(), to_field_name="code",
                                     empty_label=None)
    target_kind = forms.ChoiceField(label="Target", choices=[(k.value, k.label) for k in SCHEDULE_TARGETS])
    group = forms.ChoiceField(required=False, choices=[])
    groups = forms.MultipleChoiceField(required=False, choices=[], label="Groups (for several groups)",
                                       widget=forms.SelectMultiple(attrs={"size": 5}))
    selection = forms.ChoiceField(required=False, choices=[], label="Saved selection")
    sns = forms.CharField(label="SNs", required=False, widget=forms.Textarea(attrs={"rows": 2}),
                          help_text="Inverter or charger SNs, separated by spaces, commas or new lines.")

    def __init__(self, *args: Any, organization: Organization, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.organization = organization
        accounts = organization.accounts.order_by("name")
        account_field: Any = self.fields["account"]
        account_field.queryset = accounts
        kind_field: Any = self.fields["target_kind"]
        kind_field.choices = self.target_kinds
        groups = Group.objects.filter(account__organization=organization, removed=False).select_related("account")
        several = accounts.count() > 1
        group_field: Any = self.fields["group"]
        group_field.choices = [("", "—")] + [
            (str(g.code), f"{g.account.name} · {g.name}" if several else g.name) for g in groups]
        groups_field: Any = self.fields["groups"]
        groups_field.choices = group_field.choices[1:]
        selections = SavedSelection.objects.filter(account__organization=organization).select_related("account")
        selection_field: Any = self.fields["selection"]
        selection_field.choices = [("", "—")] + [
            (str(s.code), f"{s.account.name} · {s.name}" if several else s.name) for s in selections]

    def clean_target(self, cleaned: dict[str, Any]) -> None:
        """Put the target's ``group_obj`` (a Group or None) and ``sns_list`` in ``cleaned``, resolved
        by the command service's one resolver (a group may be empty today: it is read at each edge)."""
        account: SolaxAccount | None = cleaned.get("account")
        kind = cleaned.get("target_kind")
        if account is None or kind is None:
            return
        group = selection = None
        groups: tuple[Group, ...] = ()
        if kind == TargetKind.GROUP:
            code = cleaned.get("group")
            group = Group.objects.filter(account=account, code=str(code)).first() if _is_uuid(code) else None
        elif kind == TargetKind.GROUPS:
            codes = [str(c) for c in cleaned.get("groups") or [] if _is_uuid(c)]
            groups = tuple(Group.objects.filter(account=account, code__in=codes, removed=False))
            if not groups or len(groups) != len(codes):
                self.add_error("groups", "Choose one or more groups of this account.")
                return
        elif kind == TargetKind.SAVED:
            code = cleaned.get("selection")
            selection = (SavedSelection.objects.filter(account=account, code=str(code)).first()
                         if _is_uuid(code) else None)
            if selection is None:
                self.add_error("selection", "Choose a saved selection of this account.")
                return
        cleaned["group_obj"], cleaned["sns_list"] = group, []
        cleaned["groups_objs"], cleaned["selection_obj"] = groups, selection
        target = Target(kind=kind, group=group, sns=tuple(_split_sns(cleaned.get("sns") or "")), groups=groups,
                        selection=selection)
        try:
            resolved = resolve_target(account, target, require_devices=False)
        except CommandError as exc:
            for name, problem in exc.errors.items():
                self.add_error("group" if name == "group" else "sns", _sentence(problem))
            return
        if kind in (TargetKind.SELECTION, TargetKind.CHARGERS, TargetKind.INVERTER):
            cleaned["sns_list"] = resolved.sns


def _split_sns(raw: str) -> list[str]:
    return [sn for sn in _SPLIT.split(raw) if sn]


def _is_uuid(value: Any) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


#: A custom action is a handful of parameters; anything longer is not one.
ACTION_MAX_CHARS = 1000


def clean_action(raw: str, kind: str | None, label: str) -> dict[str, int]:
    """Return an action as a dict of ints, checked for the target kind by the command service's one
    validation (``build_action``); raises ValidationError."""
    try:
        action = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
        raise ValidationError(f"{label} is not JSON, for example {{\"superType\": 2, \"mode\": 3, \"manualMode\": 1}}.")
    if not isinstance(action, dict) or not action:
        raise ValidationError(f"{label} must be an object of parameters.")
    try:
        built = build_action(kind or TargetKind.GROUP, action)
    except CommandError as exc:
        if kind == TargetKind.CHARGERS:
            raise ValidationError(f"{label} for chargers is {{\"chargerMode\": 0-3}} (0 stop, 1 fast, 2 eco, 3 green).")
        if "chargerMode" in action:
            raise ValidationError(f"{label}: chargerMode is for EV chargers; inverters take superType and mode.")
        raise ValidationError(f"{label}: {_errors_text(exc.errors)}.")
    return {name: int(value) for name, value in built.params.items()}


# The actions operators schedule every day, so that nobody has to write parameters by hand. Work
# modes carry the documented minimum SoC of 10 % and no grid charging; anything else is a custom action.
ACTION_PRESETS: dict[str, tuple[str, dict[str, int]]] = {
    "forced_charge": ("Forced charge", {"superType": 2, "mode": 3, "manualMode": 1}),
    "forced_discharge": ("Forced discharge", {"superType": 2, "mode": 3, "manualMode": 2}),
    "manual_stop": ("Stop charging and discharging", {"superType": 2, "mode": 3, "manualMode": 0}),
    "self_use": ("Self use (min SoC 10 %, no grid charging)",
                 {"superType": 2, "mode": 0, "minSoc": 10, "chargeFromGridEN": 0, "chargeFromGridUpperSoC": 100}),
    "feed_in": ("Feed-in priority (min SoC 10 %)",
                {"superType": 2, "mode": 1, "minSoc": 10, "chargeFromGridUpperSoC": 100}),
    "backup": ("Backup (min SoC 10 %)", {"superType": 2, "mode": 2, "minSoc": 10, "chargeFromGridUpperSoC": 100}),
    "system_on": ("System on", {"superType": 1, "systemSwitch": 1}),
    "system_off": ("System off", {"superType": 1, "systemSwitch": 0}),
    "ev_stop": ("EV chargers: STOP", {"chargerMode": 0}),
    "ev_fast": ("EV chargers: FAST", {"chargerMode": 1}),
    "ev_eco": ("EV chargers: ECO", {"chargerMode": 2}),
    "ev_green": ("EV chargers: GREEN", {"chargerMode": 3}),
}
PRESET_CHOICES = [("", "Custom (parameters below)")] + [(key, label) for key, (label, _) in ACTION_PRESETS.items()]


class ScheduleForm(TargetForm):
    name = forms.CharField(max_length=100)
    start_preset = forms.ChoiceField(label="Start action", choices=PRESET_CHOICES, required=False)
    start_action = forms.CharField(label="Custom start action", required=False, max_length=ACTION_MAX_CHARS,
                                   widget=forms.Textarea(attrs={"rows": 2}),
                                   help_text='Only for a custom action, as for commands: e.g. {"superType": 2, '
                                             '"mode": 3, "manualMode": 1}; chargers {"chargerMode": 3}.')
    end_preset = forms.ChoiceField(label="End action", choices=PRESET_CHOICES, required=False,
                                   help_text="Sent when the window closes, e.g. back to self use.")
    end_action = forms.CharField(label="Custom end action", required=False, max_length=ACTION_MAX_CHARS,
                                 widget=forms.Textarea(attrs={"rows": 2}))
    start_time = forms.TimeField(widget=TIME_WIDGET)
    end_time = forms.TimeField(widget=TIME_WIDGET, help_text="Not later than the start: the window ends the next day.")
    repeat = forms.ChoiceField(label="When", required=False, widget=forms.RadioSelect, initial=REPEAT_WEEKLY,
                               choices=[(REPEAT_WEEKLY, "Every week, on the weekdays below"),
                                        (REPEAT_ONCE, "Once, on the date below")])
    date = forms.DateField(label="One date", required=False, widget=DATE_WIDGET,
                           help_text="For a one-off window.")
    weekdays = forms.MultipleChoiceField(choices=WEEKDAY_CHOICES, required=False,
                                         widget=forms.CheckboxSelectMultiple)
    timezone = forms.CharField(max_length=64, required=False, help_text="Empty: the account's timezone.")
    valid_from = forms.DateField(required=False, widget=DATE_WIDGET)
    valid_until = forms.DateField(required=False, widget=DATE_WIDGET)
    enabled = forms.BooleanField(required=False, initial=True)

    field_order = ["name", "account", "target_kind", "group", "sns", "start_preset", "start_action", "start_time",
                   "end_preset", "end_action", "end_time", "repeat", "date", "weekdays", "timezone", "valid_from",
                   "valid_until", "enabled"]

    def __init__(self, *args: Any, now: datetime | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.now = now or timezone.now()

    def clean_timezone(self) -> str:
        value: str = self.cleaned_data["timezone"].strip()
        if value:
            try:
                zoneinfo.ZoneInfo(value)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                raise ValidationError(f"{value!r} is not a known timezone (for example Europe/Berlin).")
        return value

    def clean_weekdays(self) -> list[int]:
        return sorted(int(d) for d in self.cleaned_data["weekdays"])

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        self.clean_target(cleaned)
        kind = cleaned.get("target_kind")
        for edge, label in (("start", "Start action"), ("end", "End action")):
            name, preset = f"{edge}_action", cleaned.get(f"{edge}_preset")
            raw = json.dumps(ACTION_PRESETS[preset][1]) if preset else (cleaned.get(name) or "").strip()
            if not raw:
                self.add_error(f"{edge}_preset", f"Choose the {label.lower()}, or write a custom one.")
                continue
            try:
                cleaned[name] = clean_action(raw, kind, label)
            except ValidationError as exc:
                self.add_error(f"{edge}_preset" if preset else name, exc)
        start, end = cleaned.get("start_time"), cleaned.get("end_time")
        if start is not None and end is not None and start.replace(second=0) == end.replace(second=0):
            self.add_error("end_time", "The end equals the start: a window needs a length.")
        account: SolaxAccount | None = cleaned.get("account")
        if account is not None and "timezone" in cleaned:
            cleaned["timezone"] = cleaned["timezone"] or account.timezone
        self._clean_days(cleaned, start)
        return cleaned

    def _clean_days(self, cleaned: dict[str, Any], start: time | None) -> None:
        # "When" decides which of the two counts: the other is ignored (the weekdays stay ticked by default)
        repeat = cleaned.get("repeat")
        if repeat == REPEAT_ONCE:
            cleaned["weekdays"] = []
            if cleaned.get("date") is None and "date" not in self.errors:
                self.add_error("date", "Choose the date of this one-off window.")
        elif repeat == REPEAT_WEEKLY:
            cleaned["date"] = None
        one_date: date | None = cleaned.get("date")
        weekdays = cleaned.get("weekdays")
        if one_date is None and weekdays == [] and repeat != REPEAT_ONCE:
            self.add_error("weekdays", "Choose at least one weekday, or one date.")
        if one_date is not None and weekdays:
            self.add_error("weekdays", "Choose either one date or weekdays, not both.")
        tz_name = cleaned.get("timezone")
        if one_date is not None and tz_name:
            local_now = self.now.astimezone(zoneinfo.ZoneInfo(tz_name))
            if one_date < local_now.date():
                self.add_error("date", "This date is in the past.")
            elif one_date == local_now.date() and start is not None and start <= local_now.time():
                self.add_error("date", "This window's start has already passed today.")
        valid_from, valid_until = cleaned.get("valid_from"), cleaned.get("valid_until")
        if valid_from and valid_until and valid_until < valid_from:
            self.add_error("valid_until", "Ends before it starts.")


class DeviceWindowsForm(TargetForm):
    """superType 2, mode 10: the inverter charges and discharges in these windows by itself, every day."""

    target_kinds = [(TargetKind.GROUP.value, "a group"),
                    (TargetKind.SELECTION.value, "a selection of inverters")]

    charge_start_1 = forms.TimeField(label="Charge from", widget=TIME_WIDGET)
    charge_end_1 = forms.TimeField(label="Charge until", widget=TIME_WIDGET)
    discharge_start_1 = forms.TimeField(label="Discharge from", widget=TIME_WIDGET)
    discharge_end_1 = forms.TimeField(label="Discharge until", widget=TIME_WIDGET)
    period_2 = forms.BooleanField(label="Second period", required=False)
    charge_start_2 = forms.TimeField(label="Period 2 charge from", required=False, widget=TIME_WIDGET)
    charge_end_2 = forms.TimeField(label="Period 2 charge until", required=False, widget=TIME_WIDGET)
    discharge_start_2 = forms.TimeField(label="Period 2 discharge from", required=False, widget=TIME_WIDGET)
    discharge_end_2 = forms.TimeField(label="Period 2 discharge until", required=False, widget=TIME_WIDGET)

    # form field -> the vendor's stem (its spellings, "discharger" included)
    STEMS = {
        "charge_start_1": "chargeStartTime1", "charge_end_1": "chargeEndTime1",
        "discharge_start_1": "dischargeStartTime1", "discharge_end_1": "dischargerEndTime1",
        "charge_start_2": "chargeStartTime2", "charge_end_2": "chargeEndTime2",
        "discharge_start_2": "dischargeStartTime2", "discharge_end_2": "dischargeEndTime2",
    }

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        self.clean_target(cleaned)
        period_2 = bool(cleaned.get("period_2"))
        names = [n for n in self.STEMS if n.endswith("_1") or period_2]
        if period_2:
            for name in names:
                if name.endswith("_2") and cleaned.get(name) is None and name not in self.errors:
                    self.add_error(name, "Required for the second period.")
        if any(name in self.errors for name in names):
            return cleaned
        for start in (n for n in names if "_start_" in n):
            end = start.replace("_start_", "_end_")
            if cleaned[start] == cleaned[end]:
                self.add_error(end, "This window ends when it starts: it would do nothing. Choose a later end.")
        if any(name in self.errors for name in names):
            return cleaned
        fields: dict[str, int] = {"superType": 2, "mode": 10, "p2TimeSetEnable": int(period_2)}
        for name in names:
            at: time = cleaned[name]
            fields[f"{self.STEMS[name]}Hour"] = at.hour
            fields[f"{self.STEMS[name]}Minute"] = at.minute
        try:
            built = build_action(cleaned.get("target_kind") or TargetKind.GROUP, fields)
        except CommandError as exc:
            raise ValidationError(_errors_text(exc.errors))
        cleaned["action"] = {name: int(value) for name, value in built.params.items()}
        return cleaned
