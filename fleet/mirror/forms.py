"""Forms of the mirror's pages: they validate and convert (names, SNs, selections, pasted lists)."""

from __future__ import annotations

import csv
import io
import re
import uuid
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from fleet.models import Charger, Group, SolaxAccount

GROUP_NAME_MAX = 50  # the cloud refuses longer names
SN_RE = re.compile(r"^[A-Za-z0-9]{6,40}$")
MAX_SNS_PER_SUBMISSION = 1000  # ten requests of 100
MAX_CSV_BYTES = 200_000


def clean_sn_text(value: str, what: str = "serial number") -> str:
    """Return an SN stripped and upper-cased; raise ValidationError if it is not 6-40 letters/digits."""
    text = (value or "").strip().upper()
    if not SN_RE.fullmatch(text):
        raise ValidationError(f"{value.strip()!r} is not a {what}: 6-40 letters or digits, no spaces.")
    return text


class GroupNameForm(forms.Form):
    name = forms.CharField(max_length=GROUP_NAME_MAX, strip=True, error_messages={
        "required": "A group needs a name.",
        "max_length": f"A group name has at most {GROUP_NAME_MAX} characters.",
    })

    def __init__(self, *args: Any, account: SolaxAccount, group: Group | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.account, self.group = account, group

    def clean_name(self) -> str:
        name: str = self.cleaned_data["name"]
        same = Group.objects.filter(account=self.account, removed=False, name=name)
        if self.group is not None:
            same = same.exclude(pk=self.group.pk)
        if same.exists():
            raise ValidationError(f"A group named {name!r} exists already.")
        return name


class SnForm(forms.Form):
    sn = forms.CharField(max_length=40, strip=True, error_messages={"required": "Enter an inverter SN.",
                                                                     "max_length": "An SN has at most 40 characters."})

    def clean_sn(self) -> str:
        return clean_sn_text(self.cleaned_data["sn"], "inverter SN")


def account_group(account: SolaxAccount | None, text: str) -> Group:
    """Return the account's group named by its code or its exact name; ValidationError otherwise."""
    groups = Group.objects.filter(account=account, removed=False)
    try:
        found = list(groups.filter(code=uuid.UUID(text))[:1])
    except ValueError:
        found = list(groups.filter(name=text)[:2])
    if len(found) > 1:
        raise ValidationError(f"Several groups are named {text!r}: choose one on its own page.")
    if not found:
        raise ValidationError("Choose one of this account's groups.")
    return found[0]


class UngroupedAddForm(SnForm):
    """Add an ungrouped device to one of the account's groups (by the group's code)."""

    # the group's code (a select) or its exact name (typed, from a list of names: a page of a large
    # fleet carries one list of names, not a select of every group in each row)
    group = forms.CharField(max_length=100, strip=True, error_messages={"required": "Choose a group."})

    def __init__(self, *args: Any, account: SolaxAccount | None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.account = account

    def clean_group(self) -> Group:
        return account_group(self.account, self.cleaned_data["group"])


PART_SN_RE = re.compile(r"^[A-Za-z0-9]{2,40}$")


class CloudLookupForm(forms.Form):
    """Look a device up with the cloud's fuzzy member query: part of its dongle or inverter SN, asked in
    one of the account's groups (the query needs one; the first by name when none is chosen)."""

    wifi_sn = forms.CharField(required=False, max_length=40, strip=True,
                              error_messages={"max_length": "An SN has at most 40 characters."})
    inverter_sn = forms.CharField(required=False, max_length=40, strip=True,
                                  error_messages={"max_length": "An SN has at most 40 characters."})
    group = forms.CharField(required=False, max_length=100, strip=True)

    def __init__(self, *args: Any, account: SolaxAccount | None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.account = account

    def _part(self, field: str, what: str) -> str:
        text: str = self.cleaned_data[field]
        if text and not PART_SN_RE.fullmatch(text):
            raise ValidationError(f"{text!r} is not part of a {what}: 2-40 letters or digits, no spaces.")
        return text.upper()

    def clean_wifi_sn(self) -> str:
        return self._part("wifi_sn", "dongle SN")

    def clean_inverter_sn(self) -> str:
        return self._part("inverter_sn", "inverter SN")

    def clean_group(self) -> Group | None:
        text = self.cleaned_data["group"]
        if text:
            return account_group(self.account, text)
        group = Group.objects.filter(account=self.account, removed=False).order_by("name", "pk").first()
        if group is None:
            raise ValidationError("The cloud's member search asks within a group: create a group first.")
        return group

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not self.errors and not data.get("wifi_sn") and not data.get("inverter_sn"):
            raise ValidationError("Enter part of a dongle SN or an inverter SN.")
        return data


class SelectionForm(forms.Form):
    """Ticked rows: their codes, resolved by the view against the organization's own objects."""

    codes = forms.TypedMultipleChoiceField(coerce=str, error_messages={"required": "Tick at least one row."})

    def __init__(self, *args: Any, choices: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["codes"]
        assert isinstance(field, forms.TypedMultipleChoiceField)
        field.choices = [(c, c) for c in choices]
        field.error_messages["invalid_choice"] = "One of the ticked rows is not yours or is gone."


class ChargerForm(forms.Form):
    sn = forms.CharField(max_length=40, strip=True, label="Charger SN",
                         error_messages={"required": "Enter the charger's SN."})
    label = forms.CharField(max_length=100, required=False, strip=True)

    def __init__(self, *args: Any, account: SolaxAccount, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.account = account

    def clean_sn(self) -> str:
        sn = clean_sn_text(self.cleaned_data["sn"], "charger SN")
        if Charger.objects.filter(account=self.account, sn=sn).exists():
            raise ValidationError(f"Charger {sn} is in the list already.")
        return sn


def split_sns(text: str) -> list[str]:
    """Return the tokens of pasted text or CSV: separated by commas, semicolons, whitespace or lines."""
    tokens: list[str] = []
    for row in csv.reader(io.StringIO(text)):
        for cell in row:
            tokens.extend(t for t in re.split(r"[\s;]+", cell) if t)
    return tokens


class BindingForm(forms.Form):
    sns = forms.CharField(widget=forms.Textarea(attrs={"rows": 6}), required=False, max_length=MAX_CSV_BYTES,
                          label="Registration numbers (dongle SNs)")
    file = forms.FileField(required=False, label="or a CSV file")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        text = cleaned.get("sns") or ""
        upload = cleaned.get("file")
        if upload is not None:
            if upload.size > MAX_CSV_BYTES:
                raise ValidationError(f"The file is larger than {MAX_CSV_BYTES // 1000} kB.")
            try:
                text += "\n" + upload.read().decode("utf-8-sig")
            except UnicodeDecodeError:
                raise ValidationError("The file is not UTF-8 text (save it as CSV).")
        try:
            tokens = [t for t in split_sns(text) if t.lower() not in {"sn", "sns", "registration number"}]
        except csv.Error:  # a cell longer than the csv module's limit (131,072 characters), or a stray quote
            raise ValidationError("This is not a list of registration numbers: one cell is far too long.")
        if not tokens:
            raise ValidationError("Paste registration numbers or choose a CSV file.")
        bad, seen, dups, sns = [], set(), [], []
        for token in tokens:
            try:
                sn = clean_sn_text(token, "registration number")
            except ValidationError:
                bad.append(token)
                continue
            if sn in seen:
                dups.append(sn)
            seen.add(sn)
            sns.append(sn)
        errors = []
        if bad:
            errors.append("Not registration numbers (6-40 letters or digits): " + ", ".join(bad[:10])
                          + (f" and {len(bad) - 10} more" if len(bad) > 10 else ""))
        if dups:
            errors.append("Listed twice: " + ", ".join(sorted(set(dups))[:10]))
        if len(sns) > MAX_SNS_PER_SUBMISSION:
            errors.append(f"At most {MAX_SNS_PER_SUBMISSION} registration numbers at a time, not {len(sns)}.")
        if errors:
            raise ValidationError(errors)
        cleaned["sn_list"] = sns
        return cleaned


class CloudSearchForm(forms.Form):
    q = forms.CharField(max_length=GROUP_NAME_MAX, strip=True, error_messages={
        "required": "Enter part of a name to search the cloud for."})
