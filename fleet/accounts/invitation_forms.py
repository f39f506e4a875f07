"""Forms of invitations: the admin's (never says whether a username exists) and the newcomer's
(Django's own UserCreationForm: its username normalisation, uniqueness check and password rules)."""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import UserCreationForm, UsernameField

from fleet.models import Role

User = get_user_model()


class InvitationForm(forms.Form):
    email = forms.EmailField(required=False, help_text="Where the link is mailed, when email is set up.")
    username = UsernameField(
        required=False, max_length=150, validators=[User.username_validator],  # type: ignore[attr-defined]
        help_text="A suggestion for a new person; they choose their own. Leave blank for someone who "
                  "already has an account.")
    role = forms.ChoiceField(choices=Role.choices, initial=Role.VIEWER)

    def clean(self) -> dict[str, object]:
        cleaned = super().clean() or {}
        # Whether the username exists is never checked here: that would tell any admin who has an
        # account. The person who opens the link finds out, as on any sign-up form.
        if not cleaned.get("email") and not cleaned.get("username") and not self.errors:
            raise forms.ValidationError("Give an email address, a suggested username, or both.")
        return cleaned


class InvitationSignupForm(UserCreationForm):
    """A new person's username and password. A username that differs from an existing one only in
    case or Unicode form is a form error (UserCreationForm normalises with NFKC and checks iexact)."""

    class Meta(UserCreationForm.Meta):  # type: ignore[name-defined]
        model = User
        fields = ("username",)
