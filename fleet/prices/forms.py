"""Forms of the prices pages: a zone, a price file, a target's rule. They validate and convert (a
parsed day, a rule that fits its window); the views assign."""

from __future__ import annotations

import zoneinfo
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from fleet.models import Group, PriceRule, PriceSource, PriceZone, SolaxAccount
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
    """Charge in the cheapest N hours (or below a price), discharge in the dearest M (or above one),
    the minimum SoC, no export at negative prices, and the hard grid-charge cap."""

    group = forms.ChoiceField(choices=[])

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

    field_order = ["group"]

    def __init__(self, *args: Any, zone: PriceZone, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.zone = zone
        groups = Group.objects.filter(account=zone.account, removed=False).order_by("name")
        group_field: Any = self.fields["group"]
        group_field.choices = [(str(g.code), g.name) for g in groups]
        if self.instance.pk:
            self.initial["group"] = str(self.instance.group.code)

    def clean_group(self) -> Group:
        code = self.cleaned_data["group"]
        group = Group.objects.filter(account=self.zone.account, removed=False, code=code).first()
        if group is None:
            raise ValidationError("Choose a group of this zone's account.")
        taken = PriceRule.objects.filter(zone=self.zone, group=group).exclude(pk=self.instance.pk)
        if taken.exists():
            raise ValidationError("This group already has a rule in this zone: edit that one.")
        return group

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
