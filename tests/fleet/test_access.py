"""Every page but the public ones requires login; the anonymous visitor goes to the login page."""

from __future__ import annotations

import uuid

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

PUBLIC = {"fleet-login", "fleet-healthz", "fleet-callback", "fleet-invitation-accept"}
SAMPLES = {"uuid": str(uuid.uuid4()), "uuidstr": str(uuid.uuid4()), "int": "1", "str": "x", "slug": "x", "path": "x"}


def _patterns(resolvers, prefix=""):  # type: ignore[no-untyped-def]
    for entry in resolvers:
        if isinstance(entry, URLResolver):
            if entry.app_name == "admin":
                continue  # Django admin keeps its own login; tested below
            if entry.namespace == "api-v1":
                continue  # the REST API takes API keys, not logins; tested below
            yield from _patterns(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield entry, prefix + str(entry.pattern)


def _concrete(route: str) -> str:
    import re

    def fill(match: re.Match[str]) -> str:
        converter = match.group(1) or "str"
        return SAMPLES[converter]

    return "/" + re.sub(r"<(?:(\w+):)?\w+>", fill, route).lstrip("^").rstrip("$")


def all_routes() -> list[tuple[str, str]]:
    return [(p.name or "", _concrete(route)) for p, route in _patterns(get_resolver().url_patterns)]


def test_the_enumeration_finds_the_pages():
    names = {name for name, _ in all_routes()}
    assert {"fleet-dashboard", "fleet-settings", "fleet-account-edit"} <= names


@pytest.mark.django_db
@pytest.mark.parametrize("name,url", [r for r in all_routes() if r[0] not in PUBLIC])
def test_anonymous_requests_are_sent_to_login(client, name, url):
    for method in ("get", "post"):
        response = getattr(client, method)(url)
        assert response.status_code == 302, (name, method, response.status_code)
        assert response["Location"].startswith("/login/"), (name, response["Location"])


def _api_routes() -> list[str]:
    api = next(e for e in get_resolver().url_patterns if isinstance(e, URLResolver) and e.namespace == "api-v1")
    return [_concrete("api/v1/" + str(p.pattern)) for p in api.url_patterns]


def test_the_enumeration_finds_the_api():
    assert "/api/v1/commands" in _api_routes() and len(_api_routes()) > 15


@pytest.mark.django_db
@pytest.mark.parametrize("url", _api_routes())
def test_anonymous_api_requests_are_401_not_a_login_redirect(client, url):
    public = url in ("/api/v1/docs", "/api/v1/openapi.json", "/api/v1/")  # the document, its docs, the root
    for method in ("get", "post", "delete"):
        response = getattr(client, method)(url)
        assert "Location" not in response, (url, method)
        if public:
            assert response.status_code == 200, url
        else:
            assert response.status_code in (401, 404, 405), (url, method, response.status_code)
            assert response["Content-Type"] == "application/problem+json", url


@pytest.mark.django_db
def test_admin_requires_its_own_login(client):
    response = client.get("/admin/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


@pytest.mark.django_db
def test_a_user_without_organization_gets_403(client, django_user_model):
    user = django_user_model.objects.create_user("loner", password="x-Y-z-123456")
    client.force_login(user)
    response = client.get("/")
    assert response.status_code == 403
    assert b"not a member of any organization" in response.content


@pytest.mark.django_db
def test_switching_organization_needs_membership(operator_client, other_org, operator):
    response = operator_client.post("/organization/switch/", {"organization": str(other_org.code)})
    assert response.status_code == 403
    from fleet.models import Membership

    Membership.objects.create(organization=other_org, user=operator, role="viewer")
    response = operator_client.post("/organization/switch/", {"organization": str(other_org.code)})
    assert response.status_code == 302
    page = operator_client.get("/")
    assert b"Other Energy" in page.content


@pytest.mark.django_db
def test_switching_organization_rejects_get_and_garbage(operator_client):
    assert operator_client.get("/organization/switch/").status_code == 405
    assert operator_client.post("/organization/switch/", {"organization": "nope"}).status_code == 403
