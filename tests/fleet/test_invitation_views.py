"""People join with consent: invitations, their one-time links, and every way of using one (issue 11, item 9)."""

from __future__ import annotations

import re
import socket
import threading
import time
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.cache import cache
from django.db import connections, transaction
from django.test import Client
from django.utils import timezone

from fleet.accounts import invitations, throttle
from fleet.accounts.access import SESSION_KEY
from fleet.accounts.invitation_forms import InvitationSignupForm
from fleet.models import Invitation, Membership
from tests.conftest import make_member

User = get_user_model()
LINK_RE = re.compile(r"/invite/([A-Za-z0-9_-]{20,})/")
GOOD_PASSWORD = "a-Fine-password-77"


@pytest.fixture(autouse=True)
def _clear_cache(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast; the rules still apply
    cache.clear()
    yield
    cache.clear()


def _normalised(page: str) -> str:
    """The page without what differs from one request to the next (CSRF tokens, the expiry time)."""
    page = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", page)
    page = re.sub(r'"X-CSRFToken": "[^"]+"', "", page)
    return re.sub(r"valid until [^.]*\.", "", page)


def _invite(client: Client, **data: str) -> tuple[Invitation, str]:
    response = client.post("/settings/invitations/new/", {"role": "operator", **data})
    assert response.status_code == 200, response.content
    token = LINK_RE.search(response.content.decode()).group(1)  # type: ignore[union-attr]
    return Invitation.objects.get(token_hash=invitations.hash_token(token)), token


def _signup(client: Client, token: str, username: str, password: str = GOOD_PASSWORD, confirm: str | None = None):  # type: ignore[no-untyped-def]
    return client.post(f"/invite/{token}/", {"username": username, "password1": password,
                                             "password2": password if confirm is None else confirm})


# Creating ------------------------------------------------------------------------------------

@pytest.mark.django_db
def test_an_admin_creates_an_invitation_and_sees_its_link_once(admin_client_, org, settings):
    response = admin_client_.post("/settings/invitations/new/", {"email": "new@example.com", "role": "operator"})
    assert response.status_code == 200
    assert response["Cache-Control"] == "private, no-store"
    body = response.content.decode()
    token = LINK_RE.search(body).group(1)  # type: ignore[union-attr]
    assert settings.PUBLIC_BASE_URL + f"/invite/{token}/" in body
    invitation = Invitation.objects.get(organization=org)
    assert invitation.role == "operator" and invitation.email == "new@example.com"
    assert invitation.current_state == "pending"
    assert invitation.token_hash == invitations.hash_token(token) and token not in invitation.token_hash
    assert timedelta(days=6) < invitation.expires_at - timezone.now() <= timedelta(days=settings.INVITATION_DAYS)
    page = admin_client_.get("/settings/").content.decode()
    assert "new@example.com" in page and "Pending" in page
    assert token not in page
    assert not Membership.objects.filter(organization=org, user__email="new@example.com").exists()


@pytest.mark.django_db
def test_an_invitation_needs_an_email_or_a_username(admin_client_, org):
    response = admin_client_.post("/settings/invitations/new/", {"email": "", "username": "", "role": "viewer"})
    assert response.status_code == 400
    assert b"Give an email address, a suggested username, or both." in response.content
    assert not Invitation.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("data,message", [
    ({"email": "not-an-email"}, "Enter a valid email address."),
    ({"username": "has space"}, "Enter a valid username."),
    ({"username": "x" * 151}, "at most 150 characters"),
    ({"email": "a@example.com", "role": "god"}, "Select a valid choice."),
])
def test_bad_invitation_fields_are_form_errors(admin_client_, org, data, message):
    response = admin_client_.post("/settings/invitations/new/", {"role": "viewer", **data})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Invitation.objects.exists()


@pytest.mark.django_db
def test_the_form_never_says_whether_a_username_exists(admin_client_, org, other_org):
    make_member(other_org, "stranger", "admin")
    pages = []
    for username in ("stranger", "nobodyxx"):
        response = admin_client_.post("/settings/invitations/new/", {"username": username, "role": "admin"})
        assert response.status_code == 200
        token = LINK_RE.search(response.content.decode()).group(1)  # type: ignore[union-attr]
        pages.append(_normalised(response.content.decode().replace(token, "TOKEN").replace(username, "NAME")))
    assert pages[0] == pages[1]
    # and nobody of another organization was attached by naming them
    assert not Membership.objects.filter(organization=org, user__username="stranger").exists()


@pytest.mark.django_db
def test_the_link_is_mailed_when_email_is_configured(admin_client_, org, settings):
    settings.EMAIL_ENABLED = True
    invitation, token = _invite(admin_client_, email="new@example.com")
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["new@example.com"]
    assert invitations.link(token) in message.body
    assert org.name in message.subject


@pytest.mark.django_db
def test_nothing_is_mailed_without_email_configured(admin_client_, org, settings):
    settings.EMAIL_ENABLED = False
    response = admin_client_.post("/settings/invitations/new/", {"email": "new@example.com", "role": "viewer"})
    assert response.status_code == 200
    assert mail.outbox == []
    assert b"was mailed" not in response.content


@pytest.mark.django_db
def test_a_mail_server_that_refuses_leaves_the_link_on_the_page(admin_client_, org, settings, caplog):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings.EMAIL_ENABLED = True
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", port, 2
    response = admin_client_.post("/settings/invitations/new/", {"email": "new@example.com", "role": "viewer"})
    assert response.status_code == 200
    body = response.content.decode()
    assert "The mail could not be sent" in body
    token = LINK_RE.search(body).group(1)  # type: ignore[union-attr]
    assert token not in caplog.text
    assert Invitation.objects.get().current_state == "pending"


# Accepting as an existing user -----------------------------------------------------------------

@pytest.mark.django_db
def test_a_logged_in_user_accepts_and_joins_with_the_role(admin_client_, org, other_org):
    invitation, token = _invite(admin_client_, username="stranger")
    stranger = make_member(other_org, "stranger", "admin")
    client = Client()
    client.force_login(stranger)
    page = client.get(f"/invite/{token}/")
    assert page.status_code == 200
    assert b"Accept and join as stranger" in page.content
    assert not Membership.objects.filter(organization=org, user=stranger).exists()  # a GET changes nothing
    response = client.post(f"/invite/{token}/")
    assert response.status_code == 302 and response["Location"] == "/"
    assert Membership.objects.get(organization=org, user=stranger).role == "operator"
    assert client.session[SESSION_KEY] == str(org.code)
    invitation.refresh_from_db()
    assert invitation.current_state == "accepted" and invitation.accepted_by == stranger
    assert b"Welcome to Acme Power" in client.get("/").content
    # used: the link is gone for everyone
    assert client.post(f"/invite/{token}/").status_code == 410
    assert Client().get(f"/invite/{token}/").status_code == 410


@pytest.mark.django_db
def test_a_member_cannot_use_an_invitation_to_their_own_organization(admin_client_, operator):
    invitation, token = _invite(admin_client_, email="someone@example.com", role="admin")
    client = Client()
    client.force_login(operator)
    assert b"already a member" in client.get(f"/invite/{token}/").content
    response = client.post(f"/invite/{token}/")
    assert response.status_code == 409
    assert Membership.objects.get(user=operator).role == "operator"
    invitation.refresh_from_db()
    assert invitation.current_state == "pending"


@pytest.mark.django_db
def test_logging_in_from_the_invitation_comes_back_to_it(admin_client_, org, other_org):
    _, token = _invite(admin_client_, username="stranger")
    make_member(other_org, "stranger", "viewer")
    client = Client()
    page = client.get(f"/invite/{token}/").content.decode()
    assert f'/login/?next=/invite/{token}/' in page
    response = client.post(f"/login/?next=/invite/{token}/", {"username": "stranger", "password": "pw-stranger-9x!",
                                                              "next": f"/invite/{token}/"})
    assert response["Location"] == f"/invite/{token}/"
    assert client.post(f"/invite/{token}/").status_code == 302
    assert Membership.objects.filter(organization=org, user__username="stranger").exists()


# Accepting as a new person ---------------------------------------------------------------------

@pytest.mark.django_db
def test_a_new_person_chooses_a_username_and_a_password(admin_client_, org):
    invitation, token = _invite(admin_client_, email="newbie@example.com", username="newbie")
    client = Client()
    page = client.get(f"/invite/{token}/")
    assert page.status_code == 200
    assert 'value="newbie"' in page.content.decode()  # the suggestion, prefilled
    response = _signup(client, token, "newbie2")
    assert response.status_code == 302 and response["Location"] == "/"
    user = User.objects.get(username="newbie2")
    assert user.email == "newbie@example.com"
    assert user.check_password(GOOD_PASSWORD)
    assert Membership.objects.get(organization=org, user=user).role == "operator"
    assert client.session["_auth_user_id"] == str(user.pk)
    assert throttle.DEVICE_COOKIE in response.cookies
    invitation.refresh_from_db()
    assert invitation.current_state == "accepted" and invitation.accepted_by == user
    assert _signup(Client(), token, "newbie3").status_code == 410
    assert not User.objects.filter(username="newbie3").exists()


@pytest.mark.django_db
@pytest.mark.parametrize("password,confirm,message", [
    ("short", None, "This password is too short."),
    ("password123", None, "This password is too common."),
    ("12345678901234", None, "This password is entirely numeric."),
    ("newbie-example", None, "The password is too similar"),
    (GOOD_PASSWORD, "another-Password-88", "The two password fields didn"),
])
def test_passwords_follow_djangos_rules(admin_client_, org, password, confirm, message):
    invitation, token = _invite(admin_client_, email="newbie@example.com")
    response = _signup(Client(), token, "newbie", password, confirm)
    assert response.status_code == 400
    assert message in response.content.decode().replace("&#x27;", "'")
    assert not User.objects.filter(username="newbie").exists()
    invitation.refresh_from_db()
    assert invitation.current_state == "pending"


@pytest.mark.django_db
@pytest.mark.parametrize("username", ["ada", "ADA", "ａｄａ", "Ａda"])
def test_a_username_that_normalises_to_an_existing_one_is_a_form_error(admin_client_, org, admin_user, username):
    invitation, token = _invite(admin_client_, email="newbie@example.com")
    response = _signup(Client(), token, username)
    assert response.status_code == 400
    assert b"A user with that username already exists." in response.content
    assert User.objects.filter(username__iexact="ada").count() == 1
    invitation.refresh_from_db()
    assert invitation.current_state == "pending"


@pytest.mark.django_db
def test_a_username_taken_between_the_check_and_the_insert_is_a_form_error(admin_client_, org):
    invitation, _ = _invite(admin_client_, email="newbie@example.com")
    form = InvitationSignupForm({"username": "newbie", "password1": GOOD_PASSWORD, "password2": GOOD_PASSWORD},
                                instance=User(email="newbie@example.com"))
    assert form.is_valid()
    User.objects.create_user("newbie", "first@example.com", "x-First-password-1")  # someone was faster
    with pytest.raises(invitations.UsernameTaken):
        invitations.accept_as_new_user(invitation, form)
    invitation.refresh_from_db()
    assert invitation.current_state == "pending"
    assert not Membership.objects.filter(organization=org, user__username="newbie").exists()


@pytest.mark.django_db
def test_an_invalid_username_is_a_form_error(admin_client_, org):
    _, token = _invite(admin_client_, email="newbie@example.com")
    response = _signup(Client(), token, "bad name!")
    assert response.status_code == 400
    assert b"Enter a valid username." in response.content


# Bad links -------------------------------------------------------------------------------------

@pytest.mark.django_db
@pytest.mark.parametrize("token", ["nope", "A" * 43, "x" * 5000])
def test_an_unknown_link_is_a_clear_404(client, token):
    response = client.get(f"/invite/{token}/")
    assert response.status_code == 404
    assert b"This invitation link is not valid." in response.content
    assert client.post(f"/invite/{token}/", {"username": "x"}).status_code == 404


@pytest.mark.django_db
def test_a_nul_in_the_link_is_refused_before_any_lookup(client):
    # fleet.middleware refuses a NUL anywhere in the path with a 400, before the view looks it up
    assert client.get("/invite/%00/").status_code == 400
    assert client.post("/invite/%00/", {"username": "x"}).status_code == 400


@pytest.mark.django_db
def test_an_expired_link_is_a_clear_410(admin_client_, org):
    invitation, token = _invite(admin_client_, email="late@example.com")
    Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = Client().get(f"/invite/{token}/")
    assert response.status_code == 410
    assert b"This invitation has expired." in response.content
    assert _signup(Client(), token, "latecomer").status_code == 410
    assert not User.objects.filter(username="latecomer").exists()
    assert "Expired" in admin_client_.get("/settings/").content.decode()


@pytest.mark.django_db
def test_the_accept_page_is_the_only_one_open_without_login(client):
    assert client.get("/settings/").status_code == 302
    assert client.get("/invite/").status_code in (302, 404)
    assert client.post("/settings/invitations/new/", {"email": "a@example.com", "role": "admin"}).status_code == 302
    assert not Invitation.objects.exists()


# Revoking -------------------------------------------------------------------------------------

@pytest.mark.django_db
def test_an_admin_revokes_after_confirming(admin_client_, org):
    invitation, token = _invite(admin_client_, email="oops@example.com")
    confirm = admin_client_.get(f"/settings/invitations/{invitation.code}/revoke/")
    assert confirm.status_code == 200
    assert b"Revoke this invitation?" in confirm.content
    invitation.refresh_from_db()
    assert invitation.current_state == "pending"  # asking changes nothing
    assert admin_client_.post(f"/settings/invitations/{invitation.code}/revoke/").status_code == 302
    invitation.refresh_from_db()
    assert invitation.current_state == "revoked"
    response = Client().get(f"/invite/{token}/")
    assert response.status_code == 410
    assert b"withdrawn" in response.content
    assert "Revoked" in admin_client_.get("/settings/").content.decode()


@pytest.mark.django_db
def test_an_accepted_invitation_cannot_be_revoked(admin_client_, org):
    invitation, token = _invite(admin_client_, email="fast@example.com")
    assert _signup(Client(), token, "fast").status_code == 302
    admin_client_.post(f"/settings/invitations/{invitation.code}/revoke/")
    invitation.refresh_from_db()
    assert invitation.current_state == "accepted" and invitation.revoked_at is None
    assert Membership.objects.filter(organization=org, user__username="fast").exists()


@pytest.mark.django_db
def test_another_organizations_invitation_is_404(admin_client_, other_org):
    stranger = make_member(other_org, "stranger", "admin")
    theirs, _ = invitations.create(other_org, stranger, email="x@example.com", username="", role="viewer")
    assert admin_client_.get(f"/settings/invitations/{theirs.code}/revoke/").status_code == 404
    assert admin_client_.post(f"/settings/invitations/{theirs.code}/revoke/").status_code == 404
    theirs.refresh_from_db()
    assert theirs.current_state == "pending"
    assert "x@example.com" not in admin_client_.get("/settings/").content.decode()


@pytest.mark.django_db
def test_revoke_is_get_or_post_only(admin_client_, org):
    invitation, _ = _invite(admin_client_, email="a@example.com")
    assert admin_client_.put(f"/settings/invitations/{invitation.code}/revoke/").status_code == 405
    assert admin_client_.get("/settings/invitations/new/").status_code == 405


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["viewer_client", "operator_client"])
def test_invitations_require_admin(request, who, org, admin_user):
    client = request.getfixturevalue(who)
    invitation, _ = invitations.create(org, admin_user, email="a@example.com", username="", role="viewer")
    assert client.post("/settings/invitations/new/", {"email": "b@example.com", "role": "admin"}).status_code == 403
    assert client.get(f"/settings/invitations/{invitation.code}/revoke/").status_code == 403
    assert client.post(f"/settings/invitations/{invitation.code}/revoke/").status_code == 403
    assert Invitation.objects.count() == 1
    invitation.refresh_from_db()
    assert invitation.current_state == "pending"


# Two people, one link --------------------------------------------------------------------------

def _race(token: str, usernames: list[str]) -> list[int]:
    barrier = threading.Barrier(len(usernames))
    statuses: list[int] = []
    errors: list[BaseException] = []

    def accept(username: str) -> None:
        try:
            barrier.wait()
            statuses.append(_signup(Client(), token, username).status_code)
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=accept, args=(name,)) for name in usernames]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    return statuses


@pytest.mark.django_db(transaction=True)
def test_of_many_people_accepting_one_link_at_once_one_wins(org, admin_user):
    invitation, token = invitations.create(org, admin_user, email="shared@example.com", username="", role="operator")
    statuses = _race(token, [f"racer{i}" for i in range(6)])
    assert sorted(statuses) == [302] + [410] * 5
    assert Membership.objects.filter(organization=org, user__username__startswith="racer").count() == 1
    assert User.objects.filter(username__startswith="racer").count() == 1  # the losers' users rolled back
    invitation.refresh_from_db()
    assert invitation.accepted_by is not None and invitation.accepted_by.username.startswith("racer")


@pytest.mark.django_db(transaction=True)
def test_the_second_acceptance_waits_for_the_first_and_loses(org, other_org, admin_user):
    """The first claim is held open while the second arrives: on PostgreSQL the second UPDATE waits
    for the row lock and then finds nothing pending (SQLite: the IMMEDIATE transaction waits)."""
    invitation, token = invitations.create(org, admin_user, email="", username="first", role="viewer")
    first = make_member(other_org, "first", "viewer")
    claimed, second_status, waited = threading.Event(), [], []

    def second() -> None:
        try:
            claimed.wait(10)
            started = time.monotonic()
            second_status.append(_signup(Client(), token, "second").status_code)
            waited.append(time.monotonic() - started)
        finally:
            connections.close_all()

    thread = threading.Thread(target=second)
    thread.start()
    with transaction.atomic():
        invitations.accept_as(invitation, first)
        claimed.set()
        time.sleep(0.5)  # the second acceptance is now waiting on our lock
    thread.join(30)
    assert second_status == [410]
    assert waited[0] >= 0.3  # it really arrived while the first held the invitation
    assert Membership.objects.filter(organization=org).exclude(user=admin_user).get().user == first
    assert not User.objects.filter(username="second").exists()
