"""The ENTSO-E fetcher against recorded answer files (``responses``), never the network."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from urllib.parse import parse_qs, urlparse
from zoneinfo import ZoneInfo

import pytest
import requests
import responses

from fleet.prices.entsoe import FetchError, fetch_day_ahead

ANSWERS = Path(__file__).resolve().parents[1] / "fixtures" / "prices" / "entsoe"
URL = "https://web-api.tp.entsoe.eu/api"
BERLIN = ZoneInfo("Europe/Berlin")
TOKEN = "secret-token-0123"
DE_LU = "10Y1001A1001A82H"


def _fetch(day: date = date(2026, 6, 15)):  # type: ignore[no-untyped-def]
    return fetch_day_ahead(url=URL, token=TOKEN, eic=DE_LU, day=day, tz=BERLIN)


@responses.activate
def test_it_asks_for_one_local_day_of_a44_and_parses_the_answer():
    responses.get(URL, body=(ANSWERS / "answer_a44_DE-LU_2026-06-15.xml").read_bytes(), status=200)
    parsed, raw = _fetch()
    assert (parsed.day, len(parsed.intervals), parsed.unit) == (date(2026, 6, 15), 24, "MWh")
    query = parse_qs(urlparse(responses.calls[0].request.url).query)
    assert query == {"securityToken": [TOKEN], "documentType": ["A44"], "in_Domain": [DE_LU], "out_Domain": [DE_LU],
                     "periodStart": ["202606142200"], "periodEnd": ["202606152200"]}
    assert raw.startswith(b"<?xml")


@responses.activate
def test_no_data_is_an_error_with_the_platforms_reason_and_without_the_token():
    responses.get(URL, body=(ANSWERS / "answer_no_data.xml").read_bytes(), status=200)
    with pytest.raises(FetchError) as caught:
        _fetch()
    assert "No matching data found" in str(caught.value)
    assert TOKEN not in str(caught.value)


@responses.activate
def test_a_refused_token_and_an_unreachable_platform_are_errors():
    responses.get(URL, status=401, body="Unauthorized")
    with pytest.raises(FetchError, match="refused the security token"):
        _fetch()
    responses.replace(responses.GET, URL, body=requests.ConnectionError("down"))
    with pytest.raises(FetchError, match="could not be reached") as caught:
        _fetch()
    assert TOKEN not in str(caught.value)


@responses.activate
def test_an_answer_for_another_day_is_refused():
    responses.get(URL, body=(ANSWERS / "answer_a44_DE-LU_2026-06-15.xml").read_bytes(), status=200)
    with pytest.raises(FetchError, match="not for 2026-06-16"):
        _fetch(date(2026, 6, 16))


def test_no_token_no_request():
    with pytest.raises(FetchError, match="no ENTSO-E security token"):
        fetch_day_ahead(url=URL, token="", eic=DE_LU, day=date(2026, 6, 15), tz=BERLIN)
