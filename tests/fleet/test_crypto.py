from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command

from fleet.models import SolaxAccount
from tests.conftest import TOKEN


@pytest.mark.django_db
def test_the_token_is_encrypted_at_rest(account):
    raw = SolaxAccount.objects.values_list("token_ciphertext", flat=True).get(pk=account.pk)
    assert TOKEN not in raw
    assert account.get_token() == TOKEN


@pytest.mark.django_db
def test_repr_and_str_never_show_the_token(account):
    assert TOKEN not in repr(account)
    assert TOKEN not in str(account)
    assert account.masked_token == "••••" + TOKEN[-4:]


@pytest.mark.django_db
def test_rotate_token_keys_re_encrypts_under_the_new_key(account, settings):
    old_keys = list(settings.TOKEN_ENCRYPTION_KEYS)
    new_key = Fernet.generate_key().decode()
    settings.TOKEN_ENCRYPTION_KEYS = [new_key, *old_keys]
    call_command("rotate_token_keys")
    settings.TOKEN_ENCRYPTION_KEYS = [new_key]  # the old key is gone: the token must still open
    account.refresh_from_db()
    assert account.get_token() == TOKEN


@pytest.mark.django_db
def test_a_token_under_an_unknown_key_is_a_clear_error(account, settings):
    settings.TOKEN_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(ValueError, match="cannot be decrypted") as info:
        account.get_token()
    assert account.token_ciphertext not in str(info.value)
