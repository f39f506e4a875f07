"""Forms of the prices pages: a zone, a price file, a target's rule. They validate and convert (a
parsed day, a rule that fits its window); the views assign."""

from __future__ import annotations

import uuid
import zoneinfo
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Q

from fleet.commands.actions import CommandError
from fleet.commands.targets import Target, resolve_target
from fleet.models import Group, PriceRule, PriceSource, PriceZone, SavedSelection, SolaxAccount, TargetKind
from fleet.models.prices import RULE_TARGETS
from fleet.prices.parsing import PriceFileError, parse_a44, parse_csv

MAX_FILE_BYTES = 1_000_000
TIME_WIDGET = forms.TimeInput(attrs={"type": "time"}, format="%H:%M")
DATE_WIDGET = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class ZoneForm(forms.ModelForm):
    class Meta:
        model = PriceZone
        fields = ["name", "timezone", "currency", "eic"]
        help_texts = {"eic": "Only for the ENTSO-E fetcher, e.g. 10Y1001A1001A82H (DE-LU)."}

    def __init__(self, *args: Any, account: SolaxAccount, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.account = account
        if not self.initial.get("timezone"):
            self.initial["timezone"] = account.timezone

    def clean_timezone(self) -> str:
        value: str = self.cleaned_data["timezone"].strip()
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValidationError(f"{value!r} is not a known timezone (for example Europe/Berlin).")
        return value

    def clean_currency(self) -> str:
        value: str = self.cleaned_data["currency"].strip().upper()
        if len(value) != 3 or not value.isalpha():
            raise ValidationError("A three-letter currency code, e.g. EUR.")
        return value

    def clean_name(self) -> str:
        name: str = self.cleaned_data["name"].strip()
        taken = PriceZone.objects.filter(account=self.account, name=name).exclude(pk=self.instance.pk)
        if taken.exists():
            raise ValidationError("This account already has a zone of that name.")
        return name


class UploadForm(forms.Form):
    """A CSV (start,price[,unit]) or an ENTSO-E A44 XML of one day, parsed in the zone's timezone."""

    file = forms.FileField(help_text="CSV: a header start,price (and optionally unit), one row per interval, "
                                     "the start with its UTC offset. Or an ENTSO-E day-ahead XML (A44).")
    unit = forms.ChoiceField(choices=[("MWh", "per MWh"), ("kWh", "per kWh")], initial="MWh",
                             help_text="For a CSV without a unit column.")
    day = forms.DateField(required=False, widget=DATE_WIDGET, help_text="Optional: refuse a file of another day.")

    def __init__(self, *args: Any, zone: PriceZone, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.zone = zone

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        upload = cleaned.get("file")
        if upload is None or "unit" not in cleaned:
            return cleaned
        if upload.size > MAX_FILE_BYTES:
            self.add_error("file", f"The file is larger than {MAX_FILE_BYTES // 1000} kB.")
            return cleaned
        raw: bytes = upload.read()
        tz = zoneinfo.ZoneInfo(self.zone.timezone)
        expected: date | None = cleaned.get("day")
        try:
            if raw.lstrip().startswith(b"<"):
                cleaned["parsed"], cleaned["source"] = parse_a44(raw, tz, expected_day=expected), PriceSource.A44
            else:
                text = raw.decode("utf-8-sig")
                cleaned["parsed"] = parse_csv(text, tz, unit=cleaned["unit"], currency=self.zone.currency,
                                              expected_day=expected)
                cleaned["source"] = PriceSource.CSV
        except UnicodeDecodeError:
            self.add_error("file", "The file is neither UTF-8 text nor XML.")
        except PriceFileError as exc:
            self.add_error("file", f"Refused: {exc}.")
        else:
            parsed = cleaned["parsed"]
            if parsed.currency and parsed.currency != self.zone.currency:
                self.add_error("file", f"Refused: prices in {parsed.currency}, the zone is in {self.zone.currency}.")
        return cleaned


class RuleForm(forms.ModelForm):
    """A target (a group, several groups or a saved selection of the zone's account); charge in the
    cheapest N hours (or below a price), discharge in the dearest M (or above one), the minimum SoC,
    no export at negative prices, and the hard grid-charge cap."""

    target_kind = forms.ChoiceField(label="Target", required=False, initial=TargetKind.GROUP.value,
                                    choices=[(k.value, k.label) for k in RULE_TARGETS],
                                    help_text="Then choose it below; the fields of the other kinds are ignored.")
    group = forms.ChoiceField(choices=[], required=False, label="Group (for a group)")
    groups = forms.MultipleChoiceField(required=False, choices=[], label="Groups (for several groups)",
                                       widget=forms.CheckboxSelectMultiple)
    selection = forms.ChoiceField(required=False, choices=[], label="Saved selection (for a saved selection)")

    class Meta:
        model = PriceRule
        fields = ["charge_hours", "charge_below", "discharge_hours", "discharge_above", "charge_cap", "min_soc",
                  "no_export_negative", "window_start", "window_end"]
        labels = {
            "charge_hours": "Charge in the cheapest (hours)", "charge_below": "…or whenever below (per MWh)",
            "discharge_hours": "Discharge in the dearest (hours)", "discharge_above": "…or whenever above (per MWh)",
            "charge_cap": "Never grid-charge above (per MWh)", "min_soc": "Minimum SoC to keep (%)",
            "no_export_negative": "No export at negative prices (self use instead)",
            "window_start": "Window from", "window_end": "Window until",
        }
        help_texts = {"window_end": "00:00 is midnight at the end of the day.",
                      "charge_cap": "A hard cap: no rule charges from the grid above it."}
        widgets = {"window_start": TIME_WIDGET, "window_end": TIME_WIDGET}

    field_order = ["target_kind", "group", "groups", "selection"]

    def __init__(self, *args: Any, zone: PriceZone, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.zone = zone
        groups = Group.objects.filter(account=zone.account, removed=False).order_by("name")
        choices = [(str(g.code), g.name) for g in groups]
        group_field: Any = self.fields["group"]
        group_field.choices = [("", "—"), *choices]
        groups_field: Any = self.fields["groups"]
        groups_field.choices = choices
        selection_field: Any = self.fields["selection"]
        selection_field.choices = [("", "—")] + [
            (str(s.code), s.name) for s in SavedSelection.objects.filter(account=zone.account).order_by("name")]
        if self.instance.pk:
            self.initial["target_kind"] = self.instance.target_kind
            if self.instance.group is not None:
                self.initial["group"] = str(self.instance.group.code)
            self.initial["groups"] = [str(g.code) for g in self.instance.groups.all()]
            if self.instance.selection is not None:
                self.initial["selection"] = str(self.instance.selection.code)

    def _clean_target(self, cleaned: dict[str, Any]) -> None:
        """Put ``group_obj``, ``groups_objs`` and ``selection_obj`` in ``cleaned``: the target, resolved
        by the command service's own resolve_target in the zone's account; a device may follow one
        rule of a zone only, so a group (or selection) another rule already follows is refused."""
        kind = cleaned.get("target_kind") or TargetKind.GROUP
        cleaned["target_kind"] = kind
        account = self.zone.account
        group: Group | None = None
        groups: tuple[Group, ...] = ()
        selection: SavedSelection | None = None
        others = PriceRule.objects.filter(zone=self.zone).exclude(pk=self.instance.pk)
        if kind == TargetKind.GROUP:
            code = cleaned.get("group") or ""
            group = Group.objects.filter(account=account, removed=False, code=code).first() if _is_uuid(code) else None
            if group is None:
                self.add_error("group", "Choose a group of this zone's account.")
                return
            if others.filter(Q(group=group) | Q(groups=group)).exists():
                self.add_error("group", "This group already has a rule in this zone: edit that one.")
                return
        elif kind == TargetKind.GROUPS:
            codes = [c for c in cleaned.get("groups") or [] if _is_uuid(c)]
            groups = tuple(Group.objects.filter(account=account, removed=False, code__in=codes).order_by("name"))
            if not groups or len(groups) != len(cleaned.get("groups") or []):
                self.add_error("groups", "Choose one or more groups of this zone's account.")
                return
            taken = sorted({g.name for g in groups if others.filter(Q(group=g) | Q(groups=g)).exists()})
            if taken:
                self.add_error("groups", f"Already in another rule of this zone: {', '.join(taken)}.")
                return
        else:
            code = cleaned.get("selection") or ""
            selection = (SavedSelection.objects.filter(account=account, code=code).first()
                         if _is_uuid(code) else None)
            if selection is None:
                self.add_error("selection", "Choose a saved selection of this zone's account.")
                return
            if others.filter(selection=selection).exists():
                self.add_error("selection", "This selection already has a rule in this zone: edit that one.")
                return
        try:
            resolve_target(account, Target(kind=kind, group=group, groups=groups, selection=selection),
                           require_devices=False)
        except CommandError as exc:
            for name, message in (getattr(exc, "errors", None) or {"target_kind": str(exc)}).items():
                self.add_error(name if name in self.fields else None, message)
            return
        cleaned["group_obj"], cleaned["groups_objs"], cleaned["selection_obj"] = group, groups, selection

    def clean_min_soc(self) -> int:
        value: int = self.cleaned_data["min_soc"]
        if not 10 <= value <= 100:
            raise ValidationError("Between 10 and 100 % (10 % is the documented minimum).")
        return value

    def _clean_hours(self, name: str) -> Decimal:
        value: Decimal = self.cleaned_data[name]
        if value < 0 or value * 4 != int(value * 4):
            raise ValidationError("Whole quarter-hours from 0, e.g. 3 or 2.5.")
        return value

    def clean_charge_hours(self) -> Decimal:
        return self._clean_hours("charge_hours")

    def clean_discharge_hours(self) -> Decimal:
        return self._clean_hours("discharge_hours")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        self._clean_target(cleaned)
        start: time | None = cleaned.get("window_start")
        end: time | None = cleaned.get("window_end")
        if start is None or end is None:
            return cleaned
        base = datetime(2000, 1, 1)
        length = (datetime.combine(base.date() + timedelta(days=1) if end == time(0) else base.date(), end)
                  - datetime.combine(base.date(), start))
        if length <= timedelta(0):
            self.add_error("window_end", "The window must end after it starts (00:00 for midnight).")
            return cleaned
        hours = Decimal(length.total_seconds()) / 3600
        wanted = Decimal(cleaned.get("charge_hours") or 0) + Decimal(cleaned.get("discharge_hours") or 0)
        if wanted > hours:
            self.add_error("charge_hours", f"{wanted.normalize()} h of charging and discharging are longer than "
                                           f"the window of {hours.normalize()} h.")
        cap, below = cleaned.get("charge_cap"), cleaned.get("charge_below")
        if cap is not None and below is not None and below > cap:
            self.add_error("charge_below", "Above the grid-charge cap: the cap would win every time.")
        if not wanted and below is None and cleaned.get("discharge_above") is None:
            self.add_error(None, "Say when to charge or discharge: hours or a price.")
        return cleaned


def _is_uuid(value: object) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True
