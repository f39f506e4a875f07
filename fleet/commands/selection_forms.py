"""The saved-selection form: a name, and inverters pasted, uploaded or picked by a filter."""

from __future__ import annotations

import re
from typing import Any

from django import forms

from fleet.models import Group, SolaxAccount

_SPLIT = re.compile(r"[\s,;]+")
MAX_UPLOAD_BYTES = 1_000_000


class SelectionForm(forms.Form):
    name = forms.CharField(max_length=100)
    sns = forms.CharField(required=False, label="SNs", widget=forms.Textarea(attrs={"rows": 5}),
                          help_text="Inverter SNs, separated by commas, spaces or new lines.")
    upload = forms.FileField(required=False, label="or a file of SNs",
                             help_text="Text or CSV, one SN per line or comma-separated (1 MB at most).")
    group = forms.ModelChoiceField(queryset=Group.objects.none(), required=False, to_field_name="code",
                                   empty_label="any group", label="or every inverter of a group")
    min_power = forms.FloatField(required=False, min_value=0, label="with rated power from (kW)")
    max_power = forms.FloatField(required=False, min_value=0, label="to (kW)")
    use_filter = forms.BooleanField(required=False, label="Add the inverters this filter picks")

    def __init__(self, *args: Any, account: SolaxAccount, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.account = account
        self.fields["group"].queryset = Group.objects.filter(account=account, removed=False)  # type: ignore[attr-defined]

    def clean_upload(self) -> list[str]:
        upload = self.cleaned_data.get("upload")
        if not upload:
            return []
        if upload.size > MAX_UPLOAD_BYTES:
            raise forms.ValidationError("The file is larger than 1 MB.")
        try:
            text = upload.read().decode("utf-8-sig")
        except UnicodeDecodeError:
            raise forms.ValidationError("The file is not UTF-8 text.")
        return [sn for sn in _SPLIT.split(text) if sn]

    def clean_sns(self) -> list[str]:
        return [sn for sn in _SPLIT.split(self.cleaned_data.get("sns") or "") if sn]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        low, high = data.get("min_power"), data.get("max_power")
        if low is not None and high is not None and low > high:
            self.add_error("max_power", "The upper bound is below the lower one.")
        return data
