from __future__ import annotations

import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def _clear_throttle():
    cache.clear()
    yield
    cache.clear()


@pytest.mark.django_db
def test_it_logs_in_and_reaches_the_dashboard(client, operator):
    response = client.post("/login/", {"username": "otto", "password": "pw-otto-9x!"})
    assert response.status_code == 302
    assert response["Location"] == "/"
    page = client.get("/")
    assert page.status_code == 200
    assert b"Dashboard" in page.content


@pytest.mark.django_db
def test_a_wrong_password_does_not_say_whether_the_user_exists(client, operator):
    wrong = client.post("/login/", {"username": "otto", "password": "nope"})
    unknown = client.post("/login/", {"username": "nobody", "password": "nope"})
    assert wrong.status_code == unknown.status_code == 200
    assert b"Wrong username or password." in wrong.content
    assert b"Wrong username or password." in unknown.content
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_repeated_failures_are_throttled_even_with_the_right_password(client, operator, settings):
    settings.LOGIN_FAILURE_LIMIT = 3
    for _ in range(3):
        client.post("/login/", {"username": "otto", "password": "nope"})
    response = client.post("/login/", {"username": "otto", "password": "pw-otto-9x!"})
    assert b"Too many failed attempts" in response.content
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_logout_is_a_post(operator_client):
    assert operator_client.get("/logout/").status_code == 405
    response = operator_client.post("/logout/")
    assert response.status_code == 302
    assert operator_client.get("/").status_code == 302


@pytest.mark.django_db
def test_it_changes_the_password(operator_client, operator):
    response = operator_client.post("/password/", {
        "old_password": "pw-otto-9x!",
        "new_password1": "a-Much-better-pass-42",
        "new_password2": "a-Much-better-pass-42",
    })
    assert response.status_code == 302
    operator.refresh_from_db()
    assert operator.check_password("a-Much-better-pass-42")


@pytest.mark.django_db
def test_a_wrong_old_password_is_a_form_error(operator_client, operator):
    response = operator_client.post("/password/", {
        "old_password": "wrong", "new_password1": "a-Much-better-pass-42", "new_password2": "a-Much-better-pass-42",
    })
    assert response.status_code == 200
    assert b"old password was entered incorrectly" in response.content
    operator.refresh_from_db()
    assert operator.check_password("pw-otto-9x!")
