"""Forms validate and convert; views assign."""

from __future__ import annotations

import re
import zoneinfo

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AuthenticationForm, UsernameField
from django.core.exceptions import ValidationError
from django.http import HttpRequest

from fleet import throttle
from fleet.models import Role, SolaxAccount

TOKEN_RE = re.compile(r"^\d{20,30}$")


def client_address(request: HttpRequest | None) -> str:
    if request is None:
        return "unknown"
    return request.META.get("REMOTE_ADDR", "unknown")


class ThrottledLoginForm(AuthenticationForm):
    """Django's login form, refusing attempts after repeated failures, without saying whether
    the user exists."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "Wrong username or password.",
        "throttled": "Too many failed attempts. Wait a few minutes and try again.",
    }

    def clean(self) -> dict[str, object]:
        username = self.cleaned_data.get("username") or ""
        address = client_address(self.request)
        if throttle.is_locked(username, address):
            raise ValidationError(self.error_messages["throttled"], code="throttled")
        try:
            cleaned = super().clean()
        except ValidationError:
            throttle.record_failure(username, address)
            raise
        throttle.clear(username, address)
        return cleaned


def validate_timezone(value: str) -> None:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValidationError(f"{value!r} is not a known timezone (for example Europe/Berlin).")


class SolaxAccountForm(forms.ModelForm):
    """Add or edit a SolaX account. The token is write-only: blank on edit keeps the stored one."""

    token = forms.CharField(
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="The tokenId from SolaX: 20 to 30 digits. Leave blank to keep the current one.",
    )
    vpp_base_url = forms.URLField(assume_scheme="https", label="VPP API base URL")
    ev_base_url = forms.URLField(assume_scheme="https", label="EV charger API base URL")
    timezone = forms.CharField(max_length=64, validators=[validate_timezone],
                               help_text="Timezone of the sites, for schedules (IANA name).")

    class Meta:
        model = SolaxAccount
        fields = ["name", "timezone", "calls_per_minute", "calls_per_day", "vpp_base_url", "ev_base_url"]

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        if self.instance.pk is None:
            self.fields["token"].required = True
            self.fields["token"].help_text = "The tokenId from SolaX: 20 to 30 digits."
        self.fields["calls_per_minute"].help_text = "SolaX allows 10."
        self.fields["calls_per_day"].help_text = "SolaX allows 10,000."

    def clean_token(self) -> str:
        token = self.cleaned_data["token"]
        if token and not TOKEN_RE.match(token):
            # Never echo the value back: it may be a real token with a typo.
            raise ValidationError("The token must be 20 to 30 digits, nothing else.")
        return token

    def clean(self) -> dict[str, object]:
        cleaned = super().clean() or {}
        # The token goes wherever the base URLs point: moving them (another admin's token, perhaps)
        # needs the token itself, so that nobody can send a stored token to a server of their own.
        instance = self.instance
        moved = instance.pk is not None and any(
            cleaned.get(name) not in (None, getattr(instance, name)) for name in ("vpp_base_url", "ev_base_url"))
        if moved and not cleaned.get("token"):
            self.add_error("token", "Enter the token again to change where it is sent.")
        return cleaned

    def clean_calls_per_minute(self) -> int:
        value = self.cleaned_data["calls_per_minute"]
        if not 1 <= value <= 10_000:
            raise ValidationError("Between 1 and 10,000 calls a minute.")
        return value

    def clean_calls_per_day(self) -> int:
        value = self.cleaned_data["calls_per_day"]
        if not 1 <= value <= 10_000_000:
            raise ValidationError("Between 1 and 10,000,000 calls a day.")
        return value

    def save(self, commit: bool = True) -> SolaxAccount:
        account = super().save(commit=False)
        if self.cleaned_data.get("token"):
            account.set_token(self.cleaned_data["token"])
            if account.pause_reason.startswith("SolaX rejected the token"):
                account.paused_until = None  # a new token deserves a try at once
                account.pause_reason = ""
        if commit:
            account.save()
        return account


class AddMemberForm(forms.Form):
    # UsernameField normalises (NFKC) as create_user does, so the lookup finds the user it would create
    username = UsernameField(max_length=150)
    email = forms.EmailField(required=False)
    password = forms.CharField(
        required=False, widget=forms.PasswordInput,
        help_text="Only for a new user: their first password (they can change it after login).",
    )
    role = forms.ChoiceField(choices=Role.choices, initial=Role.VIEWER)

    def clean(self) -> dict[str, object]:
        cleaned = super().clean() or {}
        username = cleaned.get("username")
        if username and not get_user_model().objects.filter(username=username).exists():
            password = cleaned.get("password")
            if not password:
                self.add_error("password", "A new user needs a first password.")
            else:
                from django.contrib.auth.password_validation import validate_password

                try:
                    validate_password(str(password))
                except ValidationError as exc:
                    self.add_error("password", exc)
        return cleaned


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)
