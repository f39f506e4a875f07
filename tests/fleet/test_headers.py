"""Response headers (issue 11 item 10): a Content-Security-Policy without inline scripts, no-store on
authenticated pages, and no inline script or handler left in the templates."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fleet.mirror import sync
from fleet.models import Group
from fleet.pipeline import dispatch
from solax.parsing import parse_group_page

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db


def _csp(response) -> dict[str, list[str]]:  # type: ignore[no-untyped-def]
    header = response["Content-Security-Policy"]
    return {part.split()[0]: part.split()[1:] for part in header.split(";") if part.strip()}


@pytest.mark.parametrize("url", ["/", "/groups/", "/settings/", "/budget/"])
def test_pages_send_a_csp_without_inline_scripts_and_no_store(admin_client_, account, url):
    response = admin_client_.get(url)
    assert response.status_code == 200
    policy = _csp(response)
    assert policy["script-src"] == ["'self'"]
    assert "'unsafe-inline'" not in policy["script-src"] and "'unsafe-eval'" not in policy["script-src"]
    assert policy["object-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]
    cache = {part.strip() for part in response["Cache-Control"].split(",")}
    assert {"private", "no-store"} <= cache


def test_htmx_partials_and_errors_for_a_logged_in_user_are_not_stored(admin_client_, account):
    assert "no-store" in admin_client_.get("/groups/", HTTP_HX_REQUEST="true")["Cache-Control"]
    assert "no-store" in admin_client_.get("/groups/00000000-0000-0000-0000-000000000000/")["Cache-Control"]


def test_the_login_page_has_the_csp(client):
    assert _csp(client.get("/login/"))["script-src"] == ["'self'"]


def test_static_files_stay_cacheable(settings, admin_user):
    from django.test import Client

    settings.WHITENOISE_USE_FINDERS = True  # serve from static/ as in development (read at start-up)
    client = Client()
    client.force_login(admin_user)
    response = client.get("/static/js/fleet.js")
    assert response.status_code == 200
    assert "no-store" not in response.get("Cache-Control", "")


def test_no_template_has_an_inline_script_or_handler():
    offenders = []
    for path in (ROOT / "templates").rglob("*.html"):
        text = path.read_text()
        for pattern in (r"<script(?![^>]*\bsrc=)[^>]*>", r"\son[a-z]+\s*=", r"\shx-on[:-]", r"javascript:",
                        r"hx-(vals|vars)\s*=\s*['\"]\s*(js|javascript):"):
            offenders += [f"{path.name}: {m.group(0)}" for m in re.finditer(pattern, text, re.I)]
    assert offenders == []


def test_htmx_runs_without_eval():
    base = (ROOT / "templates" / "base.html").read_text()
    assert '"allowEval": false' in base and '"includeIndicatorStyles": false' in base


# A group called "null" or "None" --------------------------------------------------------------

def test_only_a_json_null_is_no_group_name():
    page = parse_group_page({"num": 4, "list": [{"id": 1, "name": "null"}, {"id": 2, "name": "None"},
                                                 {"id": 3, "name": None}, {"id": 4}]})
    assert [g.name for g in page.items] == ["null", "None", "", ""]


def test_groups_named_null_and_none_keep_their_names_through_a_sync(sim_account, simulator):
    tenant = simulator.sim.tenants[simulator.token]
    first, second, *_ = tenant.groups.values()
    first.name, second.name = "null", "None"
    sync.start_sync(sim_account)
    dispatch.pump(sim_account.pk, wait=False)
    names = set(Group.objects.filter(account=sim_account).values_list("name", flat=True))
    assert {"null", "None"} <= names
