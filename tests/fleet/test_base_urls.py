"""Base URLs: an account's token goes only to URLs under SOLAX_ALLOWED_BASE_URLS (issue 11, item 4).

The same rule in the settings form, Django admin, the settings loader and the dispatcher."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from fleet import base_urls
from fleet.models import ApiCall, CallState, SolaxAccount
from fleet.pipeline import dispatch, queue
from solax import endpoints
from tests.fleet.test_config import PRODUCTION, _run
from tests.fleet.test_org_views import NEW_TOKEN, _account_form

VPP = "https://www.solaxcloud.com:9443/proxy"
EV = "https://www.solaxcloud.com/proxyApp/proxy/api"
PRODUCTION_LIKE = [VPP, EV]


@pytest.fixture
def production_prefixes(settings):  # type: ignore[no-untyped-def]
    """The default list of a deployment: the two SolaX base URLs only."""
    settings.SOLAX_ALLOWED_BASE_URLS = PRODUCTION_LIKE
    return settings


@pytest.mark.parametrize("url", [
    VPP, VPP + "/", EV, "HTTPS://WWW.SolaxCloud.com:9443/proxy", "https://www.solaxcloud.com:9443/proxy/v2",
    "https://www.solaxcloud.com:443/proxyApp/proxy/api",  # the default port, written out
])
def test_the_solax_base_urls_are_allowed(production_prefixes, url):
    assert base_urls.problem(url) is None
    base_urls.validate_base_url(url)


@pytest.mark.parametrize("url,why", [
    ("https://www.solaxcloud.com.evil.com:9443/proxy", "not an allowed"),
    ("https://www.solaxcloud.com.evil.com", "not an allowed"),
    ("https://evil.com/www.solaxcloud.com:9443/proxy", "not an allowed"),
    ("https://www.solaxcloud.com:9443/proxy/../x", "'..'"),
    ("https://www.solaxcloud.com:9443/proxy/%2e%2e/x", "escapes"),
    ("https://www.solaxcloud.com:9443/proxy/./api", "'.'"),
    ("https://www.solaxcloud.com:9443/proxy//x", "empty"),
    ("https://www.solaxcloud.com:9443/proxyEvil", "not an allowed"),
    ("https://www.solaxcloud.com:9444/proxy", "not an allowed"),
    ("https://www.solaxcloud.com/proxy", "not an allowed"),  # port 443, not 9443
    ("http://www.solaxcloud.com:9443/proxy", "not an allowed"),
    ("https://www.solaxcloud.com:9443/proxy?x=1", "query"),
    ("https://www.solaxcloud.com:9443/proxy?", "query"),
    ("https://www.solaxcloud.com:9443/proxy#", "fragment"),
    ("http://127.0.0.1:18999/internal/x#", "fragment"),
    ("http://127.0.0.1:18999/internal", "not an allowed"),
    ("https://user:pw@www.solaxcloud.com:9443/proxy", "user name"),
    ("https://www.solaxcloud.com@evil.com:9443/proxy", "user name"),
    ("https://www.solaxcloud.com:9443\\@evil.com/proxy", "backslash"),
    ("https://www.solaxcloud.com:9443/pro xy", "spaces"),
    ("https://www.solaxcloud.com:99999/proxy", "port"),
    ("ftp://www.solaxcloud.com/proxy", "only http"),
    ("", "enter a URL"),
])
def test_other_urls_are_refused_with_the_reason(production_prefixes, url, why):
    reason = base_urls.problem(url)
    assert reason is not None and why in reason
    with pytest.raises(ValidationError):
        base_urls.validate_base_url(url)


def test_a_wildcard_port_is_for_prefixes_only(settings):
    settings.SOLAX_ALLOWED_BASE_URLS = ["http://127.0.0.1:*"]
    assert base_urls.problem("http://127.0.0.1:41234/proxy") is None
    assert base_urls.problem("http://127.0.0.2:41234/proxy") is not None
    assert base_urls.problem("http://127.0.0.1:*/proxy") is not None


def test_parse_allowed_is_https_only_outside_debug():
    assert base_urls.parse_allowed([VPP + "/", " ", EV], debug=False) == [VPP, EV]
    assert base_urls.parse_allowed(["http://127.0.0.1:8765"], debug=True) == ["http://127.0.0.1:8765"]
    for bad in (["http://127.0.0.1:8765"], ["https://x.example/?a"], ["https://u@x.example"], [""]):
        with pytest.raises(ValueError):
            base_urls.parse_allowed(bad, debug=False)


@pytest.mark.parametrize("value", ["http://127.0.0.1:8765", "https://x.example/a?b", "https://a@b.example", ","])
def test_a_bad_allowed_list_stops_start_up(tmp_path, value):
    result = _run({**PRODUCTION, "DATA_DIR": str(tmp_path), "SOLAX_ALLOWED_BASE_URLS": value}, "check")
    assert result.returncode != 0
    assert "SOLAX_ALLOWED_BASE_URLS" in result.stderr.splitlines()[-1]


def test_production_defaults_allow_only_the_solax_urls(tmp_path):
    code = ("from django.conf import settings; import django; django.setup(); "
            "print(','.join(settings.SOLAX_ALLOWED_BASE_URLS))")
    env = {**PRODUCTION, "DATA_DIR": str(tmp_path)}
    result = _run(env, "shell", "-c", code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == f"{VPP},{EV}"


# The settings form and Django admin ------------------------------------------------------------

@pytest.mark.parametrize("field", ["vpp_base_url", "ev_base_url"])
def test_the_settings_form_refuses_a_url_outside_the_list(admin_client_, org, production_prefixes, field):
    response = admin_client_.post("/settings/accounts/new/",
                                  _account_form(**{field: "http://127.0.0.1:18999/internal/x"}))
    assert response.status_code == 200
    assert "not an allowed SolaX base URL" in response.content.decode()
    assert not SolaxAccount.objects.filter(organization=org).exists()


def test_the_settings_form_refuses_moving_an_account_outside_the_list(admin_client_, account, production_prefixes):
    response = admin_client_.post(f"/settings/accounts/{account.code}/", _account_form(
        name="Main", token=NEW_TOKEN, vpp_base_url="https://www.solaxcloud.com.evil.com:9443/proxy"))
    assert response.status_code == 200
    assert "not an allowed SolaX base URL" in response.content.decode()
    account.refresh_from_db()
    assert account.vpp_base_url == VPP


def test_django_admin_follows_the_same_rule(client, org, account, production_prefixes):
    from django.contrib.auth import get_user_model

    su = get_user_model().objects.create_superuser("root", "root@example.com", "pw-root-9x!")
    client.force_login(su)
    url = f"/admin/fleet/solaxaccount/{account.pk}/change/"
    form = {"organization": org.pk, "name": "Main", "vpp_base_url": "http://127.0.0.1:18999/internal",
            "ev_base_url": EV, "timezone": "Europe/Berlin", "calls_per_minute": 10, "calls_per_day": 10000,
            "safety_margin_per_minute": 1, "safety_margin_per_day": 100, "control_share_percent": 20,
            "max_sns_per_call": 100,
            "created_0": "2026-01-01", "created_1": "00:00:00"}
    response = client.post(url, form)
    assert response.status_code == 200
    assert "not an allowed SolaX base URL" in response.content.decode()
    account.refresh_from_db()
    assert account.vpp_base_url == VPP
    response = client.post(url, {**form, "vpp_base_url": VPP + "/v2"})
    assert response.status_code == 302, response.context["adminform"].form.errors
    account.refresh_from_db()
    assert account.vpp_base_url == VPP + "/v2"


# The dispatcher ---------------------------------------------------------------------------------

def _served(simulator) -> int:  # type: ignore[no-untyped-def]
    """How many requests the simulator received with the account's token."""
    return simulator.sim.counters()["tokens"].get(simulator.token, {}).get("total", 0)


def test_the_dispatcher_sends_nothing_to_a_url_no_longer_allowed(sim_account, simulator, settings):
    call = queue.enqueue(sim_account, "group_add", {"name": "Never"}, purpose="test")
    settings.SOLAX_ALLOWED_BASE_URLS = PRODUCTION_LIKE  # the simulator's URL is not allowed any more
    dispatch.pump(sim_account.pk, wait=False)
    call.refresh_from_db()
    assert call.state == CallState.FAILED  # permanent: never retried
    assert "VPP base URL is refused" in call.error and "not an allowed SolaX base URL" in call.error
    assert _served(simulator) == 0
    assert "Never" not in [g.name for g in simulator.sim.tenant().groups.values()]


def test_the_dispatcher_refuses_a_row_written_around_validation(sim_account, simulator):
    # update() skips model validation: the dispatcher checks again, per base, at send time.
    SolaxAccount.objects.filter(pk=sim_account.pk).update(ev_base_url="http://127.0.0.1:18999/internal/x#")
    sim_account.refresh_from_db()
    charger_sn = sorted(simulator.sim.tenant().chargers)[0]
    ev = queue.enqueue(sim_account, "pile_info", endpoints.pile_info_params(charger_sn))
    dispatch.pump(sim_account.pk, wait=False)
    ev.refresh_from_db()
    assert ev.state == CallState.FAILED
    assert "EV base URL is refused" in ev.error and "fragment" in ev.error
    assert _served(simulator) == 0
    read = queue.enqueue(sim_account, "group_query", {"current": 1, "size": 10})  # VPP: still allowed
    dispatch.pump(sim_account.pk, wait=False)
    read.refresh_from_db()
    assert read.state == CallState.SUCCEEDED
    assert _served(simulator) == 1
    assert not ApiCall.objects.filter(account=sim_account, state=CallState.SENDING).exists()
