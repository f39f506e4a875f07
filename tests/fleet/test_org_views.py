"""Admin-only settings: SolaX accounts with write-only tokens, and members with roles."""

from __future__ import annotations

import pytest

from fleet.models import Membership, SolaxAccount
from tests.conftest import TOKEN, make_member

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
    ("calls_per_minute", "0", "Between 1 and 10,000"),
    ("calls_per_day", "-5", ""),
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
