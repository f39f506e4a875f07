"""Forms validate and convert; views assign."""

from __future__ import annotations

import re
import zoneinfo
from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.http import HttpRequest

from fleet import crypto
from fleet.accounts import throttle
from fleet.models import ApiKey, Organization, Role, SafetyEnvelope, SolaxAccount
from fleet.models.accounts import TOKEN_PAUSE_PREFIXES, long_ago

TOKEN_RE = re.compile(r"^\d{20,30}$")


def client_address(request: HttpRequest | None) -> str:
    """Return the client's address behind TRUSTED_PROXY_COUNT proxies (see fleet.throttle)."""
    return throttle.client_address(request)


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
        if throttle.is_locked(username, address, self.request):
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
    max_sns_per_call = forms.IntegerField(
        required=False, min_value=1, max_value=10_000, label="SNs per batch call",
        help_text="The most SNs one batch control call carries; SolaX documents no maximum. Empty: 100.")
    timezone = forms.CharField(max_length=64, validators=[validate_timezone],
                               help_text="Timezone of the sites, for schedules (IANA name).")

    def clean_max_sns_per_call(self) -> int:
        value = self.cleaned_data.get("max_sns_per_call")
        return value if value is not None else (self.instance.max_sns_per_call or 100)

    class Meta:
        model = SolaxAccount
        fields = ["name", "timezone", "calls_per_minute", "calls_per_day", "max_sns_per_call", "vpp_base_url",
                  "ev_base_url"]

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        if self.instance.pk is None:
            self.fields["token"].required = True
            self.fields["token"].help_text = "The tokenId from SolaX: 20 to 30 digits."
        self.fields["calls_per_minute"].help_text = (
            f"SolaX allows 10; this site at most {settings.SOLAX_MAX_CALLS_PER_MINUTE:,}.")
        self.fields["calls_per_day"].help_text = (
            f"SolaX allows 10,000; this site at most {settings.SOLAX_MAX_CALLS_PER_DAY:,}.")

    def clean_token(self) -> str:
        token = self.cleaned_data["token"]
        if token and not TOKEN_RE.match(token):
            # Never echo the value back: it may be a real token with a typo.
            raise ValidationError("The token must be 20 to 30 digits, nothing else.")
        clash = self.token_clash(token) if token else None
        if clash:
            raise ValidationError(clash)
        return token

    def token_clash(self, token: str) -> str | None:
        """One token, one budget: return why `token` is refused when another account, in any
        organization, holds it, or None. Only this organization's admins (the form's users) learn
        which of their accounts it is."""
        holder = (SolaxAccount.objects.filter(token_digest__in=crypto.token_digests(token))
                  .exclude(pk=self.instance.pk).only("name", "organization_id").first())
        if holder is None:
            return None
        if holder.organization_id == self.instance.organization_id:
            return f"This token is already used by the account “{holder.name}”."
        return "This token is already in use."

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
        if not 1 <= value <= settings.SOLAX_MAX_CALLS_PER_MINUTE:
            raise ValidationError(f"Between 1 and {settings.SOLAX_MAX_CALLS_PER_MINUTE:,} calls a minute.")
        return value

    def clean_calls_per_day(self) -> int:
        value = self.cleaned_data["calls_per_day"]
        if not 1 <= value <= settings.SOLAX_MAX_CALLS_PER_DAY:
            raise ValidationError(f"Between 1 and {settings.SOLAX_MAX_CALLS_PER_DAY:,} calls a day.")
        return value

    def save(self, commit: bool = True) -> SolaxAccount:
        account = super().save(commit=False)
        account.send_not_before = long_ago()  # new limits or a new token: the next sweep looks again
        if self.cleaned_data.get("token"):
            account.set_token(self.cleaned_data["token"])
            if account.pause_reason.startswith(TOKEN_PAUSE_PREFIXES):
                account.paused_until = None  # a new token deserves a try at once
                account.pause_reason = ""
        if commit:
            account.save()
        return account

    def save_unless_taken(self) -> SolaxAccount | None:
        """Save in a savepoint and return the account; or return None, with a form error, when a
        concurrent save took the token (or the name) between validation and the INSERT."""
        try:
            with transaction.atomic():
                return self.save()
        except IntegrityError:
            if self.instance.pk is not None:  # the page shows the stored token's last digits, not the refused one's
                self.instance.refresh_from_db(fields=["token_ciphertext", "token_digest", "token_last4"])
            token = self.cleaned_data.get("token")
            clash = self.token_clash(token) if token else None
            if clash:
                self.add_error("token", clash)
                return None
            if SolaxAccount.objects.filter(organization_id=self.instance.organization_id,
                                           name=self.cleaned_data.get("name")).exclude(pk=self.instance.pk).exists():
                self.add_error("name", "Your organization already has an account with this name.")
                return None
            raise


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class SafetyEnvelopeForm(forms.ModelForm):
    """An organization's safety envelope; every field empty means no limit."""

    class Meta:
        model = SafetyEnvelope
        fields = ["max_devices", "max_discharge_kw", "min_discharge_soc", "max_remote_timeout",
                  "max_writes_per_device_per_day", "approval_above_devices"]


class ApiKeyForm(forms.Form):
    """A new API key: its name (unique among the organization's active keys) and scope."""

    name = forms.CharField(max_length=100, strip=True, help_text="Say which system uses it, e.g. “trading bot”.",
                           error_messages={"required": "A key needs a name."})
    scope = forms.ChoiceField(choices=[("read", "read: list and get"),
                                       ("operate", "operate: also plan and send commands, change groups")],
                              initial="read")

    def __init__(self, *args: Any, organization: Organization, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.organization = organization

    def clean_name(self) -> str:
        from_field: str = self.cleaned_data["name"]
        if ApiKey.objects.filter(organization=self.organization, name=from_field, revoked_at=None).exists():
            raise ValidationError(f"An active key named {from_field!r} exists already.")
        return from_field


class ZoneForm(forms.Form):
    """The zone a person reads times in; "" keeps the organization's default (its first account's)."""

    timezone = forms.ChoiceField(label="Show times in", required=False)

    def __init__(self, *args, default_zone: str = "", **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        zones = sorted(zoneinfo.available_timezones() - {"localtime", "Factory"})
        field: forms.ChoiceField = self.fields["timezone"]  # type: ignore[assignment]
        field.choices = [("", f"the organization's zone ({default_zone})"), *((z, z) for z in zones)]
