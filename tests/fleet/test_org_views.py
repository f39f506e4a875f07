"""Admin-only settings: SolaX accounts with write-only tokens, and members with roles."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from cryptography.fernet import Fernet
from django.contrib.auth import get_user_model
from django.db import connection, connections
from django.db.models.signals import pre_save
from django.test import Client
from django.utils import timezone

from fleet.models import Membership, SolaxAccount
from tests.conftest import OTHER_TOKEN, TOKEN, make_member

pytestmark = pytest.mark.django_db

NEW_TOKEN = "99887766554433221100123"


def _account_form(**overrides):  # type: ignore[no-untyped-def]
    data = {"name": "North", "token": NEW_TOKEN, "timezone": "Europe/Vienna", "calls_per_minute": 10,
            "calls_per_day": 10000, "vpp_base_url": "https://www.solaxcloud.com:9443/proxy",
            "ev_base_url": "https://www.solaxcloud.com/proxyApp/proxy/api"}
    data.update(overrides)
    return data


def test_it_adds_an_account_with_the_token_encrypted(admin_client_, org):
    response = admin_client_.post("/settings/accounts/new/", _account_form())
    assert response.status_code == 302
    account = SolaxAccount.objects.get(organization=org, name="North")
    assert NEW_TOKEN not in account.token_ciphertext
    assert account.get_token() == NEW_TOKEN
    assert account.token_last4 == "0123"
    page = admin_client_.get("/settings/").content.decode()
    assert "••••0123" in page
    assert NEW_TOKEN not in page


@pytest.mark.parametrize("token", ["123", "1234567890123456789012345678901", "2023041310452726676779x", ""])
def test_a_malformed_token_is_a_form_error_that_does_not_echo_it(admin_client_, org, token):
    response = admin_client_.post("/settings/accounts/new/", _account_form(token=token))
    assert response.status_code == 200
    body = response.content.decode()
    assert "20 to 30 digits" in body or "This field is required" in body
    if token:
        assert token not in body
    assert not SolaxAccount.objects.filter(organization=org).exists()


@pytest.mark.parametrize("field,value,message", [
    ("timezone", "Mars/Olympus", "not a known timezone"),
    ("calls_per_minute", "0", "Between 1 and 10 calls a minute"),
    ("calls_per_minute", "11", "Between 1 and 10 calls a minute"),
    ("calls_per_day", "-5", ""),
    ("calls_per_day", "10001", "Between 1 and 10,000 calls a day"),
    ("name", "", "This field is required"),
    ("vpp_base_url", "not a url", "Enter a valid URL"),
])
def test_bad_account_fields_are_form_errors(admin_client_, org, field, value, message):
    response = admin_client_.post("/settings/accounts/new/", _account_form(**{field: value}))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not SolaxAccount.objects.filter(organization=org).exists()


def test_a_duplicate_account_name_is_a_form_error(admin_client_, account):
    response = admin_client_.post("/settings/accounts/new/", _account_form(name="Main"))
    assert b"already has an account with this name" in response.content
    assert SolaxAccount.objects.filter(organization=account.organization).count() == 1


def test_editing_with_a_blank_token_keeps_it(admin_client_, account):
    response = admin_client_.post(f"/settings/accounts/{account.code}/", _account_form(name="Renamed", token=""))
    assert response.status_code == 302
    account.refresh_from_db()
    assert account.name == "Renamed"
    assert account.get_token() == TOKEN


def test_the_edit_form_never_renders_the_token(admin_client_, account):
    body = admin_client_.get(f"/settings/accounts/{account.code}/").content.decode()
    assert TOKEN not in body
    assert account.token_ciphertext not in body
    assert "••••" + TOKEN[-4:] in body


def test_another_organizations_account_is_404(admin_client_, other_account):
    assert admin_client_.get(f"/settings/accounts/{other_account.code}/").status_code == 404
    response = admin_client_.post(f"/settings/accounts/{other_account.code}/", _account_form(name="Hijack"))
    assert response.status_code == 404
    other_account.refresh_from_db()
    assert other_account.name == "Theirs"


@pytest.mark.parametrize("who", ["viewer_client", "operator_client"])
def test_settings_require_admin(request, who, account):
    client = request.getfixturevalue(who)
    assert client.get("/settings/").status_code == 403
    assert client.post("/settings/accounts/new/", _account_form()).status_code == 403
    assert client.post(f"/settings/accounts/{account.code}/", _account_form()).status_code == 403
    assert client.post("/settings/invitations/new/", {"username": "x", "role": "admin"}).status_code == 403
    assert SolaxAccount.objects.count() == 1


def test_members_are_no_longer_added_by_username(admin_client_, other_org):
    """An admin could attach any existing user by naming them; now people join by invitation."""
    make_member(other_org, "stranger", "admin")
    response = admin_client_.post("/settings/members/add/", {"username": "stranger", "role": "admin"})
    assert response.status_code == 404
    assert not Membership.objects.filter(user__username="stranger").exclude(organization=other_org).exists()


def test_it_changes_a_role(admin_client_, operator):
    member = Membership.objects.get(user=operator)
    admin_client_.post(f"/settings/members/{member.code}/role/", {"role": "viewer"})
    member.refresh_from_db()
    assert member.role == "viewer"


def test_an_unknown_role_changes_nothing(admin_client_, operator):
    member = Membership.objects.get(user=operator)
    admin_client_.post(f"/settings/members/{member.code}/role/", {"role": "god"})
    member.refresh_from_db()
    assert member.role == "operator"


def test_the_last_admin_cannot_be_demoted_or_removed(admin_client_, admin_user):
    member = Membership.objects.get(user=admin_user)
    admin_client_.post(f"/settings/members/{member.code}/role/", {"role": "viewer"})
    admin_client_.post(f"/settings/members/{member.code}/remove/")
    member.refresh_from_db()
    assert member.role == "admin"


def test_it_removes_a_member(admin_client_, operator):
    member = Membership.objects.get(user=operator)
    assert admin_client_.post(f"/settings/members/{member.code}/remove/").status_code == 302
    assert not Membership.objects.filter(pk=member.pk).exists()


def test_another_organizations_member_is_404(admin_client_, other_org):
    stranger = make_member(other_org, "stranger", "admin")
    member = Membership.objects.get(user=stranger)
    assert admin_client_.post(f"/settings/members/{member.code}/remove/").status_code == 404
    assert admin_client_.post(f"/settings/members/{member.code}/role/", {"role": "viewer"}).status_code == 404
    assert Membership.objects.filter(pk=member.pk, role="admin").exists()


def test_member_writes_are_post_only(admin_client_, operator):
    member = Membership.objects.get(user=operator)
    assert admin_client_.get(f"/settings/members/{member.code}/remove/").status_code == 405
    assert Membership.objects.filter(pk=member.pk).exists()


def test_moving_the_base_urls_needs_the_token_again(admin_client_, account, settings):
    settings.SOLAX_ALLOWED_BASE_URLS = [*settings.SOLAX_ALLOWED_BASE_URLS, "https://evil.example/proxy"]
    moved = _account_form(name="Main", token="", vpp_base_url="https://evil.example/proxy")
    response = admin_client_.post(f"/settings/accounts/{account.code}/", moved)
    assert response.status_code == 200
    assert b"Enter the token again to change where it is sent." in response.content
    account.refresh_from_db()
    assert account.vpp_base_url != "https://evil.example/proxy"
    response = admin_client_.post(f"/settings/accounts/{account.code}/", {**moved, "token": NEW_TOKEN})
    assert response.status_code == 302
    account.refresh_from_db()
    assert account.vpp_base_url == "https://evil.example/proxy" and account.get_token() == NEW_TOKEN


# One token, one budget (issue 11, item 3) ------------------------------------------------------

def test_a_token_held_by_an_account_of_the_organization_names_it(admin_client_, account):
    response = admin_client_.post("/settings/accounts/new/", _account_form(token=TOKEN))
    assert response.status_code == 200
    body = response.content.decode()
    assert "This token is already used by the account “Main”." in body
    assert TOKEN not in body
    assert SolaxAccount.objects.count() == 1


def test_a_token_held_in_another_organization_is_only_in_use(admin_client_, org, other_account):
    response = admin_client_.post("/settings/accounts/new/", _account_form(token=OTHER_TOKEN))
    assert response.status_code == 200
    body = response.content.decode()
    assert "This token is already in use." in body
    assert "Theirs" not in body and "Other Energy" not in body
    assert not SolaxAccount.objects.filter(organization=org).exists()


def test_an_edit_cannot_take_the_token_of_another_account(admin_client_, account):
    second = SolaxAccount(organization=account.organization, name="South")
    second.set_token(NEW_TOKEN)
    second.save()
    response = admin_client_.post(f"/settings/accounts/{second.code}/", _account_form(name="South", token=TOKEN))
    assert "already used by the account “Main”" in response.content.decode()
    second.refresh_from_db()
    assert second.get_token() == NEW_TOKEN
    # re-entering an account's own token is no clash
    response = admin_client_.post(f"/settings/accounts/{account.code}/", _account_form(name="Main", token=TOKEN))
    assert response.status_code == 302


def test_a_budget_above_the_bounds_is_accepted_once_they_are_raised(admin_client_, org, settings):
    settings.SOLAX_MAX_CALLS_PER_MINUTE, settings.SOLAX_MAX_CALLS_PER_DAY = 600, 1_000_000
    response = admin_client_.post("/settings/accounts/new/", _account_form(calls_per_minute=600,
                                                                           calls_per_day=1_000_000))
    assert response.status_code == 302
    assert SolaxAccount.objects.get(organization=org).calls_per_minute == 600


def test_the_admin_holds_the_budget_to_the_bounds(org, account):
    superuser = get_user_model().objects.create_superuser("root", "root@example.com", "pw-root-9x!")
    client = Client()
    client.force_login(superuser)
    page = client.get(f"/admin/fleet/solaxaccount/{account.pk}/change/")
    assert page.status_code == 200
    data = {field: page.context["adminform"].form.initial.get(field) for field in page.context["adminform"].form.fields}
    data.update(organization=org.pk, name="Main", calls_per_minute=50, calls_per_day=10_000)
    response = client.post(f"/admin/fleet/solaxaccount/{account.pk}/change/",
                           {k: "" if v is None else v for k, v in data.items()})
    assert response.status_code == 200
    assert "At most 10 calls a minute" in response.content.decode()
    account.refresh_from_db()
    assert account.calls_per_minute == 10


# A token that cannot be decrypted (issue 11, item 6) ------------------------------------------

def test_the_settings_page_says_when_a_token_cannot_be_decrypted(admin_client_, account, settings):
    settings.TOKEN_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    body = admin_client_.get("/settings/").content.decode()
    assert "token cannot be decrypted: check TOKEN_ENCRYPTION_KEYS" in body


def test_entering_the_token_again_ends_the_unreadable_pause(admin_client_, account, settings):
    settings.TOKEN_ENCRYPTION_KEYS = [Fernet.generate_key().decode(), *settings.TOKEN_ENCRYPTION_KEYS[1:]]
    account.paused_until = timezone.now() + timedelta(minutes=1)
    account.pause_reason = "token cannot be decrypted: check TOKEN_ENCRYPTION_KEYS"
    account.save()
    response = admin_client_.post(f"/settings/accounts/{account.code}/", _account_form(name="Main", token=TOKEN))
    assert response.status_code == 302
    account.refresh_from_db()
    assert (account.paused_until, account.pause_reason) == (None, "")
    assert account.get_token() == TOKEN
    assert "cannot be decrypted" not in admin_client_.get("/settings/").content.decode()


@pytest.mark.django_db(transaction=True)
def test_two_admins_saving_the_same_token_at_once_make_one_account(org):
    """Both forms validate before either saves; the unique digest lets one INSERT through and turns the
    other into a form error (PostgreSQL: the second INSERT waits on the index, then fails)."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite's IMMEDIATE transactions serialise the two saves before they can race")
    clients = []
    for name in ("ada", "bea"):
        client = Client()
        client.force_login(make_member(org, name, "admin"))
        clients.append(client)
    both_validated = threading.Barrier(2, timeout=10)

    def hold_until_both_validated(sender, instance, **kwargs):  # type: ignore[no-untyped-def]
        if instance.pk is None:
            both_validated.wait()

    responses: list[object] = []

    def submit(client, name):  # type: ignore[no-untyped-def]
        try:
            responses.append(client.post("/settings/accounts/new/", _account_form(name=name)))
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            responses.append(exc)
        finally:
            connections.close_all()

    pre_save.connect(hold_until_both_validated, sender=SolaxAccount)
    try:
        threads = [threading.Thread(target=submit, args=(client, name))
                   for client, name in zip(clients, ["North", "South"], strict=True)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        pre_save.disconnect(hold_until_both_validated, sender=SolaxAccount)
    assert not [r for r in responses if isinstance(r, BaseException)], responses
    assert sorted(r.status_code for r in responses) == [200, 302]  # type: ignore[union-attr]
    refused = next(r for r in responses if r.status_code == 200)  # type: ignore[union-attr]
    kept = SolaxAccount.objects.get(organization=org)
    assert f"This token is already used by the account “{kept.name}”." in refused.content.decode()  # type: ignore[union-attr]
    assert SolaxAccount.objects.count() == 1
