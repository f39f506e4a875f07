from __future__ import annotations

import os

import pytest

# Playwright's sync API keeps an event loop running in the main thread for the whole session, so
# Django refuses ORM calls there without this. Tests only; tests/fleet/test_config.py strips it
# from the deployment check's environment.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture
def login(page, live_server):  # type: ignore[no-untyped-def]
    """Return a function that logs `username` in through the real login form."""

    def _login(username: str, password: str) -> None:
        page.goto(f"{live_server.url}/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", password)
        page.click("button[type=submit]")

    return _login


@pytest.fixture(autouse=True)
def no_csp_violations(request):  # type: ignore[no-untyped-def]
    """Fail a browser test when the page reports a Content-Security-Policy violation (a console error
    "Refused to execute inline script ... violates the following Content Security Policy directive")
    or an uncaught JavaScript error. Yields the list of problems seen so far."""
    if "page" not in request.fixturenames:
        yield []
        return
    page = request.getfixturevalue("page")
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" and (
        "Content Security Policy" in message.text or "Content-Security-Policy" in message.text) else None)
    page.on("pageerror", lambda error: problems.append(f"uncaught: {error}"))
    yield problems
    assert problems == [], problems
