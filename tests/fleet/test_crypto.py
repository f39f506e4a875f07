from __future__ import annotations

import hashlib
import importlib
import io

import pytest
from cryptography.fernet import Fernet
from django.apps import apps
from django.core.management import call_command
from django.db import IntegrityError, transaction

from fleet import crypto
from fleet.accounts.forms import SolaxAccountForm
from fleet.models import SolaxAccount
from fleet.models.accounts import TOKEN_SHARED_REASON
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


# The token's keyed digest (issue 11, item 3) ---------------------------------------------------

@pytest.mark.django_db
def test_the_digest_is_keyed_and_stored_beside_the_ciphertext(account, settings):
    stored = SolaxAccount.objects.values_list("token_digest", flat=True).get(pk=account.pk)
    assert stored == crypto.token_digest(TOKEN)
    assert TOKEN not in stored
    assert stored != hashlib.sha256(TOKEN.encode()).hexdigest()  # a guess cannot be checked without the key
    assert crypto.token_digest(TOKEN, Fernet.generate_key().decode()) != stored


@pytest.mark.django_db
def test_the_digest_is_unique_across_organizations(account, other_org):
    twin = SolaxAccount(organization=other_org, name="Twin")
    twin.set_token(TOKEN)
    with pytest.raises(IntegrityError), transaction.atomic():
        twin.save()


@pytest.mark.django_db
def test_rotate_token_keys_moves_the_digest_to_the_new_key(account, other_org, settings):
    old_keys = list(settings.TOKEN_ENCRYPTION_KEYS)
    new_key = Fernet.generate_key().decode()
    settings.TOKEN_ENCRYPTION_KEYS = [new_key, *old_keys]
    # before the rotation ran, a digest under an older key still counts
    assert SolaxAccount.objects.filter(token_digest__in=crypto.token_digests(TOKEN)).exists()
    call_command("rotate_token_keys", stdout=io.StringIO())
    settings.TOKEN_ENCRYPTION_KEYS = [new_key]
    account.refresh_from_db()
    assert account.token_digest == crypto.token_digest(TOKEN, new_key)
    form = SolaxAccountForm({"name": "Twin", "token": TOKEN, "timezone": "UTC", "calls_per_minute": 10,
                             "calls_per_day": 10000, "vpp_base_url": "https://www.solaxcloud.com:9443/proxy",
                             "ev_base_url": "https://www.solaxcloud.com/proxyApp/proxy/api"},
                            instance=SolaxAccount(organization=other_org))
    assert not form.is_valid()
    assert form.errors["token"] == ["This token is already in use."]


@pytest.mark.django_db
def test_the_migration_digests_legacy_tokens_and_pauses_a_second_holder(account, other_org):
    twin = SolaxAccount(organization=other_org, name="Twin")
    twin.set_token(TOKEN)
    twin.token_digest = None
    twin.save()
    SolaxAccount.objects.filter(pk=account.pk).update(token_digest=None)
    migration = importlib.import_module("fleet.migrations.0014_token_digest")
    migration.fill_digests(apps, None)
    account.refresh_from_db()
    twin.refresh_from_db()
    assert account.token_digest == crypto.token_digest(TOKEN) and not account.is_paused()
    assert twin.token_digest is None and twin.is_paused()
    assert twin.pause_reason == TOKEN_SHARED_REASON
