"""The prices pages: zones, upload (good and refused files), rules (form errors), plans, accept;
login, organisation scoping (404) and the operator role (403) on every page."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from fleet.models import (
    DayPlan,
    Group,
    Inverter,
    PlanEdge,
    PlanState,
    PriceRule,
    PriceSeries,
    PriceZone,
    SavedSelection,
)
from fleet.prices.parsing import day_bounds

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "prices"
BERLIN = ZoneInfo("Europe/Berlin")
DUCK = [60, 55, 50, 52, 58, 70, 90, 120, 110, 80, 40, 20, 10, 15, 30, 60, 90, 130, 150, 140, 100, 80, 70, 65]


@pytest.fixture
def zone(account):  # type: ignore[no-untyped-def]
    return PriceZone.objects.create(account=account, name="DE-LU", timezone="Europe/Berlin", currency="EUR")


@pytest.fixture
def other_zone(other_account):  # type: ignore[no-untyped-def]
    return PriceZone.objects.create(account=other_account, name="Theirs", timezone="Europe/Berlin")


@pytest.fixture
def north(account):  # type: ignore[no-untyped-def]
    group = Group.objects.create(account=account, remote_id="100", name="North")
    Inverter.objects.create(account=account, group=group, remote_id="1", inverter_sn="SNA1")
    return group


@pytest.fixture
def rule(zone, north):  # type: ignore[no-untyped-def]
    return PriceRule.objects.create(zone=zone, group=north, charge_hours=3, discharge_hours=2)


def _tomorrow():  # type: ignore[no-untyped-def]
    return (timezone.now().astimezone(BERLIN) + timedelta(days=1)).date()


def _csv(day, prices=DUCK) -> bytes:  # type: ignore[no-untyped-def]
    start, end = day_bounds(day, BERLIN)
    rows, at = ["start,price"], start
    while at < end:
        local = at.astimezone(BERLIN)
        rows.append(f"{local.isoformat(timespec='minutes')},{prices[local.hour]}")
        at += timedelta(hours=1)
    return ("\n".join(rows) + "\n").encode()


def _upload(client, zone, content: bytes, name="prices.csv", **extra):  # type: ignore[no-untyped-def]
    return client.post(f"/prices/{zone.code}/upload/", {"file": SimpleUploadedFile(name, content), "unit": "MWh",
                                                        **extra})


# Zones -------------------------------------------------------------------------------------------

def test_the_zone_list_shows_the_accounts_zones_only(viewer_client, zone, other_zone):
    body = viewer_client.get("/prices/").content.decode()
    assert "DE-LU" in body and "Theirs" not in body
    assert "New price zone" not in body  # a viewer sees no form


def test_an_operator_creates_a_zone_and_a_bad_timezone_is_a_form_error(operator_client, account):
    bad = operator_client.post(f"/prices/zones/new/?account={account.code}",
                               {"name": "X", "timezone": "Mars/Olympus", "currency": "EUR"})
    assert bad.status_code == 400 and "not a known timezone" in bad.content.decode()
    assert not PriceZone.objects.exists()
    good = operator_client.post(f"/prices/zones/new/?account={account.code}",
                                {"name": "NL", "timezone": "Europe/Amsterdam", "currency": "eur"})
    assert good.status_code == 302
    assert PriceZone.objects.get().currency == "EUR"


def test_zone_creation_requires_operator(viewer_client, account):
    response = viewer_client.post(f"/prices/zones/new/?account={account.code}",
                                  {"name": "NL", "timezone": "Europe/Amsterdam", "currency": "EUR"})
    assert response.status_code == 403 and not PriceZone.objects.exists()


def test_every_page_needs_a_login(client, zone):
    for url in ("/prices/", f"/prices/{zone.code}/"):
        response = client.get(url)
        assert response.status_code == 302 and "/login/" in response["Location"]


# The zone page and uploads -------------------------------------------------------------------

def test_another_organisations_zone_rule_and_plan_are_404(operator_client, other_zone, other_account):
    group = Group.objects.create(account=other_account, remote_id="9", name="Far")
    their_rule = PriceRule.objects.create(zone=other_zone, group=group, charge_hours=1)
    series = PriceSeries.objects.create(zone=other_zone, day=_tomorrow(), minutes=60, unit="MWh", source="csv")
    plan = DayPlan.objects.create(rule=their_rule, series=series, day=series.day, form="edges", calls=0)
    assert operator_client.get(f"/prices/{other_zone.code}/").status_code == 404
    assert _upload(operator_client, other_zone, _csv(_tomorrow())).status_code == 404
    assert operator_client.get(f"/prices/{other_zone.code}/rules/new/").status_code == 404
    assert operator_client.get(f"/prices/rules/{their_rule.code}/").status_code == 404
    assert operator_client.post(f"/prices/rules/{their_rule.code}/plan/").status_code == 404
    assert operator_client.get(f"/prices/plans/{plan.code}/").status_code == 404
    assert operator_client.post(f"/prices/plans/{plan.code}/accept/").status_code == 404
    assert not PriceSeries.objects.filter(zone=other_zone).exclude(pk=series.pk).exists()
    assert DayPlan.objects.get().state == PlanState.PROPOSED


def test_an_upload_stores_the_day_and_the_page_draws_it(operator_client, zone):
    day = _tomorrow()
    response = _upload(operator_client, zone, _csv(day))
    assert response.status_code == 302
    series = PriceSeries.objects.get()
    assert series.day == day and series.intervals.count() == len(_csv(day).splitlines()) - 1
    body = operator_client.get(response["Location"]).content.decode()
    assert "<svg" in body and body.count('class="bar') == series.intervals.count()
    assert f"{day:%d %B %Y}" in body


def test_an_a44_upload_is_recognised(operator_client, zone):
    response = _upload(operator_client, zone, (FIXTURES / "a44_spring_60min_2026-03-29.xml").read_bytes(),
                       name="a44.xml")
    assert response.status_code == 302
    series = PriceSeries.objects.get()
    assert (series.source, series.intervals.count()) == ("a44", 23)
    body = operator_client.get(f"/prices/{zone.code}/?day=2026-03-29").content.decode()
    assert "23 hours" in body


@pytest.mark.parametrize(("content", "message"), [
    (b"start,price\n2026-06-15T00:00+02:00,5\n2026-06-15T01:00+02:00,5\n2026-06-15T03:00+02:00,5\n",
     "line 4: gap: no price from 02:00"),
    (b"start,price,unit\n2026-06-15T00:00+02:00,5,USD/MW\n", "unknown unit"),
    (b"\xff\xfe\x00garbage", "neither UTF-8"),
    (b"<Publication_MarketDocument><type>A25</type></Publication_MarketDocument>", "not A44"),
])
def test_a_bad_file_is_refused_with_its_reason_and_stores_nothing(operator_client, zone, content, message):
    response = _upload(operator_client, zone, content)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not PriceSeries.objects.exists()


def test_a_file_of_another_day_than_asked_is_refused(operator_client, zone):
    response = _upload(operator_client, zone, (FIXTURES / "day_60min_2026-06-15.csv").read_bytes(), day="2026-06-16")
    assert response.status_code == 400 and "not for 2026-06-16" in response.content.decode()


def test_a_file_in_another_currency_is_refused(operator_client, account):
    zone = PriceZone.objects.create(account=account, name="CH", timezone="Europe/Berlin", currency="CHF")
    response = _upload(operator_client, zone, (FIXTURES / "a44_day_60min_2026-06-15.xml").read_bytes())
    assert response.status_code == 400 and "the zone is in CHF" in response.content.decode()


def test_uploading_requires_operator(viewer_client, zone):
    assert _upload(viewer_client, zone, _csv(_tomorrow())).status_code == 403
    assert not PriceSeries.objects.exists()


# Rules -------------------------------------------------------------------------------------------

def _rule_data(group, **changes):  # type: ignore[no-untyped-def]
    return {"group": str(group.code), "charge_hours": "3", "discharge_hours": "2", "min_soc": "10",
            "no_export_negative": "on", "window_start": "00:00", "window_end": "00:00", **changes}


def test_an_operator_saves_a_rule(operator_client, zone, north):
    response = operator_client.post(f"/prices/{zone.code}/rules/new/", _rule_data(north, charge_cap="120"))
    assert response.status_code == 302
    rule = PriceRule.objects.get()
    assert (rule.group, rule.charge_hours, rule.charge_cap, rule.no_export_negative) == (north, 3, 120, True)


@pytest.mark.parametrize(("changes", "message"), [
    ({"window_start": "10:00", "window_end": "14:00"}, "longer than the window of 4 h"),
    ({"charge_hours": "1.1"}, "Whole quarter-hours"),
    ({"min_soc": "5"}, "Between 10 and 100"),
    ({"window_start": "14:00", "window_end": "10:00"}, "must end after it starts"),
    ({"charge_below": "200", "charge_cap": "100"}, "Above the grid-charge cap"),
    ({"charge_hours": "0", "discharge_hours": "0"}, "Say when to charge or discharge"),
])
def test_a_rule_that_cannot_be_met_is_a_form_error(operator_client, zone, north, changes, message):
    response = operator_client.post(f"/prices/{zone.code}/rules/new/", _rule_data(north, **changes))
    assert response.status_code == 400 and message in response.content.decode()
    assert not PriceRule.objects.exists()


def test_a_group_of_another_organisation_is_not_a_choice(operator_client, zone, other_account):
    theirs = Group.objects.create(account=other_account, remote_id="9", name="Far")
    response = operator_client.post(f"/prices/{zone.code}/rules/new/", _rule_data(theirs))
    assert response.status_code == 400 and not PriceRule.objects.exists()


@pytest.fixture
def south(account):  # type: ignore[no-untyped-def]
    group = Group.objects.create(account=account, remote_id="200", name="South")
    Inverter.objects.create(account=account, group=group, remote_id="2", inverter_sn="SNB1")
    return group


def test_an_operator_saves_a_rule_for_several_groups(operator_client, zone, north, south):
    response = operator_client.post(f"/prices/{zone.code}/rules/new/", _rule_data(
        north, target_kind="groups", groups=[str(north.code), str(south.code)]))
    assert response.status_code == 302, response.content.decode()
    rule = PriceRule.objects.get()
    assert rule.target_kind == "groups" and rule.group is None and set(rule.groups.all()) == {north, south}
    body = operator_client.get(f"/prices/{zone.code}/").content.decode()
    assert "groups North, South" in body


def test_an_operator_saves_a_rule_for_a_saved_selection(operator_client, zone, account, north):
    selection = SavedSelection.objects.create(account=account, name="Pilots", sns=["SNA1"])
    response = operator_client.post(f"/prices/{zone.code}/rules/new/", _rule_data(
        north, target_kind="saved", selection=str(selection.code)))
    assert response.status_code == 302, response.content.decode()
    rule = PriceRule.objects.get()
    assert (rule.target_kind, rule.selection, rule.group) == ("saved", selection, None)
    page = operator_client.get(f"/prices/rules/{rule.code}/").content.decode()
    assert "Price rule for selection Pilots" in page


@pytest.mark.parametrize(("target", "field_message"), [
    ({"target_kind": "groups", "groups": []}, "Choose one or more groups"),
    ({"target_kind": "groups", "groups": ["not-a-code"]}, "Choose one or more groups"),
    ({"target_kind": "saved", "selection": ""}, "Choose a saved selection"),
    ({"target_kind": "fleet"}, "Select a valid choice"),
])
def test_a_bad_target_is_a_form_error(operator_client, zone, north, target, field_message):
    response = operator_client.post(f"/prices/{zone.code}/rules/new/", _rule_data(north, **target))
    assert response.status_code == 400 and field_message in response.content.decode()
    assert not PriceRule.objects.exists()


def test_another_accounts_selection_is_refused(operator_client, zone, north, other_account):
    theirs = SavedSelection.objects.create(account=other_account, name="Theirs", sns=["X1"])
    response = operator_client.post(f"/prices/{zone.code}/rules/new/", _rule_data(
        north, target_kind="saved", selection=str(theirs.code)))
    assert response.status_code == 400 and "Choose a saved selection" in response.content.decode()
    assert not PriceRule.objects.exists()


def test_a_group_already_followed_by_another_rule_is_refused(operator_client, zone, north, south, rule):
    response = operator_client.post(f"/prices/{zone.code}/rules/new/", _rule_data(
        north, target_kind="groups", groups=[str(north.code), str(south.code)]))
    assert response.status_code == 400 and "Already in another rule of this zone: North" in response.content.decode()
    both = PriceRule.objects.create(zone=zone, target_kind="groups", charge_hours=1)
    both.groups.set([south])
    response = operator_client.post(f"/prices/{zone.code}/rules/new/", _rule_data(south))
    assert response.status_code == 400 and "already has a rule in this zone" in response.content.decode()
    assert PriceRule.objects.count() == 2


def test_rules_require_operator(viewer_client, zone, north, rule):
    assert viewer_client.get(f"/prices/{zone.code}/rules/new/").status_code == 403
    assert viewer_client.post(f"/prices/{zone.code}/rules/new/", _rule_data(north)).status_code == 403
    assert viewer_client.post(f"/prices/rules/{rule.code}/", _rule_data(north, charge_hours="1")).status_code == 403
    rule.refresh_from_db()
    assert rule.charge_hours == 3


# Plans ---------------------------------------------------------------------------------------------

def test_planning_shows_the_plan_with_its_cost_before_accepting(operator_client, zone, rule):
    day = _tomorrow()
    _upload(operator_client, zone, _csv(day))
    DayPlan.objects.all().delete()  # the upload proposed one; ask again through the button
    response = operator_client.post(f"/prices/rules/{rule.code}/plan/", {"day": f"{day:%Y-%m-%d}"})
    assert response.status_code == 302
    plan = DayPlan.objects.get()
    body = operator_client.get(response["Location"]).content.decode()
    assert "1 control call" in body and "130.00" in body  # the spread of the duck curve
    assert "Value per day" in body and "estimate" in body and "rated inverter power" in body
    assert "11:00" in body and "14:00" in body and "18:00" in body and "20:00" in body
    midnight = day_bounds(plan.day, BERLIN)[0].astimezone(BERLIN)
    assert f"{midnight:%a %d %b} 00:00 {midnight.tzname()}" in body  # the windows write, in the zone's time
    assert 'action="/prices/plans/' in body and "csrfmiddlewaretoken" in body
    assert not PlanEdge.objects.exists()  # nothing is due before it is accepted
    assert plan.state == PlanState.PROPOSED


def test_planning_without_prices_says_so(operator_client, zone, rule):
    response = operator_client.post(f"/prices/rules/{rule.code}/plan/", follow=True)
    assert "No prices for" in response.content.decode() and not DayPlan.objects.exists()


def test_accepting_requires_operator_and_post(viewer_client, operator_client, zone, rule):
    _upload(operator_client, zone, _csv(_tomorrow()))
    plan = DayPlan.objects.get()
    assert viewer_client.post(f"/prices/plans/{plan.code}/accept/").status_code == 403
    assert operator_client.get(f"/prices/plans/{plan.code}/accept/").status_code == 405
    assert "Accept:" not in viewer_client.get(f"/prices/plans/{plan.code}/").content.decode()
    plan.refresh_from_db()
    assert plan.state == PlanState.PROPOSED and not PlanEdge.objects.exists()
    assert operator_client.post(f"/prices/plans/{plan.code}/accept/").status_code == 302
    plan.refresh_from_db()
    assert plan.state == PlanState.ACCEPTED
    assert PlanEdge.objects.filter(plan=plan).count() == 2  # the windows write and the day's fallback
    again = operator_client.post(f"/prices/plans/{plan.code}/accept/", follow=True)
    assert "Not accepted: this plan is accepted" in again.content.decode()


def test_a_bad_day_is_a_400(operator_client, rule):
    assert operator_client.post(f"/prices/rules/{rule.code}/plan/", {"day": "tomorrow"}).status_code == 400


# session, user, membership, zone, rules and their groups, the two days' series, tomorrow's plans and
# their groups, the chart's intervals, the history page and counts: the same for 9 rules or 18
ZONE_PAGE_QUERIES = 16


def test_the_zone_page_costs_the_same_queries_for_more_rules_of_every_kind(operator_client, zone, account):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from fleet.prices import service

    def add_rules(first: int) -> None:
        for i in range(first, first + 3):
            group = Group.objects.create(account=account, remote_id=f"g{i}", name=f"G{i}")
            Inverter.objects.create(account=account, group=group, remote_id=f"i{i}", inverter_sn=f"SNX{i}")
            other = Group.objects.create(account=account, remote_id=f"h{i}", name=f"H{i}")
            selection = SavedSelection.objects.create(account=account, name=f"S{i}", sns=[f"SNX{i}"])
            PriceRule.objects.create(zone=zone, group=group, charge_hours=3, discharge_hours=2)
            PriceRule.objects.create(zone=zone, target_kind="groups", charge_hours=3, discharge_hours=2).groups.set(
                [other])
            PriceRule.objects.create(zone=zone, target_kind="saved", selection=selection, charge_hours=3,
                                     discharge_hours=2)

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            body = operator_client.get(f"/prices/{zone.code}/").content.decode()
        assert "groups H0" in body and "selection S0" in body
        return len(queries)

    add_rules(0)
    _upload(operator_client, zone, _csv(_tomorrow()))
    assert DayPlan.objects.count() == 9
    few = count()
    add_rules(3)
    service.replan(service.current_series(zone, _tomorrow()))
    assert DayPlan.objects.exclude(state=PlanState.SUPERSEDED).count() == 18
    assert count() == few == ZONE_PAGE_QUERIES


def test_the_zone_page_draws_the_windows_of_the_chosen_target(operator_client, zone, rule, south):
    morning = PriceRule.objects.create(zone=zone, group=south, charge_hours=2, discharge_hours=1,
                                       window_end="12:00")
    day = _tomorrow()
    _upload(operator_client, zone, _csv(day))
    today = f"{day - timedelta(days=1):%Y-%m-%d}"
    body = operator_client.get(f"/prices/{zone.code}/?day={today}").content.decode()
    assert "Draw the windows of:" in body and f"rule={morning.code}" in body
    assert "<li>discharge 18:00-20:00</li>" in body  # North's plan, the first
    body = operator_client.get(f"/prices/{zone.code}/?day={today}&rule={morning.code}").content.decode()
    assert "<li>discharge 07:00-08:00</li>" in body and "<li>discharge 18:00-20:00</li>" not in body
    assert f"rule={rule.code}" in body  # the way back to North
    assert operator_client.get(f"/prices/{zone.code}/?rule=nonsense").status_code == 200  # ignored
