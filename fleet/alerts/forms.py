"""The channel form: kind, target (an email address or a webhook URL), its events, the alerts' rule, enabled."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.validators import validate_email

from fleet.alerts.channels import webhook_url_problem
from fleet.models import AlertKind, Channel, ChannelEvent, ChannelKind, Severity
from fleet.models.alerts import default_events


class ChannelForm(forms.ModelForm):
    events = forms.MultipleChoiceField(
        choices=ChannelEvent.choices, initial=default_events, widget=forms.CheckboxSelectMultiple,
        label="Events", error_messages={"required": "Tick at least one event (or disable the channel)."},
        help_text="A command's event comes once, when it ends; the kinds and severity below apply to alerts.")
    kinds = forms.MultipleChoiceField(
        choices=AlertKind.choices, required=False, widget=forms.CheckboxSelectMultiple,
        label="Alert kinds", help_text="None ticked: every kind.")
    min_severity = forms.ChoiceField(choices=Severity.choices, initial=Severity.WARNING,
                                     label="From severity", help_text="Alerts below it are not sent here.")

    class Meta:
        model = Channel
        fields = ["name", "kind", "target", "events", "kinds", "min_severity", "enabled"]
        labels = {"target": "Email address or webhook URL"}
        help_texts = {"target": "A webhook gets a JSON POST signed with the channel's secret (shown once)."}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["name"].widget.attrs["maxlength"] = 100
        if self.instance.pk:
            # A channel keeps its kind: a webhook's secret means nothing to an email address.
            self.fields["kind"].disabled = True

    def clean_name(self) -> str:
        name = " ".join(self.cleaned_data["name"].split())
        if not name:
            raise forms.ValidationError("Give the channel a name.")
        return name

    def clean_events(self) -> list[str]:
        # In the order of ChannelEvent, so that an unchanged choice is never audited as a change.
        chosen = set(self.cleaned_data["events"])
        return [event for event in ChannelEvent.values if event in chosen]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        kind, target = data.get("kind"), (data.get("target") or "").strip()
        if not target or not kind:
            return data
        if kind == ChannelKind.EMAIL:
            try:
                validate_email(target)
            except forms.ValidationError:
                self.add_error("target", "Enter a valid email address.")
                return data
        else:
            problem = webhook_url_problem(target)
            if problem is not None:
                self.add_error("target", f"This webhook URL is refused: {problem}.")
                return data
        data["target"] = target
        return data
